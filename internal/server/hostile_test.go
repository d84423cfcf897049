package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// A hostile sequence is what an outside tester sends a running server with a
// portal upload token: requests that must each be answered with the expected
// status and contract error code (never a 5xx), after which the server is
// stopped and started again on the same data directory and must come up and
// serve. Rows are data, so a sequence found by another item joins the table
// as one more row.
type hostileSequence struct {
	name string
	// limits are the portal's limits (nil: none).
	limits map[string]any
	steps  []hostileStep
}

// hostileStep is one request. In URL, Header values and Meta values,
// "{token}" is the package's upload token and "{X}" is the upload URL path
// an earlier step saved with SaveAs "X".
type hostileStep struct {
	Method string
	URL    string // default "/uploads/"
	Header map[string]string
	Meta   map[string]string // tus Upload-Metadata, base64-encoded here
	Body   []byte
	SaveAs string
	Status int
	Code   string   // the JSON error code when Status >= 400
	Says   []string // words the error message must contain
}

// create is a tus creation of a whole file of size bytes, sending body with it.
func create(rel string, size int, body []byte) hostileStep {
	return hostileStep{Method: "POST", Header: map[string]string{"Upload-Length": fmt.Sprint(size)},
		Meta: map[string]string{"relativePath": rel}, Body: body}
}

func partialOf(rel string, body []byte, fileSize int) hostileStep {
	return hostileStep{Method: "POST", Header: map[string]string{"Upload-Length": fmt.Sprint(len(body)), "Upload-Concat": "partial"},
		Meta: map[string]string{"relativePath": rel, "file_size": fmt.Sprint(fileSize)}, Body: body}
}

func finalOf(rel string, partials ...string) hostileStep {
	return hostileStep{Method: "POST", Header: map[string]string{"Upload-Concat": "final;" + strings.Join(partials, " ")},
		Meta: map[string]string{"relativePath": rel}}
}

func patch(at string, offset int, body []byte) hostileStep {
	return hostileStep{Method: "PATCH", URL: at, Header: map[string]string{"Upload-Offset": fmt.Sprint(offset)}, Body: body}
}

func (s hostileStep) save(name string) hostileStep { s.SaveAs = name; return s }

func (s hostileStep) want(status int, code string, says ...string) hostileStep {
	s.Status, s.Code, s.Says = status, code, says
	return s
}

