package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/send/tus"
)

// countingProxy forwards to the server and counts requests by kind.
type countingProxy struct {
	mu     sync.Mutex
	counts map[string]int
	bodies map[string][]string // JSON bodies of package calls, by kind
	// finalizeSent is when the first finalize arrived; lastPatchDone when
	// the last PATCH carrying bytes was answered.
	finalizeSent, lastPatchDone time.Time
}

func (p *countingProxy) kind(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/uploads/") && r.Method == http.MethodPost && r.Header.Get("Upload-Concat") != "" && strings.HasPrefix(r.Header.Get("Upload-Concat"), "final"):
		return "tus concat"
	case strings.HasPrefix(r.URL.Path, "/uploads/") && r.Method == http.MethodPatch && r.ContentLength == 0:
		// httputil's proxy loses the digest trailer of a chunked PATCH; the
		// sender then declares the digest in an empty PATCH (tus.Client).
		return "tus PATCH declaring a digest"
	case strings.HasPrefix(r.URL.Path, "/uploads/"):
		return "tus " + r.Method
	case strings.HasSuffix(r.URL.Path, "/finalize"):
		return "finalize"
	case strings.HasSuffix(r.URL.Path, "/packages") && r.Method == http.MethodPost:
		return "create"
	}
	return r.Method + " " + r.URL.Path
}

