package server

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// e2eBound bounds every wait for a delivery. It is a deadlock guard, not
// a timing assertion: the machine is shared, so it is generous.
const e2eBound = 3 * time.Minute

// TestPublicFlowDeliveryMirrorsThePackageOnEveryStorageMethod is issue 5's
// end-to-end proof through the public flow, once per storage method: the
// real App, a connection made through the API, a portal delivering to it, a
// nested tree uploaded with tus (one file as parallel partials joined by a
// final upload, a PNG, an ffmpeg video), finalize, and then everything
// checked in the emulator: the exact collection tree, assets, files, bytes,
// jobs, keyframes and description; then a Send to Cloud into MASV and a
// second package of the same name getting "(2)".
//
// Empty folders get nothing by construction: a package holds files only
// (tus uploads carry a file's relativePath; there is no folder entry to
// send), so there is no empty folder to deliver. The exact-tree comparisons
// below would catch any stray collection.
func TestPublicFlowDeliveryMirrorsThePackageOnEveryStorageMethod(t *testing.T) {
	video := e2eVideo(t)
	for _, method := range []string{"S3", "GCS", "AZURE", "B2"} {
		t.Run(method, func(t *testing.T) { testPublicFlowDelivery(t, method, video) })
	}
}

// e2e is the real App plus an emulator and a client reading the emulator.
type e2e struct {
	*harness
	emu  *emulatortest.Emulator
	cl   *iconik.Client
	conn web.Connection
}

func newE2E(t *testing.T, storage string) *e2e {
	t.Helper()
	return newE2EOn(t, newHarness(t), storage)
}