var hostileSequences = []hostileSequence{
	{
		// issue 9 item 1: B replaces A's file row; A's completion is then
		// refused with a code saying so, not a 500 that breaks the restart.
		name: "an upload replaced by a second upload of the same path is completed",
		steps: []hostileStep{
			create("race.txt", 5, nil).save("A").want(201, ""),
			create("race.txt", 5, nil).save("B").want(201, ""),
			patch("{A}", 0, []byte("AAAAA")).want(410, "upload_replaced", "race.txt"),
			{Method: "HEAD", URL: "{A}", Status: 410},
			patch("{B}", 0, []byte("BBBBB")).want(204, ""),
			{Method: "DELETE", URL: "{A}", Status: 204}, // its owner may still remove it
			{Method: "HEAD", URL: "{A}", Status: 404},
		},
	},
	{
		name: "an upload replaced by a parallel upload of the same path is completed",
		steps: []hostileStep{
			create("race.txt", 4, nil).save("A").want(201, ""),
			partialOf("race.txt", []byte("PP"), 4).save("P1").want(201, ""),
			partialOf("race.txt", []byte("QQ"), 4).save("P2").want(201, ""),
			finalOf("race.txt", "{P1}", "{P2}").want(201, ""),
			patch("{A}", 0, []byte("AAAA")).want(410, "upload_replaced"),
		},
	},
	{
		// issue 9 item 3: a final lists each partial at most once.
		name:   "a final repeats a partial to pass the package size",
		limits: map[string]any{"max_package_size": 100},
		steps: []hostileStep{
			partialOf("big.bin", bytes.Repeat([]byte("x"), 60), 60).save("P").want(201, ""),
			finalOf("big.bin", "{P}", "{P}", "{P}").want(400, "partial_repeated"),
			finalOf("big.bin", "{P}").want(201, ""),
		},
	},
	{
		name: "a final repeats a partial on a portal without limits",
		steps: []hostileStep{
			partialOf("x.bin", []byte("abc"), 3).save("P").want(201, ""),
			finalOf("x.bin", "{P}", "{P}").want(400, "partial_repeated"),
		},
	},
	{
		// issue 9 item 4: lengths past the server's maximum are refused
		// before anything is stored, and the package stays usable.
		name: "two huge Upload-Lengths in one package",
		steps: []hostileStep{
			create("huge1.bin", 1<<63-1, nil).want(413, "upload_too_large", "Tus-Max-Size"),
			create("huge2.bin", 1<<63-1, nil).want(413, "upload_too_large"),
			create("fine.bin", 3, []byte("abc")).want(201, ""),
		},
	},
	{
		name: "a deferred length declared past the maximum",
		steps: []hostileStep{
			{Method: "POST", Header: map[string]string{"Upload-Defer-Length": "1"}, Meta: map[string]string{"relativePath": "later.bin"},
				SaveAs: "A", Status: 201},
			{Method: "PATCH", URL: "{A}", Header: map[string]string{"Upload-Offset": "0", "Upload-Length": fmt.Sprint(int64(1<<63 - 1))},
				Status: 413, Code: "upload_too_large"},
		},
	},
	{
		// issue 9 item 11: folders differing only in case collide like files.
		name: "folders that differ only in case",
		steps: []hostileStep{
			create("Dir/a.txt", 1, []byte("a")).want(201, ""),
			create("dir/b.txt", 1, []byte("b")).want(409, "path_duplicate", "Dir"),
			create("DIR/sub/c.txt", 1, []byte("c")).want(409, "path_duplicate"),
			create("Dir/sub/c.txt", 1, []byte("c")).want(201, ""),
			create("Dir/SUB/d.txt", 1, []byte("d")).want(409, "path_duplicate", "Dir/sub"),
		},
	},
	{
		name: "folders that differ only in Unicode normalisation and case",
		steps: []hostileStep{
			create("Caf\u00e9/a.txt", 1, []byte("a")).want(201, ""),
			create("CAFE\u0301/b.txt", 1, []byte("b")).want(409, "path_duplicate"),
		},
	},
	{
		// Earlier findings, kept as rows so the restart covers them too.
		name:   "paths and limits refused before storage",
		limits: map[string]any{"max_file_size": 20, "denied_extensions": []string{"exe"}},
		steps: []hostileStep{
			create("../../escape.txt", 1, []byte("x")).want(400, "path_dot_segment"),
			create("/etc/passwd", 1, []byte("x")).want(400, "path_absolute"),
			create("a\\..\\b.txt", 1, []byte("x")).want(400, "path_backslash"),
			create("virus.exe", 1, []byte("x")).want(422, "extension_denied"),
			create("big.bin", 21, nil).want(413, "file_too_large"),
			create("ok.txt", 2, []byte("ok")).want(201, ""),
			create("OK.TXT", 2, []byte("ok")).want(409, "path_duplicate"),
			create("ok.txt/inside.txt", 2, []byte("ok")).want(409, "path_file_folder_conflict"),
		},
	},
	{
		// issue 9 item 11c: a create with no name says which keys it read.
		name: "a create with no name",
		steps: []hostileStep{
			{Method: "POST", Header: map[string]string{"Upload-Length": "1"}, Body: []byte("x"),
				Status: 400, Code: "path_empty", Says: []string{"filename", "relativePath"}},
			{Method: "POST", Header: map[string]string{"Upload-Length": "1", "Upload-Concat": "partial"}, Body: []byte("x"),
				Status: 400, Code: "partial_metadata_required", Says: []string{"filename", "relativePath", "file_size"}},
		},
	},
}

func TestHostileSequencesAnswer4xxAndTheServerRestarts(t *testing.T) {
	onEveryDatabase(t, testHostileSequences)
}

