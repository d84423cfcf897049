package emulator_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
)

// recorder notes which spec operation each /API/ request hit.
type recorder struct {
	base http.RoundTripper
	spec *ispec.Spec
	mu   sync.Mutex
	hit  map[string]bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if op, err := r.spec.Operation(req); err == nil {
		service := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/API/"), "/", 2)[0]
		method, path, _ := strings.Cut(op, " ")
		r.mu.Lock()
		// The spec names GET .../formats/ORIGINAL/ {name}; the emulator serves
		// names and ids on one route.
		path = strings.Replace(path, "/formats/{name}/", "/formats/{format_id}/", 1)
		r.hit[service+" "+method+" "+path] = true
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

// TestEveryRouteAnswersPerSpec calls every operation the emulator serves with
// valid input, through ispec, and fails if a route was left out.
func TestEveryRouteAnswersPerSpec(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	rec := &recorder{base: http.DefaultTransport, spec: c.spec, hit: map[string]bool{}}
	c.http = &http.Client{Transport: ispectest.Transport(t, rec)}
	c.rawHTTP = &http.Client{Transport: rec}
	get := func(path string) reply { t.Helper(); return c.must(200, c.do("GET", path, nil), "GET "+path) }

	get("/API/users/v1/users/current/")
	get("/API/users/v1/users/current/roles/")
	get("/API/users/v1/users/" + c.cred.UserID + "/roles/can_read_assets/")
	get("/API/auth/v1/auth/token/")
	sid := c.storageID("s3")
	get("/API/files/v1/storages/" + sid + "/")
	get("/API/files/v1/storages/" + sid + "/verifications/permissions/")
	get("/API/files/v1/storages/matching/FILES/")

	root := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "r"}), "collection").str("id")
	get("/API/assets/v1/collections/?is_root=true")
	get("/API/assets/v1/collections/" + root + "/")
	get("/API/assets/v1/collections/" + root + "/full/path/")
	asset, file := c.newFile("s3", "d", "p.png", 0)
	c.must(201, c.do("POST", "/API/assets/v1/collections/"+root+"/contents/", map[string]any{"object_id": asset, "object_type": "assets"}), "add")
	get("/API/assets/v1/collections/" + root + "/contents/?object_types=assets")
	get("/API/assets/v1/assets/" + asset + "/")
	c.must(200, c.do("PATCH", "/API/assets/v1/assets/"+asset+"/", map[string]any{"title": "renamed"}), "patch asset")

	af := "/API/files/v1/assets/" + asset
	get(af + "/formats/")
	get(af + "/formats/ORIGINAL/")
	fileSets := get(af + "/file_sets/").objects()
	get(af + "/files/")
	fid := file.str("id")
	get(af + "/files/" + fid + "/")
	_, body := send(t, "POST", file.str("multipart_upload_url"), nil, nil)
	uploadID := strings.Split(strings.Split(string(body), "<UploadId>")[1], "</UploadId>")[0]
	get(af + "/files/" + fid + "/multipart_url/part/?parts_num=1&upload_id=" + uploadID)
	c.must(200, c.do("POST", af+"/files/"+fid+"/multipart_url/s3/part/", map[string]any{"upload_id": uploadID, "parts": []any{map[string]any{"part_number": 1}}}), "s3 parts")
	get(af + "/files/" + fid + "/multipart_url/?upload_id=" + uploadID)
	c.must(200, c.do("POST", af+"/files/"+fid+"/multipart/cleanup/", map[string]any{"upload_id": uploadID, "abort_upload": true}), "cleanup")
	gAsset, gFile := c.newFile("gcs", "d", "g.bin", 1)
	gf := "/API/files/v1/assets/" + gAsset + "/files/" + gFile.str("id")
	gPart := get(gf + "/multipart_url/part/?parts_num=1").objects()[0]
	if resp, body := send(t, "PUT", gPart["url"].(string), []byte("g"), nil); resp.StatusCode != 200 {
		t.Fatalf("GCS part upload: %d %s", resp.StatusCode, body)
	}
	c.must(200, c.do("POST", gf+"/multipart/gcs/compose_url/", map[string]any{"content_type": "application/octet-stream"}), "gcs compose")
	c.must(200, c.do("POST", gf+"/multipart/", map[string]any{"parts_range": []string{"1"}}), "gcs complete")
	b2Asset, b2File := c.newFile("b2", "d", "x.bin", 1)
	b2 := "/API/files/v1/assets/" + b2Asset + "/files/" + b2File.str("id") + "/multipart/b2/"
	start := c.must(200, c.do("POST", b2+"start/", map[string]any{}), "b2 start")
	c.must(200, c.do("POST", b2+"cancel/", map[string]any{"upload_file_id": start.str("upload_file_id")}), "b2 cancel")
	if r := c.raw("POST", b2+"finish/", `{"upload_file_id": "4_zunknown", "sha1_list": []}`, nil); r.Status != 400 {
		t.Fatalf("finish of an unknown large file: %d", r.Status)
	}
	c.must(200, c.do("PATCH", af+"/files/"+fid+"/", map[string]any{"status": "CLOSED"}), "patch file")
	job := c.must(200, c.do("POST", af+"/files/"+fid+"/keyframes/", map[string]any{"priority": 5}), "keyframes").str("job_id")
	c.waitJob(job)
	c.must(200, c.do("POST", "/API/files/v1/assets/bulk/keyframes/", map[string]any{"object_type": "assets", "object_ids": []string{asset}, "format_name": "ORIGINAL"}), "bulk keyframes")
	get(af + "/keyframes/")
	get("/API/jobs/v1/jobs/?type=TRANSCODE")
	j := c.must(201, c.do("POST", "/API/jobs/v1/jobs/", map[string]any{"type": "TRANSFER", "status": "READY", "title": "t"}), "job").str("id")
	c.must(200, c.do("PATCH", "/API/jobs/v1/jobs/"+j+"/", map[string]any{"status": "STARTED"}), "patch job")

	c.must(201, c.do("POST", "/API/metadata/v1/fields/", map[string]any{"name": "description", "label": "Description", "field_type": "text"}), "field")
	get("/API/metadata/v1/fields/")
	get("/API/metadata/v1/fields/description/")
	view := c.must(201, c.do("POST", "/API/metadata/v1/views/", map[string]any{"name": "v", "view_fields": []any{map[string]any{"name": "description"}}}), "view").str("id")
	get("/API/metadata/v1/views/")
	get("/API/metadata/v1/views/" + view + "/")
	c.must(200, c.do("PATCH", "/API/metadata/v1/views/"+view+"/", map[string]any{"description": "ferry"}), "patch view")
	c.must(200, c.do("PUT", "/API/metadata/v1/views/"+view+"/", map[string]any{"name": "v", "view_fields": []any{map[string]any{"name": "description", "label": "D"}}}), "put view")
	c.must(200, c.do("PUT", "/API/metadata/v1/assets/"+asset+"/views/"+view+"/", map[string]any{"metadata_values": map[string]any{"description": map[string]any{"field_values": []any{map[string]any{"value": "x"}}}}}), "values")
	get("/API/metadata/v1/assets/" + asset + "/views/" + view + "/")
	c.must(202, c.do("PUT", "/API/metadata/v1/assets/views/"+view+"/", map[string]any{"object_ids": []string{asset}, "metadata_values": map[string]any{"description": map[string]any{"field_values": []any{map[string]any{"value": "y"}}}}}), "batch values")
	c.must(200, c.do("POST", "/API/search/v1/search/", map[string]any{"doc_types": []string{"assets", "collections"}, "query": "renamed"}), "search")

	c.must(204, c.do("DELETE", af+"/file_sets/"+fileSets[0]["id"].(string)+"/?immediately=true", nil), "delete file set")
	fs2 := c.must(201, c.do("POST", af+"/file_sets/", map[string]any{"format_id": fileSets[0]["format_id"], "name": "n", "base_dir": "", "component_ids": []string{}}), "file set").str("id")
	c.must(204, c.do("DELETE", af+"/file_sets/"+fs2+"/purge/", nil), "purge file set")
	c.must(204, c.do("DELETE", af+"/files/"+fid+"/", nil), "delete file")
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+asset+"/uploads/", nil), "delete uploads")
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+asset+"/", nil), "delete asset")
	c.must(204, c.do("DELETE", "/API/assets/v1/assets/"+asset+"/purge/", nil), "purge asset")
	c.must(202, c.do("DELETE", "/API/assets/v1/collections/"+root+"/", nil), "delete collection")
	c.must(202, c.do("DELETE", "/API/assets/v1/collections/"+root+"/purge/", nil), "purge collection")

	for _, key := range emulator.RouteKeys() {
		if !rec.hit[key] {
			t.Errorf("route %s was not exercised", key)
		}
	}
}

func TestConcurrentClientsKeepEveryObject(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	coll := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "busy"}), "collection").str("id")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				r := c.do("POST", "/API/assets/v1/assets/?assign_to_collection=true", map[string]any{"title": fmt.Sprintf("g%d-%d", g, i), "collection_id": coll})
				if r.Status != 201 {
					t.Errorf("create: %d %s", r.Status, r.Raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	if r := c.must(200, c.do("GET", "/API/assets/v1/collections/"+coll+"/contents/?per_page=1", nil), "contents"); r.Body["total"] != float64(160) {
		t.Fatalf("contents total %v, want 160", r.Body["total"])
	}
}