// newE2EOn is newE2E on a harness of the caller's (another database or package store).
func newE2EOn(t *testing.T, h *harness, storage string) *e2e {
	t.Helper()
	emu := emulatortest.Start(t, emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	cred := emu.Cred("admin")
	// The test's own reads are checked against the iconik spec too.
	cl, err := iconik.New(iconik.Options{BaseURL: emu.URL, AppID: cred.AppID, Token: cred.Token, Transport: ispectest.Transport(t, nil),
		RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{harness: h, emu: emu, cl: cl}

	creds := map[string]string{"base_url": emu.URL, "app_id": cred.AppID, "token": cred.Token}
	var v struct {
		Verification web.Verification `json:"verification"`
	}
	resp, body := h.req("POST", "/api/v1/connections/verify", creds, h.admin()...)
	h.mustJSON(resp, body, 200, &v)
	in := map[string]string{"name": "Tenant " + storage}
	for k, x := range creds {
		in[k] = x
	}
	for _, s := range v.Verification.Storages {
		if s.Name == storage && s.Selectable {
			in["storage_id"] = s.ID
		}
	}
	if in["storage_id"] == "" {
		t.Fatalf("verification lists no selectable storage %q: %+v", storage, v.Verification.Storages)
	}
	var c struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = h.req("POST", "/api/v1/connections", in, h.admin()...)
	h.mustJSON(resp, body, 201, &c)
	e.conn = c.Connection
	if e.conn.MetadataViewID == "" || e.conn.PortalRoot != "Portal Downloads" || e.conn.SendRoot != "MASV" {
		t.Fatalf("connection %+v: want a metadata view and the default roots", e.conn)
	}

	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)
	return e
}

func testPublicFlowDelivery(t *testing.T, method string, video []byte) {
	testPublicFlowDeliveryOn(t, newE2E(t, strings.ToLower(method)), method, video)
}

func testPublicFlowDeliveryOn(t *testing.T, e *e2e, method string, video []byte) {
	if e.conn.Storage.Method != method {
		t.Fatalf("connection storage method %q, want %q", e.conn.Storage.Method, method)
	}
	e.portal(map[string]any{"name": "Demo Portal", "slug": "demo", "active": true, "connection_ids": []string{e.conn.ID}})

	rng := rand.New(rand.NewPCG(7, uint64(len(method))))
	files := map[string][]byte{
		"top.txt":                    []byte("top level\n"),
		"cam A/readme.md":            []byte("# readme\n"),
		"cam A/day 1/still.png":      e2ePNG(),
		"cam A/day 1/clip.mp4":       video,
		"cam A/day 1/deep/notes.txt": bytes.Repeat([]byte("n"), 3000),
		// Random bytes: a wrong partial order would change the content.
		"cam B/only/big.bin": randBytes(rng, 6<<20+12345),
	}
	const parallel = "cam B/only/big.bin"

	c := e.createPortalPackage("demo", "Shoot 1", "sender@example.com")
	for p, b := range files {
		if p == parallel {
			e.uploadParallel(c.UploadToken, p, b, 3)
		} else {
			e.upload(c.UploadToken, p, b)
		}
	}
	resp, body := e.req("POST", "/p/demo/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	e.mustJSON(resp, body, 200, nil)

	d := e.waitSettled(e.onlyDelivery(c.Package.ID, "portal").ID)
	e.checkDelivered(d, files, "Portal Downloads/Demo Portal/Shoot 1", "Package: Shoot 1\nUploader: sender@example.com\nPortal: Demo Portal")
	if d.Title != "Shoot 1" {
		t.Fatalf("package collection titled %q, want %q", d.Title, "Shoot 1")
	}
	for _, f := range d.Files {
		if kind := e2eMediaKind(f.Path); kind != "" {
			if f.KeyframeJobID == "" || f.KeyframesSkipped {
				t.Fatalf("%s (%s): keyframes not requested: %+v", f.Path, kind, f)
			}
			e.waitKeyframe(f.Path, f.AssetID)
		}
	}

	// The whole tree under the portal root, exactly: nothing else, no
	// collection for a folder without files, no second root.
	portalRoot := e.root("Portal Downloads")
	want := []string{"Demo Portal/", "Demo Portal/Shoot 1/", "Demo Portal/Shoot 1/cam A/", "Demo Portal/Shoot 1/cam A/day 1/",
		"Demo Portal/Shoot 1/cam A/day 1/clip.mp4", "Demo Portal/Shoot 1/cam A/day 1/deep/", "Demo Portal/Shoot 1/cam A/day 1/deep/notes.txt",
		"Demo Portal/Shoot 1/cam A/day 1/still.png", "Demo Portal/Shoot 1/cam A/readme.md", "Demo Portal/Shoot 1/cam B/",
		"Demo Portal/Shoot 1/cam B/only/", "Demo Portal/Shoot 1/cam B/only/big.bin", "Demo Portal/Shoot 1/top.txt"}
	tree := e.tree(portalRoot, "")
	if got := e2eSortedKeys(tree); !reflect.DeepEqual(got, want) {
		t.Fatalf("collection tree under Portal Downloads\n got %q\nwant %q", got, want)
	}
	if tree["Demo Portal/Shoot 1/"] != d.CollectionID {
		t.Fatalf("package collection %s, delivery recorded %s", tree["Demo Portal/Shoot 1/"], d.CollectionID)
	}
	for _, f := range d.Files {
		if id := tree["Demo Portal/Shoot 1/"+f.Path]; id != f.AssetID {
			t.Fatalf("%s: the collection holds asset %q there, delivery made %q", f.Path, id, f.AssetID)
		}
	}

	// The same name again through the same portal: "(2)", never merged.
	c2 := e.createPortalPackage("demo", "Shoot 1", "other@example.com")
	again := map[string][]byte{"cam A/readme.md": []byte("another readme\n")}
	e.upload(c2.UploadToken, "cam A/readme.md", again["cam A/readme.md"])
	resp, body = e.req("POST", "/p/demo/packages/"+c2.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c2.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	d2 := e.waitSettled(e.onlyDelivery(c2.Package.ID, "portal").ID)
	e.checkDelivered(d2, again, "Portal Downloads/Demo Portal/Shoot 1 (2)", "Package: Shoot 1\nUploader: other@example.com\nPortal: Demo Portal")
	if d2.Title != "Shoot 1 (2)" {
		t.Fatalf("second package collection titled %q, want %q", d2.Title, "Shoot 1 (2)")
	}
	want = append(want, "Demo Portal/Shoot 1 (2)/", "Demo Portal/Shoot 1 (2)/cam A/", "Demo Portal/Shoot 1 (2)/cam A/readme.md")
	sort.Strings(want)
	if got := e2eSortedKeys(e.tree(portalRoot, "")); !reflect.DeepEqual(got, want) {
		t.Fatalf("collection tree after the second package\n got %q\nwant %q", got, want)
	}

	// Send to Cloud of a package without a portal: into MASV/<name>.
	var own created
	resp, body = e.req("POST", "/api/v1/packages", map[string]string{"name": "Shoot 1"}, e.admin()...)
	e.mustJSON(resp, body, 201, &own)
	sent := map[string][]byte{"a/b.txt": []byte("sent to cloud\n")}
	e.upload(own.UploadToken, "a/b.txt", sent["a/b.txt"])
	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/finalize", nil, e.admin()...)
	e.mustJSON(resp, body, 200, nil)
	var sd struct {
		Delivery web.Delivery `json:"delivery"`
	}
	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/deliveries", map[string]string{"connection_id": e.conn.ID}, e.admin()...)
	e.mustJSON(resp, body, 202, &sd)
	if sd.Delivery.Origin != "send_to_cloud" {
		t.Fatalf("Send to Cloud made %+v", sd.Delivery)
	}
	d3 := e.waitSettled(sd.Delivery.ID)
	e.checkDelivered(d3, sent, "MASV/Shoot 1", "Package: Shoot 1\nUploader: admin@example.com")
	if got := e2eSortedKeys(e.tree(e.root("MASV"), "")); !reflect.DeepEqual(got, []string{"Shoot 1/", "Shoot 1/a/", "Shoot 1/a/b.txt"}) {
		t.Fatalf("MASV tree %q", got)
	}
	if got := e2eSortedKeys(e.tree(portalRoot, "")); !reflect.DeepEqual(got, want) {
		t.Fatalf("Send to Cloud changed the portal tree: %q", got)
	}
}

// TestPortalDeliveryStartsBeforeThePackageIsFinalized: with Deliver to
// Cloud, a file is delivered as soon as its upload completes, while the
// package is still uploading; the delivery settles only after finalize.
func TestPortalDeliveryStartsBeforeThePackageIsFinalized(t *testing.T) {
	e := newE2E(t, "s3")
	e.portal(map[string]any{"name": "Pipe", "slug": "pipe", "active": true, "connection_ids": []string{e.conn.ID}})
	c := e.createPortalPackage("pipe", "Rushes", "s@example.com")
	files := map[string][]byte{"day 1/first.txt": []byte("the first file\n")}
	e.upload(c.UploadToken, "day 1/first.txt", files["day 1/first.txt"])

	id := e.onlyDelivery(c.Package.ID, "portal").ID
	ctx, cancel := context.WithTimeout(t.Context(), e2eBound)
	defer cancel()
	var d web.Delivery
	for {
		d = e.delivery(id)
		if len(d.Files) == 1 && d.Files[0].State == "delivered" {
			break
		}
		if len(d.Files) > 0 && d.Files[0].State == "failed" {
			t.Fatalf("the first file failed: %+v", d.Files[0])
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the first file was not delivered before finalize: %+v", d)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if d.SettledAt != nil || d.State == "delivered" || d.State == "failed" || d.State == "partially failed" {
		t.Fatalf("delivery settled (%s) before the package was finalized", d.State)
	}
	var pkg struct {
		Package web.Package `json:"package"`
	}
	resp, body := e.req("GET", "/api/v1/packages/"+c.Package.ID, nil, e.admin()...)
	e.mustJSON(resp, body, 200, &pkg)
	if pkg.Package.State != web.StateUploading {
		t.Fatalf("package %s while its first file was delivered, want uploading", pkg.Package.State)
	}

	files["day 2/second.txt"] = []byte("the second file\n")
	e.upload(c.UploadToken, "day 2/second.txt", files["day 2/second.txt"])
	resp, body = e.req("POST", "/p/pipe/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	if got := e.onlyDelivery(c.Package.ID, "portal").ID; got != id {
		t.Fatalf("finalize made delivery %s, the pipelined one is %s", got, id)
	}
	d = e.waitSettled(id)
	e.checkDelivered(d, files, "Portal Downloads/Pipe/Rushes", "Package: Rushes\nUploader: s@example.com\nPortal: Pipe")
}

func (e *e2e) createPortalPackage(slug, name, sender string) created {
	e.t.Helper()
	var c created
	resp, body := e.req("POST", "/p/"+slug+"/packages", map[string]string{"name": name, "sender_email": sender})
	e.mustJSON(resp, body, 201, &c)
	return c
}

// uploadParallel sends data as n concurrent partial uploads and one final
// upload joining them (tus concatenation), as tus-js-client's parallel
// uploads do. Each partial carries the file's path, name and whole size
// (what admission checks) and its own SHA-256; the final declares no
// SHA-256, like a browser: delivery's sequential read is the whole-file check.
func (e *e2e) uploadParallel(tok, rel string, data []byte, n int) {
	e.t.Helper()
	locs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		part := data[i*len(data)/n : (i+1)*len(data)/n]
		wg.Go(func() {
			sum := sha256.Sum256(part)
			meta := map[string]string{"package_token": tok, "relativePath": rel, "filename": path.Base(rel),
				"file_size": fmt.Sprint(len(data)), "sha256": hex.EncodeToString(sum[:])}
			resp, body, err := e2eTusPost(e.srv.URL, part, e2eTusMeta(meta), "Upload-Concat", "partial", "Upload-Length", fmt.Sprint(len(part)),
				"Authorization", "Bearer "+tok, "Content-Type", "application/offset+octet-stream")
			switch {
			case err != nil:
				errs[i] = err
			case resp.StatusCode != http.StatusCreated || resp.Header.Get("Upload-Offset") != fmt.Sprint(len(part)):
				errs[i] = fmt.Errorf("partial %d: %d offset %s: %s", i, resp.StatusCode, resp.Header.Get("Upload-Offset"), body)
			default:
				locs[i] = resp.Header.Get("Location")
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			e.t.Fatalf("uploading %s in %d partials: %v", rel, n, err)
		}
		if j := strings.Index(locs[i], "/uploads/"); j >= 0 {
			locs[i] = locs[i][j:]
		}
	}
	meta := e2eTusMeta(map[string]string{"package_token": tok, "relativePath": rel, "filename": path.Base(rel)})
	resp, body := e.req("POST", "/uploads/", nil, "Tus-Resumable", "1.0.0", "Upload-Concat", "final;"+strings.Join(locs, " "),
		"Authorization", "Bearer "+tok, "Upload-Metadata", meta)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("final upload of %s: %d %s", rel, resp.StatusCode, body)
	}
}

func e2eTusMeta(meta map[string]string) string {
	var parts []string
	for _, k := range e2eSortedKeys(meta) {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(meta[k])))
	}
	return strings.Join(parts, ",")
}

// e2eTusPost is a creation-with-upload request that reports instead of failing
// the test, so partials can go from several goroutines.
func e2eTusPost(base string, data []byte, meta string, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest("POST", base+"/uploads/", bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Metadata", meta)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// onlyDelivery returns the package's single delivery, checking its origin.
func (e *e2e) onlyDelivery(packageID, origin string) web.Delivery {
	e.t.Helper()
	var list struct {
		Deliveries []web.Delivery `json:"deliveries"`
	}
	resp, body := e.req("GET", "/api/v1/packages/"+packageID+"/deliveries", nil, e.admin()...)
	e.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 1 || list.Deliveries[0].Origin != origin || list.Deliveries[0].ConnectionID != e.conn.ID {
		e.t.Fatalf("deliveries of package %s: %+v, want one %s delivery to %s", packageID, list.Deliveries, origin, e.conn.ID)
	}
	return list.Deliveries[0]
}

func (e *e2e) delivery(id string) web.Delivery {
	e.t.Helper()
	var d struct {
		Delivery web.Delivery `json:"delivery"`
	}
	resp, body := e.req("GET", "/api/v1/deliveries/"+id, nil, e.admin()...)
	e.mustJSON(resp, body, 200, &d)
	return d.Delivery
}

// waitSettled polls the delivery (bounded) until it settles and returns it.
func (e *e2e) waitSettled(id string) web.Delivery {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), e2eBound)
	defer cancel()
	for {
		d := e.delivery(id)
		if d.SettledAt != nil {
			return d
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("delivery %s still %s: %+v", id, d.State, d.Files)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkDelivered checks a settled delivery of exactly files in iconik and
// in the storage, under dirRoot.
func (e *e2e) checkDelivered(d web.Delivery, files map[string][]byte, dirRoot, description string) {
	e.t.Helper()
	ctx := e.t.Context()
	if d.State != "delivered" || len(d.Errors) != 0 {
		e.t.Fatalf("delivery %s, want delivered: %+v", d.State, d.Errors)
	}
	if len(d.Files) != len(files) || d.BytesDone != d.Bytes {
		e.t.Fatalf("%d files with %d/%d bytes, want the %d sent, all done", len(d.Files), d.BytesDone, d.Bytes, len(files))
	}
	e.waitPackageJob(d.IconikJobID)
	for _, f := range d.Files {
		data, ok := files[f.Path]
		if !ok {
			e.t.Fatalf("delivered %s, which was not sent", f.Path)
		}
		want := sha256.Sum256(data)
		if f.State != "delivered" || f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(want[:]) {
			e.t.Fatalf("%s: %+v, want delivered with %d bytes and SHA-256 %x", f.Path, f, len(data), want)
		}
		a, err := e.cl.AssetGet(ctx, f.AssetID)
		if err != nil {
			e.t.Fatal(err)
		}
		if a.Title != path.Base(f.Path) || a.ExternalID != f.FileID {
			e.t.Fatalf("%s: asset titled %q with external id %q, want %q and %q", f.Path, a.Title, a.ExternalID, path.Base(f.Path), f.FileID)
		}

		dir := dirRoot
		if p := path.Dir(f.Path); p != "." {
			dir += "/" + p
		}
		var icFiles []iconik.File
		for x, err := range e.cl.FileList(ctx, f.AssetID) {
			if err != nil {
				e.t.Fatal(err)
			}
			icFiles = append(icFiles, x)
		}
		md := md5.Sum(data)
		if len(icFiles) != 1 || icFiles[0].DirectoryPath != dir || icFiles[0].Status != "CLOSED" || int64(icFiles[0].Size) != int64(len(data)) ||
			icFiles[0].StorageID != e.conn.Storage.ID || icFiles[0].Checksum != hex.EncodeToString(md[:]) {
			e.t.Fatalf("%s: iconik files %+v, want one CLOSED in %q on %s with md5 %x", f.Path, icFiles, dir, e.conn.Storage.ID, md)
		}

		// The object itself, read back from the storage at the mirrored path
		// (the emulator's storages keep objects under their path "ferry").
		got := e.object("ferry/" + dir + "/" + path.Base(f.Path))
		if gotSum := sha256.Sum256(got); !bytes.Equal(got, data) || gotSum != want {
			e.t.Fatalf("%s: the storage holds %d bytes (SHA-256 %x), sent %d (%x)", f.Path, len(got), gotSum, len(data), want)
		}

		var jobs []iconik.Job
		for j, err := range e.cl.JobList(ctx, iconik.JobListParams{ObjectID: f.AssetID}) {
			if err != nil {
				e.t.Fatal(err)
			}
			if j.Type == "TRANSFER" {
				jobs = append(jobs, j)
			}
		}
		if len(jobs) != 1 || jobs[0].Status != "FINISHED" || jobs[0].Progress != 100 || jobs[0].Title != f.Path || jobs[0].ParentID != d.IconikJobID {
			e.t.Fatalf("%s: transfer jobs %+v, want one FINISHED at 100 under package job %s", f.Path, jobs, d.IconikJobID)
		}

		mv, err := e.cl.MetadataValuesGet(ctx, f.AssetID, e.conn.MetadataViewID, iconik.MetadataValuesGetParams{})
		if err != nil {
			e.t.Fatal(err)
		}
		if vals := mv.MetadataValues[e.conn.MetadataField].FieldValues; len(vals) != 1 || fmt.Sprint(vals[0].Value) != description {
			e.t.Fatalf("%s: %s %+v, want %q", f.Path, e.conn.MetadataField, vals, description)
		}
	}
}

// waitPackageJob polls (bounded) until the package's iconik job is
// FINISHED: the API reports a delivery settled as soon as its last file
// settles, and a settle job then closes the parent job (and emits the event).
func (e *e2e) waitPackageJob(id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), e2eBound)
	defer cancel()
	for {
		j, err := e.cl.JobGet(ctx, id)
		if err != nil {
			e.t.Fatalf("reading package job %s: %v", id, err)
		}
		switch j.Status {
		case "FINISHED":
			return
		case "FAILED", "ABORTED":
			e.t.Fatalf("package job %s: %s %s", id, j.Status, j.ErrorMessage)
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("package job %s still %s", id, j.Status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *e2e) object(key string) []byte {
	e.t.Helper()
	rc, _, err := e.emu.OpenObject(e.conn.Storage.ID, key)
	if err != nil {
		e.t.Fatalf("reading %s from storage %s: %v", key, e.conn.Storage.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("reading %s from storage %s: %v", key, e.conn.Storage.Name, err)
	}
	return b
}

// root returns the one root collection titled title.
func (e *e2e) root(title string) string {
	e.t.Helper()
	var ids []string
	for c, err := range e.cl.CollectionList(e.t.Context(), iconik.CollectionListParams{IsRoot: new(true)}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if c.Title == title {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) != 1 {
		e.t.Fatalf("%d root collections titled %q, want 1", len(ids), title)
	}
	return ids[0]
}

// tree maps every collection ("a/") and asset ("a/b.txt") under parent,
// by title path, to its id. A title seen twice at one place fails the test:
// nothing may be created twice.
func (e *e2e) tree(parent, prefix string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for it, err := range e.cl.CollectionContentsList(e.t.Context(), parent, iconik.CollectionContentsListParams{}) {
		if err != nil {
			e.t.Fatal(err)
		}
		p := prefix + it.Title
		if it.ObjectType == "collections" {
			p += "/"
		}
		if _, dup := out[p]; dup {
			e.t.Fatalf("%s is in the collection tree twice", p)
		}
		out[p] = it.ID
		if it.ObjectType == "collections" {
			for k, v := range e.tree(it.ID, p) {
				out[k] = v
			}
		}
	}
	return out
}

// waitKeyframe polls (bounded) until the asset has a keyframe: the
// emulator makes them in the background, from the delivered bytes.
func (e *e2e) waitKeyframe(name, assetID string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), e2eBound)
	defer cancel()
	for {
		for k, err := range e.cl.KeyframeList(ctx, assetID, iconik.KeyframeListParams{}) {
			if err != nil {
				e.t.Fatalf("%s: listing keyframes: %v", name, err)
			}
			if k.Type == "KEYFRAME" || k.Type == "POSTER" {
				return
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: asset %s got no keyframe", name, assetID)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func e2eMediaKind(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image"
	case ".mp4":
		return "video"
	}
	return ""
}

func e2eSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func e2ePNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for x := range 32 {
		for y := range 24 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// e2eVideo makes a one-second MPEG-4 video with ffmpeg's test pattern.
func e2eVideo(t *testing.T) []byte {
	t.Helper()
	ffmpeg := testbed.Binary(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "clip.mp4")
	cmd := exec.CommandContext(t.Context(), ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc=duration=1:size=160x120:rate=10", "-c:v", "mpeg4", "-pix_fmt", "yuv420p", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making a test video with ffmpeg: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