func testHostileSequences(t *testing.T, h0 *harness) {
	for i, seq := range hostileSequences {
		t.Run(seq.name, func(t *testing.T) {
			h := h0
			if i > 0 { // a fresh server (and database) per sequence, on the same kind of database
				h = newHarnessOn(t, freshDSN(t, h0))
			}
			portal := map[string]any{"name": "Hostile", "slug": "hostile", "password": "letmein"}
			if seq.limits != nil {
				portal["limits"] = seq.limits
			}
			h.portal(portal)
			pkg := h.newPackage("hostile")
			saved := map[string]string{"token": pkg.UploadToken}
			for i, st := range seq.steps {
				h.hostileStep(i, st, saved)
			}
			h.restart()
			h.servesAFreshUpload()
		})
	}
}

// freshDSN is a new empty database of the kind h runs on.
func freshDSN(t *testing.T, h *harness) string {
	if h.cfg.DatabaseURL == "" {
		return ""
	}
	return testbed.Postgres(t).CreateDatabase(t)
}

// hostileStep sends one step and checks its answer.
func (h *harness) hostileStep(i int, st hostileStep, saved map[string]string) {
	h.t.Helper()
	expand := func(s string) string {
		for k, v := range saved {
			s = strings.ReplaceAll(s, "{"+k+"}", v)
		}
		return s
	}
	url := st.URL
	if url == "" {
		url = "/uploads/"
	}
	hdr := []string{"Tus-Resumable", "1.0.0", "Authorization", "Bearer " + saved["token"]}
	if st.Body != nil || st.Method == "PATCH" {
		hdr = append(hdr, "Content-Type", "application/offset+octet-stream")
	}
	for k, v := range st.Header {
		hdr = append(hdr, k, expand(v))
	}
	if st.Meta != nil {
		keys := make([]string, 0, len(st.Meta))
		for k := range st.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(expand(st.Meta[k]))))
		}
		hdr = append(hdr, "Upload-Metadata", strings.Join(parts, ","))
	}
	body := st.Body
	if body == nil {
		body = []byte{}
	}
	resp, got := h.req(st.Method, expand(url), body, hdr...)
	what := fmt.Sprintf("step %d (%s %s)", i, st.Method, url)
	if resp.StatusCode != st.Status {
		h.t.Fatalf("%s answered %d, want %d: %s", what, resp.StatusCode, st.Status, got)
	}
	if st.Status >= 400 && st.Method != "HEAD" { // a HEAD answer has no body
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(got, &e); err != nil || e.Error.Code != st.Code {
			h.t.Fatalf("%s answered %s, want error code %q", what, got, st.Code)
		}
		for _, w := range st.Says {
			if !strings.Contains(e.Error.Message, w) {
				h.t.Errorf("%s: message %q does not mention %q", what, e.Error.Message, w)
			}
		}
	}
	if st.SaveAs != "" {
		loc := resp.Header.Get("Location")
		if j := strings.Index(loc, "/uploads/"); j >= 0 {
			loc = loc[j:]
		}
		if loc == "" {
			h.t.Fatalf("%s: no Location to save as %s", what, st.SaveAs)
		}
		saved[st.SaveAs] = loc
	}
}

// restart stops the server and starts it again on the same data directory,
// as `ferry serve` would be after a stop: Open reconciles before serving.
func (h *harness) restart() {
	h.t.Helper()
	h.srv.Close()
	if err := h.app.Close(); err != nil {
		h.t.Fatal(err)
	}
	app, err := Open(h.t.Context(), h.cfg, Options{NoSync: true, Now: func() time.Time { return h.now }})
	if err != nil {
		h.t.Fatalf("the server does not start again on the same data directory: %v", err)
	}
	h.app = app
	h.srv = httptest.NewServer(app.Handler())
	h.t.Cleanup(func() { h.srv.Close(); app.Close() })
}

// servesAFreshUpload proves the server serves: a new package takes a file
// and finalizes.
func (h *harness) servesAFreshUpload() {
	h.t.Helper()
	pkg := h.newPackage("hostile")
	h.upload(pkg.UploadToken, "after/restart.txt", []byte("still serving"))
	resp, body := h.req("POST", "/p/hostile/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("finalizing after the restart: %d %s", resp.StatusCode, body)
	}
}

