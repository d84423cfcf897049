package emulator_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// TestDeliveryFlowMatchesSpec walks CONTRACT.md §4 as the power token would,
// every call checked against iconik's spec.
func TestDeliveryFlowMatchesSpec(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "power")

	me := c.must(200, c.do("GET", "/API/users/v1/users/current/", nil), "current user")
	if me.str("status") != "ACTIVE" || me.str("type") != "POWER" {
		t.Fatalf("power user is %s/%s", me.str("status"), me.str("type"))
	}
	roles := c.must(200, c.do("GET", "/API/users/v1/users/current/roles/", nil), "roles")
	if strings.Contains(string(roles.Raw), "can_write_metadata_values") || !strings.Contains(string(roles.Raw), "can_create_assets") {
		t.Fatalf("power roles: %s", roles.Raw)
	}
	c.must(200, c.do("GET", "/API/auth/v1/auth/token/", nil), "token check")
	st := c.must(200, c.do("GET", "/API/files/v1/storages/?purpose=FILES&per_page=100", nil), "storages")
	if n := len(st.objects()); n != 4 {
		t.Fatalf("FILES storages: %d, want 4", n)
	}
	sid := c.storageID("s3")
	c.must(200, c.do("GET", "/API/files/v1/storages/"+sid+"/verifications/permissions/", nil), "permissions")
	c.must(200, c.do("GET", "/API/files/v1/storages/matching/PROXIES/", nil), "matching")

	root := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "Portal Downloads"}), "root")
	roots := c.must(200, c.do("GET", "/API/assets/v1/collections/?is_root=true&per_page=100", nil), "roots")
	if len(roots.objects()) != 1 || roots.objects()[0]["title"] != "Portal Downloads" {
		t.Fatalf("roots: %s", roots.Raw)
	}
	pkg := c.must(201, c.do("POST", "/API/assets/v1/collections/?index_immediately=true", map[string]any{"title": "pkg", "parent_id": root.str("id"), "unknown_field": 1}), "child")
	kids := c.must(200, c.do("GET", "/API/assets/v1/collections/"+root.str("id")+"/contents/?object_types=collections&per_page=100", nil), "contents")
	if len(kids.objects()) != 1 || kids.objects()[0]["id"] != pkg.str("id") {
		t.Fatalf("contents: %s", kids.Raw)
	}
	if p := c.must(200, c.do("GET", "/API/assets/v1/collections/"+pkg.str("id")+"/full/path/?get_upload_path=true", nil), "path"); string(bytes.TrimSpace(p.Raw)) != `"Portal Downloads/pkg"` {
		t.Fatalf("full path %s", p.Raw)
	}

	a := c.must(201, c.do("POST", "/API/assets/v1/assets/?assign_to_collection=true", map[string]any{"title": "clip.mov", "type": "ASSET", "collection_id": pkg.str("id"), "external_id": "pf-1"}), "asset")
	if a.str("default_version_id") == "" {
		t.Fatal("asset without default_version_id")
	}
	f := c.must(201, c.do("POST", "/API/files/v1/assets/"+a.str("id")+"/formats/", map[string]any{"name": "ORIGINAL", "user_id": a.str("created_by_user"), "metadata": []any{map[string]any{"internet_media_type": "video/quicktime"}}, "storage_methods": []string{"S3"}}), "format")
	c.must(200, c.do("GET", "/API/files/v1/assets/"+a.str("id")+"/formats/ORIGINAL/", nil), "format by name")
	fs := c.must(201, c.do("POST", "/API/files/v1/assets/"+a.str("id")+"/file_sets/", map[string]any{"format_id": f.str("id"), "storage_id": sid, "base_dir": "pkg/sub", "name": "clip.mov", "component_ids": []string{}}), "file set")
	file := c.must(201, c.do("POST", "/API/files/v1/assets/"+a.str("id")+"/files/", map[string]any{
		"original_name": "clip.mov", "directory_path": "pkg/sub", "size": 5, "type": "FILE", "storage_id": sid,
		"file_set_id": fs.str("id"), "format_id": f.str("id"), "checksum": "abc", "metadata": map[string]any{"x": 1}}), "file")
	if file.str("status") != "OPEN" || file.str("storage_method") != "S3" || file.str("upload_url") == "" || file.str("multipart_upload_url") == "" {
		t.Fatalf("file: %s", file.Raw)
	}
	if resp := putS3(t, file.str("upload_url"), []byte("hello")); resp.StatusCode != 200 {
		t.Fatalf("S3 PUT: %d", resp.StatusCode)
	}
	c.must(200, c.do("GET", "/API/files/v1/assets/"+a.str("id")+"/files/"+file.str("id")+"/?generate_signed_post_url=true", nil), "fresh url")
	job := c.must(201, c.do("POST", "/API/jobs/v1/jobs/", map[string]any{"type": "TRANSFER", "status": "STARTED", "title": "clip.mov", "object_type": "assets", "object_id": a.str("id"), "progress_total": 3}), "job")
	pj := c.must(200, c.do("PATCH", "/API/jobs/v1/jobs/"+job.str("id")+"/", map[string]any{"progress_processed": 2}), "job progress")
	if pj.Body["progress"] != float64(67) {
		t.Fatalf("progress %v, want round(100*2/3)=67", pj.Body["progress"])
	}
	closed := c.must(200, c.do("PATCH", "/API/files/v1/assets/"+a.str("id")+"/files/"+file.str("id")+"/", map[string]any{"status": "CLOSED", "progress_processed": 100}), "close")
	if closed.str("status") != "CLOSED" {
		t.Fatalf("closed: %s", closed.Raw)
	}
	c.must(201, c.do("POST", "/API/assets/v1/collections/"+pkg.str("id")+"/contents/?index_immediately=true", map[string]any{"object_id": a.str("id"), "object_type": "assets"}), "contents add")
	kf := c.must(200, c.do("POST", "/API/files/v1/assets/"+a.str("id")+"/files/"+file.str("id")+"/keyframes/", map[string]any{}), "keyframes")
	if kf.str("job_id") == "" {
		t.Fatalf("keyframes: %s", kf.Raw)
	}
	c.waitJob(kf.str("job_id")) // "hello" is no image or video: the job ends either way

	admin := c.as("admin")
	admin.must(201, admin.do("POST", "/API/metadata/v1/fields/", map[string]any{"name": "description", "label": "Description", "field_type": "text"}), "field")
	c.must(200, c.do("GET", "/API/metadata/v1/fields/description/", nil), "field get")
	view := admin.must(201, admin.do("POST", "/API/metadata/v1/views/", map[string]any{"name": "ferry", "view_fields": []any{map[string]any{"name": "description", "label": "Description"}}}), "view")
	c.must(200, c.do("GET", "/API/metadata/v1/views/", nil), "views")
	c.must(200, c.do("GET", "/API/metadata/v1/views/"+view.str("id")+"/?merge_fields=true", nil), "view get")
	values := map[string]any{"metadata_values": map[string]any{"description": map[string]any{"field_values": []any{map[string]any{"value": "Package: X"}}}}}
	if r := c.raw("PUT", "/API/metadata/v1/assets/"+a.str("id")+"/views/"+view.str("id")+"/", `{"metadata_values":{}}`, nil); r.Status != 403 {
		t.Fatalf("power PUT values: %d, want 403 (lacks can_write_metadata_values)", r.Status)
	}
	put := admin.must(200, admin.do("PUT", "/API/metadata/v1/assets/"+a.str("id")+"/views/"+view.str("id")+"/", values), "values")
	if !strings.Contains(string(put.Raw), "Package: X") {
		t.Fatalf("values not echoed: %s", put.Raw)
	}
	got := c.must(200, c.do("GET", "/API/metadata/v1/assets/"+a.str("id")+"/views/"+view.str("id")+"/", nil), "values get")
	if !strings.Contains(string(got.Raw), "Package: X") {
		t.Fatalf("values not stored: %s", got.Raw)
	}
	c.must(200, c.do("PATCH", "/API/jobs/v1/jobs/"+job.str("id")+"/", map[string]any{"status": "FINISHED", "progress_processed": 3}), "finish")
	jobs := c.must(200, c.do("GET", "/API/jobs/v1/jobs/?object_id="+a.str("id")+"&type=TRANSFER", nil), "jobs list")
	if len(jobs.objects()) != 1 || jobs.objects()[0]["progress"] != float64(100) {
		t.Fatalf("jobs: %s", jobs.Raw)
	}
	found := c.must(200, c.do("POST", "/API/search/v1/search/?per_page=10", map[string]any{"doc_types": []string{"collections"}, "query": "", "filter": map[string]any{"operator": "AND", "terms": []any{
		map[string]any{"name": "parent_id", "value": root.str("id")}, map[string]any{"name": "title.lower", "value": "PKG"}}}}), "search")
	if len(found.objects()) != 1 || found.objects()[0]["id"] != pkg.str("id") {
		t.Fatalf("search: %s", found.Raw)
	}
	byExt := c.must(200, c.do("POST", "/API/search/v1/search/", map[string]any{"doc_types": []string{"assets"}, "filter": map[string]any{"operator": "AND", "terms": []any{map[string]any{"name": "external_id", "value": "pf-1"}}}}), "search ext")
	if len(byExt.objects()) != 1 {
		t.Fatalf("search by external_id: %s", byExt.Raw)
	}

	// The object key is settings.path + directory_path + name.
	rc, n, err := openObject(e, sid, "ferry/pkg/sub/clip.mov")
	if err != nil {
		t.Fatalf("object key: %v", err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if n != 5 || string(body) != "hello" {
		t.Fatalf("object holds %q (%d bytes)", body, n)
	}

	// Cleanup calls.
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+a.str("id")+"/uploads/", nil), "delete uploads")
	c.must(204, c.do("DELETE", "/API/files/v1/assets/"+a.str("id")+"/files/"+file.str("id")+"/", nil), "delete file")
	c.must(200, c.do("DELETE", "/API/files/v1/assets/"+a.str("id")+"/file_sets/"+fs.str("id")+"/", nil), "delete file set")
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+a.str("id")+"/", nil), "delete asset")
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+a.str("id")+"/purge/", nil), "purge asset")
	if r := c.raw("DELETE", "/API/assets/v1/collections/"+root.str("id")+"/purge/", "", nil); r.Status != 403 {
		t.Fatalf("purge of a non-empty collection: %d, want 403", r.Status)
	}
	c.must(202, c.do("DELETE", "/API/assets/v1/collections/"+pkg.str("id")+"/", nil), "delete collection")
	c.must(202, c.do("DELETE", "/API/assets/v1/collections/"+root.str("id")+"/purge/", nil), "purge collection")
}

// openObject reads an object back from the emulator's data directory through
// the data plane's reader.
func openObject(e *emulatortest.Emulator, storageID, key string) (io.ReadCloser, int64, error) {
	return e.OpenObject(storageID, key)
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var _ = os.Getenv
var _ = filepath.Join
var _ = http.StatusOK