func startCountingProxy(t *testing.T, h *harness) (*countingProxy, string) {
	u, _ := url.Parse(h.srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &countingProxy{counts: map[string]int{}, bodies: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := p.kind(r)
		var body []byte
		if k == "create" || k == "finalize" {
			body, _ = readAllAndRestore(r)
		}
		p.mu.Lock()
		p.counts[k]++
		if body != nil {
			p.bodies[k] = append(p.bodies[k], string(body))
		}
		if k == "finalize" && p.finalizeSent.IsZero() {
			p.finalizeSent = time.Now()
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
		if k == "tus PATCH" {
			p.mu.Lock()
			p.lastPatchDone = time.Now()
			p.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func readAllAndRestore(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	if r.Body == nil {
		return nil, nil
	}
	_, err := b.ReadFrom(r.Body)
	r.Body.Close()
	r.Body = readCloser{bytes.NewReader(b.Bytes())}
	return b.Bytes(), err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// A sender's first uploads are created by the package call and its last
// split file is joined by the finalize: on a long link each saves a round
// trip. The file still arrives whole, verified and once.
func TestFerrySendCreatesItsFirstUploadsWithThePackageAndJoinsTheLastFileInTheFinalize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		streams int
		// requests with bytes expected besides the package call and the
		// finalize: no creation, no HEAD, no concatenation
		want map[string]int
	}{
		{"one file split over four streams", 4, map[string]int{"tus PATCH": 4, "tus OPTIONS": 4}},
		{"one file whole over one stream", 1, map[string]int{"tus PATCH": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.loadOpenAPI()
			h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
			p, base := startCountingProxy(t, h)
			data, res := sendClip(t, base, tc.streams, 3)
			want := map[string]int{"create": 1, "finalize": 1}
			for k, v := range tc.want {
				want[k] = v
			}
			delete(p.counts, "tus PATCH declaring a digest")
			if fmt.Sprint(p.counts) != fmt.Sprint(want) {
				t.Errorf("requests %v, want %v", p.counts, want)
			}
			if tc.streams > 1 && !strings.Contains(p.bodies["finalize"][0], `"concat"`) {
				t.Errorf("the finalize carried no concatenation: %s", p.bodies["finalize"][0])
			}
			if tc.streams > 1 && !p.finalizeSent.Before(p.lastPatchDone) {
				t.Errorf("the finalize left %v after the last part was answered; it should leave once the last byte is written", p.finalizeSent.Sub(p.lastPatchDone))
			}
			if f := h.onlyFile(res.PackageID, data); path.Base(f.Path) != "clip.mov" {
				t.Errorf("path %q", f.Path)
			}
			resp, body := h.req("GET", "/api/v1/packages/"+res.PackageID, nil, h.admin()...)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"state": "finalized"`) {
				t.Fatalf("package: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// A sender killed after its first uploads were created with the package
// finds them in its state and continues them: nothing is sent twice.
func TestUploadsCreatedWithThePackageResumeAfterTheSenderIsStopped(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
	p, base := startCountingProxy(t, h)
	dir := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(5, 6)), 8<<20)
	if err := os.WriteFile(filepath.Join(dir, "clip.mov"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, _ := send.ParseTarget(base+"/p/send", "")
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	opts := send.Options{Target: target, Paths: []string{dir}, Info: send.PackageInfo{Email: "s@example.com"},
		Streams: 2, Large: 1 << 20, StateDir: state, Progress: cancelAfter{n: 3 << 20, sent: new(atomic.Int64), cancel: cancel}}
	if _, err := send.Send(ctx, opts); err == nil {
		t.Fatal("the first run was stopped but reports success")
	}
	opts.Progress = nil
	res, err := send.Send(context.Background(), opts)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if p.counts["create"] != 1 {
		t.Errorf("%d package calls, want 1 (the second run resumes the package)", p.counts["create"])
	}
	if p.counts["tus HEAD"] < 1 {
		t.Errorf("the second run sent no HEAD: it did not resume the uploads created with the package (%v)", p.counts)
	}
	h.onlyFile(res.PackageID, data)
}

// cancelAfter stops a run once n bytes were sent.
type cancelAfter struct {
	n      int64
	sent   *atomic.Int64
	cancel context.CancelFunc
}

func (c cancelAfter) Total(int64, int64)      {}
func (c cancelAfter) FileStart(string, int64) {}
func (c cancelAfter) Resumed(string, int64)   {}
func (c cancelAfter) FileDone(string)         {}
func (c cancelAfter) Close()                  {}
func (c cancelAfter) Add(_ string, n int64) {
	if c.sent.Add(n) >= c.n {
		c.cancel()
	}
}

// The package call's uploads and the finalize's concatenations are tus
// requests in all but transport: bad specs are refused before anything is
// created, a refused upload is reported in its place, and a finalize retried
// after its concatenation ran joins nothing twice.
func TestPackageCallUploadsAndFinalizeConcatenations(t *testing.T) {
	h := newHarness(t)
	h.loadOpenAPI()
	h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
	countPackages := func() int {
		var pl struct{ Packages []json.RawMessage }
		resp, body := h.req("GET", "/api/v1/packages", nil, h.admin()...)
		h.mustJSON(resp, body, 200, &pl)
		return len(pl.Packages)
	}

	// Refused before anything is created.
	many := make([]map[string]any, 65)
	for i := range many {
		many[i] = map[string]any{"length": 1}
	}
	for _, bad := range []struct {
		uploads any
		code    string
	}{
		{many, "too_many_uploads"},
		{[]map[string]any{{"length": 1, "metadata": map[string]string{"bad key": "x"}}}, "invalid_metadata"},
		{[]map[string]any{{"length": -1}}, "invalid_upload"},
	} {
		resp, body := h.req("POST", "/p/send/packages", map[string]any{"sender_email": "s@example.com", "uploads": bad.uploads})
		if resp.StatusCode != 400 || !strings.Contains(string(body), bad.code) {
			t.Errorf("uploads %v: got %d %s, want 400 %s", bad.uploads, resp.StatusCode, body, bad.code)
		}
	}
	if n := countPackages(); n != 0 {
		t.Fatalf("%d packages after refused calls, want 0", n)
	}

	// Named in NFD, as macOS spells names; the package holds them in NFC, and
	// a retried finalize must still recognise its file.
	const nfdName = "cafe\u0301.mov"
	const nfdPath = "a/" + nfdName

	// Two partials and a refused upload (a path leaving the package).
	part := func(i int) map[string]any {
		return map[string]any{"length": 4, "partial": true, "metadata": map[string]string{
			"relativePath": nfdPath, "filename": nfdName, "partial_index": fmt.Sprint(i), "file_size": "8"}}
	}
	var c struct {
		created
		Uploads []struct {
			URL   string
			Error *struct {
				Status        int
				Code, Message string
			}
		}
	}
	resp, body := h.req("POST", "/p/send/packages", map[string]any{"sender_email": "s@example.com", "uploads": []any{
		part(0), part(1), map[string]any{"length": 3, "metadata": map[string]string{"relativePath": "../escape.mov", "filename": "escape.mov"}},
	}})
	h.mustJSON(resp, body, 201, &c)
	if len(c.Uploads) != 3 || c.Uploads[0].URL == "" || c.Uploads[1].URL == "" || c.Uploads[2].Error == nil || c.Uploads[2].Error.Status != 400 {
		t.Fatalf("uploads: %s", body)
	}
	auth := []string{"Authorization", "Bearer " + c.UploadToken}
	for i, u := range c.Uploads[:2] {
		path := strings.TrimPrefix(u.URL, h.srv.URL)
		resp, body := h.req("PATCH", path, []byte(fmt.Sprintf("%04d", i)), append(auth, "Tus-Resumable", "1.0.0", "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")...)
		if resp.StatusCode != 204 {
			t.Fatalf("PATCH %s: %d %s", path, resp.StatusCode, body)
		}
	}
	concat := map[string]any{"concat": []any{map[string]any{
		"partials": []string{c.Uploads[0].URL, c.Uploads[1].URL},
		"metadata": map[string]string{"relativePath": nfdPath, "filename": nfdName},
	}}}
	fin := "/p/send/packages/" + c.Package.ID + "/finalize"

	// The concatenation ran, but the finalize did not (a crash between them): the
	// retried finalize skips it instead of refusing the partials as taken.
	hdr := http.Header{"Tus-Resumable": {"1.0.0"}, "Authorization": {"Bearer " + c.UploadToken},
		"Upload-Concat":   {"final;" + c.Uploads[0].URL + " " + c.Uploads[1].URL},
		"Upload-Metadata": {tus.Metadata{"relativePath": nfdPath, "filename": nfdName}.Encode()}}
	req, _ := http.NewRequest("POST", h.srv.URL+"/uploads/", nil)
	req.Header = hdr
	r2, err := http.DefaultClient.Do(req)
	if err != nil || r2.StatusCode != 201 {
		t.Fatalf("concatenation: %v %v", err, r2)
	}
	r2.Body.Close()
	resp, body = h.req("POST", fin, concat, auth...)
	h.mustJSON(resp, body, 200, nil)
	if f := h.onlyFile(c.Package.ID, []byte("00000001")); f.Path != "a/caf\u00e9.mov" {
		t.Errorf("path %q", f.Path)
	}

	// A finalize's concatenation is refused as a tus one would be, and the package stays open.
	var c2 created
	resp, body = h.req("POST", "/p/send/packages", map[string]any{"sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &c2)
	resp, body = h.req("POST", "/p/send/packages/"+c2.Package.ID+"/finalize", map[string]any{"concat": []any{map[string]any{
		"partials": []string{h.srv.URL + "/uploads/nosuchupload"}, "metadata": map[string]string{"relativePath": "b.mov"}}}},
		"Authorization", "Bearer "+c2.UploadToken)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "not_found") {
		t.Fatalf("finalize with an unknown partial: %d %s", resp.StatusCode, body)
	}
	resp, body = h.req("GET", "/api/v1/packages/"+c2.Package.ID, nil, h.admin()...)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state": "uploading"`) {
		t.Fatalf("the package did not stay open: %s", body)
	}
}

// A finalize may name partials whose last bytes are still arriving (a sender
// finalizes once it has written everything): it waits for them, then joins
// the file; a partial that is gone answers at once.
func TestFinalizeWaitsForPartialsStillArriving(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
	part := func(i int) map[string]any {
		return map[string]any{"length": 4, "partial": true, "metadata": map[string]string{
			"relativePath": "clip.mov", "filename": "clip.mov", "partial_index": fmt.Sprint(i), "file_size": "8"}}
	}
	var c struct {
		created
		Uploads []struct{ URL string }
	}
	resp, body := h.req("POST", "/p/send/packages", map[string]any{"sender_email": "s@example.com", "uploads": []any{part(0), part(1)}})
	h.mustJSON(resp, body, 201, &c)
	patch := func(u string, off int, b string) {
		t.Helper()
		req, _ := http.NewRequest("PATCH", u, strings.NewReader(b))
		req.Header = http.Header{"Tus-Resumable": {"1.0.0"}, "Authorization": {"Bearer " + c.UploadToken},
			"Upload-Offset": {fmt.Sprint(off)}, "Content-Type": {"application/offset+octet-stream"}}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			t.Errorf("PATCH %s at %d: %v %v", u, off, err, resp)
			return
		}
		resp.Body.Close()
	}
	patch(c.Uploads[0].URL, 0, "abcd")
	patch(c.Uploads[1].URL, 0, "ef")
	fin := map[string]any{"concat": []any{map[string]any{"partials": []string{c.Uploads[0].URL, c.Uploads[1].URL},
		"metadata": map[string]string{"relativePath": "clip.mov", "filename": "clip.mov"}}}}
	var lastSent atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(300 * time.Millisecond)
		lastSent.Store(true)
		patch(c.Uploads[1].URL, 2, "gh")
	})
	resp, body = h.req("POST", "/p/send/packages/"+c.Package.ID+"/finalize", fin, "Authorization", "Bearer "+c.UploadToken)
	wg.Wait()
	h.mustJSON(resp, body, 200, nil)
	if !lastSent.Load() {
		t.Fatal("the finalize answered before the last partial was complete")
	}
	h.onlyFile(c.Package.ID, []byte("abcdefgh"))

	// A partial removed (as after a mismatch) answers at once, not after the wait.
	var c2 struct {
		created
		Uploads []struct{ URL string }
	}
	resp, body = h.req("POST", "/p/send/packages", map[string]any{"sender_email": "s@example.com", "uploads": []any{part(0)}})
	h.mustJSON(resp, body, 201, &c2)
	req, _ := http.NewRequest("DELETE", c2.Uploads[0].URL, nil)
	req.Header = http.Header{"Tus-Resumable": {"1.0.0"}, "Authorization": {"Bearer " + c2.UploadToken}}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE: %v %v", err, resp)
	}
	start := time.Now()
	resp, body = h.req("POST", "/p/send/packages/"+c2.Package.ID+"/finalize", map[string]any{"concat": []any{map[string]any{
		"partials": []string{c2.Uploads[0].URL}, "metadata": map[string]string{"relativePath": "clip.mov"}}}}, "Authorization", "Bearer "+c2.UploadToken)
	if resp.StatusCode != 404 {
		t.Fatalf("finalize over a removed partial: %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a removed partial was waited for (%v)", d)
	}
}

// onlyFile checks that package id holds one file, complete, of data's size
// and bytes, and returns it.
func (h *harness) onlyFile(id string, data []byte) db.File {
	h.t.Helper()
	files, err := h.app.DB.FileListByPackage(h.t.Context(), &db.FileListByPackageParams{PackageID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(files) != 1 || files[0].State != db.FileComplete || files[0].Size != int64(len(data)) {
		h.t.Fatalf("files of package %s: %+v", id, files)
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(h.storedSHA256(files[0].UploadID), sum[:]) {
		h.t.Fatal("the server stored different bytes than were sent")
	}
	return *files[0]
}

// sendClip sends one random 6 MiB clip.mov (seeded) through base's portal
// "send" with ferry send and the given streams (split above 1 MiB).
func sendClip(t *testing.T, base string, streams int, seed uint64) ([]byte, send.Result) {
	t.Helper()
	dir := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(seed, seed+1)), 6<<20+int(seed))
	if err := os.WriteFile(filepath.Join(dir, "clip.mov"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, err := send.ParseTarget(base+"/p/send", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := send.Send(context.Background(), send.Options{Target: target, Paths: []string{dir},
		Info: send.PackageInfo{Email: "s@example.com"}, Streams: streams, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return data, res
}