// issue 9 item 1, at start-up: an upload that finished while its completion
// could not be recorded, and whose file row is then gone, can never be
// completed. Start-up gives it up, logs it once with its package and path,
// leaves its bytes to the sweeper, and serves. (Today a newer upload of the
// same path stops the older one at once; a data directory written by an
// older ferry, which replaced the row only, holds exactly this state.)
func TestStartupSurvivesAnUploadThatCanNeverBeCompleted(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Hostile", "slug": "hostile", "password": "letmein"})
	pkg := h.newPackage("hostile")
	h.srv.Close()
	h.app.Close()

	// A process whose completion step fails (as if it died there).
	broken, err := Open(t.Context(), h.cfg, Options{NoSync: true, OnComplete: func(context.Context, db.Tx, *db.Package, *db.File) error {
		return errors.New("simulated crash before commit")
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.app, h.srv = broken, httptest.NewServer(broken.Handler())
	saved := map[string]string{"token": pkg.UploadToken}
	h.hostileStep(0, create("race.txt", 5, nil).save("A").want(201, ""), saved)
	h.hostileStep(1, patch("{A}", 0, []byte("AAAAA")).want(500, "completion_failed"), saved)
	f, err := h.app.DB.FileGetByUploadID(t.Context(), &db.FileGetByUploadIDParams{UploadID: strings.TrimPrefix(saved["A"], "/uploads/")})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.DB.FileDelete(t.Context(), &db.FileDeleteParams{ID: f.ID}); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	for range 2 {
		h.srv.Close()
		h.app.Close()
		app, err := Open(t.Context(), h.cfg, Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("the server does not start: %v", err)
		}
		h.app, h.srv = app, httptest.NewServer(app.Handler())
		t.Cleanup(func() { h.srv.Close(); app.Close() })
	}
	var failed []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "cannot be completed") {
			failed = append(failed, l)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "package="+pkg.Package.ID) || !strings.Contains(failed[0], "path=race.txt") {
		t.Fatalf("over two starts the upload that cannot be completed was logged as %q, want once with its package and path", failed)
	}
	// A says why it is gone, until its bytes are the sweeper's.
	h.hostileStep(2, patch("{A}", 5, nil).want(410, "upload_replaced", "race.txt"), saved)
	if _, err := h.app.Ingest.Cleanup(t.Context(), -time.Hour); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(saved["A"], "/uploads/")
	if _, err := os.Stat(filepath.Join(h.data, "uploads", id+".bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the sweeper left the bytes of the upload that could not be completed: %v", err)
	}
	// The path takes a new upload; the server serves.
	h.hostileStep(3, create("race.txt", 5, []byte("BBBBB")).want(201, ""), saved)
	h.servesAFreshUpload()
}

// A completion that failed for a passing reason (the database was away) is
// retried by the sweeper while the server runs, not only at the next start.
func TestSweepRetriesACompletionThatFailedForAPassingReason(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	h.srv.Close()
	h.app.Close()
	var down atomic.Bool
	down.Store(true)
	app, err := Open(t.Context(), h.cfg, Options{NoSync: true, OnComplete: func(context.Context, db.Tx, *db.Package, *db.File) error {
		if down.Load() {
			return errors.New("queue unreachable")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.app, h.srv = app, httptest.NewServer(app.Handler())
	t.Cleanup(func() { h.srv.Close(); app.Close() })
	saved := map[string]string{"token": pkg.UploadToken}
	h.hostileStep(0, create("late.txt", 4, []byte("late")).want(500, "completion_failed"), saved)
	down.Store(false)
	if _, _, err := app.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got struct{ Package web.Package }
	resp, body := h.req("GET", "/p/p/packages/"+pkg.Package.ID, nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, &got)
	if len(got.Package.Files) != 1 || got.Package.Files[0].State != "complete" {
		t.Fatalf("after a sweep: %s", body)
	}
}
