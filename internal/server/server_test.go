package server

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// harness runs a real App (SQLite, tus, web) over httptest, with its data
// directory inside a root the tests watch for stray writes.
type harness struct {
	t      *testing.T
	root   string
	data   string
	app    *App
	srv    *httptest.Server
	token  string
	now    time.Time
	cfg    config.Config
	router routers.Router
}

// onEveryDatabase runs f on SQLite and on a real PostgreSQL (testbed).
func onEveryDatabase(t *testing.T, f func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newHarness(t)) })
	t.Run("postgres", func(t *testing.T) {
		pg := testbed.Postgres(t)
		f(t, newHarnessOn(t, pg.CreateDatabase(t)))
	})
}

func newHarness(t *testing.T) *harness { return newHarnessOn(t, "") }

// newHarnessOn runs the App on the database dsn ("" = SQLite in the data dir).
func newHarnessOn(t *testing.T, dsn string) *harness {
	t.Helper()
	return newHarnessWith(t, func(c *config.Config) { c.DatabaseURL = dsn })
}

// newHarnessWith runs the App on the default Config as edit changes it.
func newHarnessWith(t *testing.T, edit func(*config.Config)) *harness {
	t.Helper()
	return startHarness(t, t.TempDir(), Options{}, func(c *config.Config, _ string) { edit(c) })
}

// startHarness is every harness's start: the default Config with its data under root, as
// edit changes it (told the server's URL before the App opens), an admin and their API token,
// the App opened with opts (NoSync, and the harness's clock unless opts has one) and served.
func startHarness(t *testing.T, root string, opts Options, edit func(cfg *config.Config, url string)) *harness {
	t.Helper()
	h := &harness{t: t, root: root, now: time.Now().UTC()}
	h.data = filepath.Join(h.root, "data")
	srv := httptest.NewUnstartedServer(nil)
	cfg := config.Default("")
	cfg.DataDir = h.data
	if edit != nil {
		edit(&cfg, "http://"+srv.Listener.Addr().String())
	}
	if _, err := CreateUser(t.Context(), cfg, "admin@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, err := CreateAPIToken(t.Context(), cfg, "admin@example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	h.token, h.cfg = tok, cfg
	opts.NoSync = true
	if opts.Now == nil {
		opts.Now = func() time.Time { return h.now }
	}
	app, err := Open(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	srv.Config.Handler = app.Handler()
	srv.Start()
	h.srv = srv
	t.Cleanup(func() { srv.Close(); app.Close() })
	h.loadOpenAPI()
	return h
}

// serveForReal closes the harness's httptest server and App and runs the App
// on the same data through Serve (graceful shutdown included) on a free port,
// with shutdownTimeout (0: the default). stop ends Serve's context, as a
// signal would; served then carries Serve's result. h.app is the new App.
func (h *harness) serveForReal(shutdownTimeout time.Duration) (base string, stop func(), served <-chan error) {
	h.t.Helper()
	cfg := config.Default("")
	cfg.DataDir = h.data
	cfg.Addr = "127.0.0.1:0"
	if shutdownTimeout > 0 {
		cfg.ShutdownTimeout = shutdownTimeout
	}
	h.srv.Close()
	h.app.Close()
	app, err := Open(h.t.Context(), cfg, Options{NoSync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { app.Close() })
	h.app = app
	ctx, cancel := context.WithCancel(h.t.Context())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, func(a string) { addr <- a }) }()
	return "http://" + <-addr, cancel, done
}

func (h *harness) req(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, ok := body.([]byte); !ok && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	h.checkOpenAPI(req, resp, out)
	return resp, out
}

// loadOpenAPI fetches the server's own OpenAPI document: from then on every
// documented response a test receives is validated against it.
func (h *harness) loadOpenAPI() {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		h.t.Fatalf("loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(h.t.Context()); err != nil {
		h.t.Fatalf("invalid OpenAPI document: %v", err)
	}
	if h.router, err = gorillamux.NewRouter(doc); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) checkOpenAPI(req *http.Request, resp *http.Response, body []byte) {
	h.t.Helper()
	if h.router == nil {
		return
	}
	route, params, err := h.router.FindRoute(req)
	if err != nil {
		return // not part of the documented API (tus, pages, downloads)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(h.t.Context(), in); err != nil {
		h.t.Errorf("%s %s answered %d outside its OpenAPI description: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
}

func (h *harness) admin() []string { return []string{"Authorization", "Bearer " + h.token} }

func (h *harness) mustJSON(resp *http.Response, body []byte, status int, v any) {
	h.t.Helper()
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: got %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			h.t.Fatalf("decoding %s: %v", body, err)
		}
	}
}

type created struct {
	Package     web.Package `json:"package"`
	UploadToken string      `json:"upload_token"`
	UploadURL   string      `json:"upload_url"`
}

func (h *harness) portal(in map[string]any) web.Portal {
	h.t.Helper()
	var pr struct{ Portal web.Portal }
	resp, body := h.req("POST", "/api/v1/portals", in, h.admin()...)
	h.mustJSON(resp, body, 201, &pr)
	return pr.Portal
}

func (h *harness) newPackage(slug string) created {
	h.t.Helper()
	var c created
	resp, body := h.req("POST", "/p/"+slug+"/packages", map[string]string{"name": "Shoot", "sender_email": "s@example.com", "password": "letmein"})
	h.mustJSON(resp, body, 201, &c)
	return c
}

// tusUpload creates an upload with its whole body in the creation request
// (creation-with-upload), the path every uploader takes first.
func (h *harness) tusUpload(tok string, meta map[string]string, data []byte) (*http.Response, []byte) {
	h.t.Helper()
	var parts []string
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(meta[k])))
	}
	hdr := []string{"Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(len(data)), "Upload-Metadata", strings.Join(parts, ","),
		"Content-Type", "application/offset+octet-stream"}
	if tok != "" {
		hdr = append(hdr, "Authorization", "Bearer "+tok)
	}
	return h.req("POST", "/uploads/", data, hdr...)
}

func (h *harness) upload(tok, relPath string, data []byte) {
	h.t.Helper()
	sum := sha256.Sum256(data)
	resp, body := h.tusUpload(tok, map[string]string{"package_token": tok, "relativePath": relPath, "filename": filepath.Base(relPath), "sha256": hex.EncodeToString(sum[:])}, data)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Upload-Offset") != fmt.Sprint(len(data)) {
		h.t.Fatalf("upload %s: %d offset %s: %s", relPath, resp.StatusCode, resp.Header.Get("Upload-Offset"), body)
	}
}

// snapshot lists every file under the root, with sizes.
func snapshot(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostilePathsAreRefusedBeforeAnyByteIsStored(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Hostile", "slug": "hostile", "password": "letmein",
		"limits": map[string]any{"max_file_size": 1 << 20, "denied_extensions": []string{"exe"}}})
	pkg := h.newPackage("hostile")
	tok := pkg.UploadToken
	// Files the conflict cases collide with.
	h.upload(tok, "taken/clip.mov", []byte("first"))
	h.upload(tok, "folder/inner.mov", []byte("inner"))
	h.upload(tok, "Caf\u00e9.mov", []byte("nfc"))
	payload := []byte("HOSTILE-PAYLOAD-must-never-be-stored")
	long := strings.Repeat("a", 300)
	cases := []struct {
		name, rel, file string
		want            int
	}{
		{"parent traversal", "../evil.mov", "", 400},
		{"deep traversal", "../../../../etc/passwd", "", 400},
		{"traversal after a folder", "a/../../evil.mov", "", 400},
		{"traversal inside", "a/../b.mov", "", 400},
		{"dot segment", "a/./b.mov", "", 400},
		{"leading dot segment", "./a.mov", "", 400},
		{"just dot dot", "..", "", 400},
		{"just dot", ".", "", 400},
		{"absolute unix path", "/etc/passwd", "", 400},
		{"root only", "/", "", 400},
		{"windows drive with slash", "C:/Windows/evil.mov", "", 400},
		{"windows drive relative", "C:evil.mov", "", 400},
		{"backslash traversal", "..\\..\\evil.mov", "", 400},
		{"backslash separator", "a\\b.mov", "", 400},
		{"unc path", "\\\\server\\share\\x.mov", "", 400},
		{"empty segment", "a//b.mov", "", 400},
		{"folder without a file", "a/b/", "", 400},
		{"nothing at all", "", "", 400},
		{"uppy null without filename", "null", "", 400},
		{"slash in filename", "", "../x.mov", 400},
		{"reserved device name", "con.mov", "", 400},
		{"reserved device folder", "aux/file.mov", "", 400},
		{"reserved NUL upper case", "NUL.mov", "", 400},
		{"reserved COM1", "dir/COM1", "", 400},
		{"reserved LPT9 with extension", "LPT9.txt", "", 400},
		{"nul byte", "a\x00b.mov", "", 400},
		{"newline", "a\nb.mov", "", 400},
		{"delete control character", "a\x7f.mov", "", 400},
		{"trailing dot in folder", "folder./x.mov", "", 400},
		{"trailing space in folder", "folder /x.mov", "", 400},
		{"trailing dot in file", "x.mov.", "", 400},
		{"colon (alternate data stream)", "a.mov:stream", "", 400},
		{"segment longer than 255 bytes", long + ".mov", "", 400},
		{"path longer than the limit", strings.Repeat("d/", 2100) + "x.mov", "", 400},
		{"invalid utf-8", "\xff\xfe.mov", "", 400},
		{"overlong utf-8 dot dot", "\xc0\xae\xc0\xae/x.mov", "", 400},
		{"traversal hidden after a valid folder", "ok/fine/../../../x.mov", "", 400},
		{"tab character", "a\tb.mov", "", 400},
		{"escape character", "a\x1bb.mov", "", 400},
		{"exact duplicate", "taken/clip.mov", "", 409},
		{"case-insensitive duplicate", "TAKEN/Clip.MOV", "", 409},
		{"unicode form duplicate (NFD)", "Cafe\u0301.mov", "", 409},
		{"file where a folder is", "folder", "", 409},
		{"folder where a file is", "taken/clip.mov/x.mov", "", 409},
		{"denied extension", "virus.exe", "", 422},
		{"denied extension any case", "virus.EXE", "", 422},
	}
	uploadsBefore := snapshot(t, h.data)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]string{"package_token": tok, "relativePath": tc.rel}
			if tc.file != "" {
				meta["filename"] = tc.file
			}
			resp, body := h.tusUpload(tok, meta, payload)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("refusal is not a JSON error the uploader can act on: %s", body)
			}
		})
	}
	// Nothing was written anywhere: no file appeared, inside the data
	// directory or beside it, and the payload is in no file.
	after := snapshot(t, h.root)
	for p, size := range after {
		if !strings.HasPrefix(p, h.data+string(filepath.Separator)) {
			t.Errorf("file written outside the data directory: %s", p)
		}
		if _, ok := uploadsBefore[p]; !ok && !strings.HasSuffix(p, ".db-wal") && !strings.HasSuffix(p, ".db-shm") {
			t.Errorf("a refused upload left a file: %s (%d bytes)", p, size)
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, payload) {
			t.Errorf("the hostile payload was stored in %s", p)
		}
	}
	// The package still holds exactly the three legitimate files.
	var got struct{ Package web.Package }
	resp, body := h.req("GET", "/p/hostile/packages/"+pkg.Package.ID, nil, "Authorization", "Bearer "+tok)
	h.mustJSON(resp, body, 200, &got)
	if got.Package.FileCount != 3 || len(got.Package.Files) != 3 {
		t.Fatalf("package has %d files (count %d), want 3: %s", len(got.Package.Files), got.Package.FileCount, body)
	}
}

func TestUploadsAreRefusedBeforeStorageWhenThePortalSaysNo(t *testing.T) {
	onEveryDatabase(t, testPortalLimits)
}

func testPortalLimits(t *testing.T, h *harness) {
	p := h.portal(map[string]any{"name": "Limits", "slug": "limits", "password": "letmein",
		"limits": map[string]any{"max_file_size": 100, "max_package_size": 150, "max_file_count": 3, "allowed_extensions": []string{"mov", "wav"}}})
	pkg := h.newPackage("limits")
	tok := pkg.UploadToken
	h.upload(tok, "a.mov", make([]byte, 100))
	cases := []struct {
		name, rel string
		size      int
		tok       string
		want      int
		code      string
	}{
		{"no token", "b.mov", 10, "", 401, "unauthorized"},
		{"unknown token", "b.mov", 10, "not-a-token", 401, "unauthorized"},
		{"file over the file limit", "b.mov", 101, tok, 413, "file_too_large"},
		{"package over the package limit", "b.mov", 60, tok, 413, "package_too_large"},
		{"extension not allowed", "b.txt", 1, tok, 422, "extension_not_allowed"},
		{"file without extension", "README", 1, tok, 422, "extension_not_allowed"},
		{"within every limit", "b.wav", 50, tok, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]string{"relativePath": tc.rel}
			if tc.tok != "" {
				meta["package_token"] = tc.tok
			}
			resp, body := h.tusUpload(tc.tok, meta, make([]byte, tc.size))
			if resp.StatusCode != tc.want || (tc.code != "" && !bytes.Contains(body, []byte(`"`+tc.code+`"`))) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.want, tc.code)
			}
		})
	}
	h.upload(tok, "c.wav", nil)
	resp, body := h.tusUpload(tok, map[string]string{"package_token": tok, "relativePath": "d.wav"}, nil)
	if resp.StatusCode != 413 || !bytes.Contains(body, []byte("too_many_files")) {
		t.Fatalf("fourth file: %d %s", resp.StatusCode, body)
	}
	// Deactivating the portal stops uploads to packages already created.
	resp, body = h.req("PATCH", "/api/v1/portals/"+p.ID, map[string]any{"active": false}, h.admin()...)
	h.mustJSON(resp, body, 200, nil)
	resp, body = h.tusUpload(tok, map[string]string{"package_token": tok, "relativePath": "e.wav"}, []byte("x"))
	if resp.StatusCode != 403 || !bytes.Contains(body, []byte("portal_inactive")) {
		t.Fatalf("inactive portal: %d %s", resp.StatusCode, body)
	}
}

func TestNestedPackageUploadFinalizeAndZipDownloadByteForByte(t *testing.T) {
	onEveryDatabase(t, testNestedPackage)
}

func testNestedPackage(t *testing.T, h *harness) {
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein", "retention_days": 7})
	pkg := h.newPackage("dailies")
	rng := rand.New(rand.NewPCG(3, 4))
	files := map[string][]byte{
		"Day 1/Cam A/A001.mov":  randBytes(rng, 3<<20+11),
		"Day 1/Cam B/B001.mov":  randBytes(rng, 1<<20),
		"Day 2/Sound/Ñu 日本.wav": randBytes(rng, 70001),
		"notes.txt":             []byte("hello\n"),
		"Day 2/empty.bin":       {},
	}
	for p, d := range files {
		h.upload(pkg.UploadToken, p, d)
	}
	bearer := []string{"Authorization", "Bearer " + pkg.UploadToken}
	var got struct{ Package web.Package }
	resp, body := h.req("GET", "/p/dailies/packages/"+pkg.Package.ID, nil, bearer...)
	h.mustJSON(resp, body, 200, &got)
	for _, f := range got.Package.Files {
		sum := sha256.Sum256(files[f.Path])
		if f.State != "complete" || f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(files[f.Path])) {
			t.Fatalf("file %+v not recorded complete with its size and digest", f)
		}
	}
	resp, body = h.req("POST", "/p/dailies/packages/"+pkg.Package.ID+"/finalize", nil, bearer...)
	h.mustJSON(resp, body, 200, &got)
	if got.Package.State != "finalized" || got.Package.ExpiresAt == nil {
		t.Fatalf("finalize: %s", body)
	}
	var link struct{ Token, URL string }
	resp, body = h.req("POST", "/api/v1/packages/"+pkg.Package.ID+"/links", map[string]any{"expires_in": "24h", "max_downloads": 5}, h.admin()...)
	h.mustJSON(resp, body, 201, &link)
	resp, body = h.req("GET", link.URL+"/zip", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("zip: %d %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(files) {
		t.Fatalf("zip holds %d files, want %d", len(zr.File), len(files))
	}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(b, files[zf.Name]) {
			t.Fatalf("%s differs in the zip (err %v)", zf.Name, err)
		}
		if zf.Method != zip.Store {
			t.Fatalf("%s was recompressed", zf.Name)
		}
	}
	// A Range request on one file reads the stored bytes.
	_, page := h.req("GET", link.URL, nil)
	m := regexp.MustCompile(`href="(/d/[^"]+/files/[^"]+)">Day 1/Cam A/A001.mov<`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("file link missing from the page: %s", page)
	}
	resp, body = h.req("GET", string(m[1]), nil, "Range", "bytes=1000-1999")
	if resp.StatusCode != 206 || !bytes.Equal(body, files["Day 1/Cam A/A001.mov"][1000:2000]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Deleting the package removes its bytes.
	before := len(snapshot(t, filepath.Join(h.data, "uploads")))
	resp, _ = h.req("DELETE", "/api/v1/packages/"+pkg.Package.ID, nil, h.admin()...)
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if after := len(snapshot(t, filepath.Join(h.data, "uploads"))); after >= before {
		t.Fatalf("stored files before delete %d, after %d", before, after)
	}
	if resp, _ = h.req("GET", link.URL+"/zip", nil); resp.StatusCode != 404 {
		t.Fatalf("link of a deleted package: %d", resp.StatusCode)
	}
}

func TestCompleteIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	h.upload(pkg.UploadToken, "a.mov", []byte("abc"))
	store := &webStore{db: h.app.DB, svc: h.app.Portal, now: time.Now}
	p, err := store.PackageGet(t.Context(), pkg.Package.ID)
	if err != nil || len(p.Files) != 1 {
		t.Fatalf("package: %+v %v", p, err)
	}
	g := &gate{svc: h.app.Portal}
	u := ingestUpload(p.Files[0].UploadID, 3)
	for i := range 3 {
		if err := g.Complete(t.Context(), u, checksums(nil)); err != nil {
			t.Fatalf("Complete call %d: %v", i+2, err)
		}
	}
	p, _ = store.PackageGet(t.Context(), pkg.Package.ID)
	if p.Files[0].State != "complete" || p.FileCount != 1 || p.TotalSize != 3 {
		t.Fatalf("after repeated Complete: %+v", p)
	}
}

func TestEveryAdminRouteRefusesAnonymousAndWrongTokenCallersOnTheRealStore(t *testing.T) {
	h := newHarness(t)
	pkg := func() string {
		var c created
		resp, body := h.req("POST", "/api/v1/packages", map[string]string{"name": "mine"}, h.admin()...)
		h.mustJSON(resp, body, 201, &c)
		return c.Package.ID
	}()
	callers := map[string][]string{
		"anonymous":                        nil,
		"wrong token":                      {"Authorization", "Bearer " + strings.Repeat("x", 43)},
		"upload token is not an api token": nil,
		"session cookie guess":             {"Cookie", "ferry_session=" + strings.Repeat("A", 43)},
	}
	var c created
	resp, body := h.req("POST", "/api/v1/packages", map[string]string{"name": "other"}, h.admin()...)
	h.mustJSON(resp, body, 201, &c)
	callers["upload token is not an api token"] = []string{"Authorization", "Bearer " + c.UploadToken}
	n := 0
	for _, rt := range h.app.Web.Routes() {
		if rt.Access != web.Admin {
			continue
		}
		n++
		path := strings.NewReplacer("{id}", pkg).Replace(rt.Pattern)
		for name, hdr := range callers {
			resp, body := h.req(rt.Method, path, map[string]string{"name": "x"}, hdr...)
			if resp.StatusCode != 401 || bytes.Contains(body, []byte(pkg)) {
				t.Errorf("%s %s as %s: %d %s", rt.Method, path, name, resp.StatusCode, body)
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d admin routes", n)
	}
	// The package is still there: nothing was deleted by a refused caller.
	resp, _ = h.req("GET", "/api/v1/packages/"+pkg, nil, h.admin()...)
	if resp.StatusCode != 200 {
		t.Fatalf("package after refused calls: %d", resp.StatusCode)
	}
}

func TestSweepExpiresPackagesAndDeletesTheirBytes(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein", "retention_days": 1})
	pkg := h.newPackage("p")
	h.upload(pkg.UploadToken, "a.mov", []byte("abc"))
	resp, body := h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	if _, n, err := h.app.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d %v", n, err)
	}
	h.now = h.now.Add(49 * time.Hour)
	if _, n, err := h.app.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep after expiry: %d %v", n, err)
	}
	var got struct{ Package web.Package }
	resp, body = h.req("GET", "/api/v1/packages/"+pkg.Package.ID, nil, h.admin()...)
	h.mustJSON(resp, body, 200, &got)
	if got.Package.State != "expired" {
		t.Fatalf("state after sweep: %s", got.Package.State)
	}
	if _, err := h.app.Ingest.Open(context.Background(), got.Package.Files[0].UploadID); err == nil {
		t.Fatal("bytes of an expired package are still readable")
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

func TestPortalPackageCreationAnswersTheContract(t *testing.T) {
	h := newHarness(t)
	p := h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "s3cret!"})
	if p.Active != true || !p.HasPassword {
		t.Fatalf("portal: %+v", p)
	}
	cases := []struct {
		name string
		body map[string]string
		want int
		code string
	}{
		{"missing sender email", map[string]string{"name": "n", "password": "s3cret!"}, 400, "sender_email_required"},
		{"malformed sender email", map[string]string{"name": "n", "sender_email": "nope", "password": "s3cret!"}, 400, "invalid_sender_email"},
		{"no password", map[string]string{"name": "n", "sender_email": "a@example.com"}, 401, "password_required"},
		{"wrong password", map[string]string{"name": "n", "sender_email": "a@example.com", "password": "guess"}, 401, "password_incorrect"},
		{"right password", map[string]string{"name": "n", "sender_email": "a@example.com", "password": "s3cret!"}, 201, ""},
		{"unnamed package gets a name", map[string]string{"sender_email": "a@example.com", "password": "s3cret!"}, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.req("POST", "/p/dailies/packages", tc.body)
			if resp.StatusCode != tc.want || (tc.code != "" && !bytes.Contains(body, []byte(`"code": "`+tc.code+`"`))) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.want, tc.code)
			}
			if tc.want == 201 {
				var c created
				if err := json.Unmarshal(body, &c); err != nil || c.UploadToken == "" || c.UploadURL != "/uploads/" ||
					c.Package.State != "uploading" || c.Package.Name == "" || c.Package.PortalID == nil || *c.Package.PortalID != p.ID {
					t.Fatalf("created package answer: %s", body)
				}
			}
		})
	}
	resp, body := h.req("GET", "/p/nope/packages", nil)
	if resp.StatusCode != 405 {
		t.Fatalf("GET on a POST route: %d %s", resp.StatusCode, body)
	}
	if resp, body = h.req("POST", "/p/nope/packages", map[string]string{"sender_email": "a@example.com"}); resp.StatusCode != 404 {
		t.Fatalf("unknown portal: %d %s", resp.StatusCode, body)
	}
	resp, body = h.req("PATCH", "/api/v1/portals/"+p.ID, map[string]any{"active": false}, h.admin()...)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"has_password": true`)) {
		t.Fatalf("patch must keep the password: %d %s", resp.StatusCode, body)
	}
	resp, body = h.req("POST", "/p/dailies/packages", map[string]string{"sender_email": "a@example.com", "password": "s3cret!"})
	if resp.StatusCode != 403 || !bytes.Contains(body, []byte("portal_inactive")) {
		t.Fatalf("inactive portal: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []map[string]any{{"slug": "Bad Slug!"}, {"recipients": []string{"not-an-email"}}, {"limits": map[string]any{"max_file_size": -1}}} {
		resp, body = h.req("PATCH", "/api/v1/portals/"+p.ID, bad, h.admin()...)
		if resp.StatusCode != 400 {
			t.Errorf("invalid update %v: %d %s", bad, resp.StatusCode, body)
		}
	}
	resp, body = h.req("POST", "/api/v1/portals", map[string]any{"name": "Twin", "slug": "dailies"}, h.admin()...)
	if resp.StatusCode != 409 || !bytes.Contains(body, []byte("slug_taken")) {
		t.Fatalf("taken slug: %d %s", resp.StatusCode, body)
	}
}

func TestStartupReconcilerRecordsUploadsWhoseCompletionWasLost(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	h.srv.Close()
	h.app.Close()

	// A process whose completion step fails (as if it died there): the bytes
	// are stored, the file is not recorded complete.
	cfg := config.Default("")
	cfg.DataDir = h.data
	broken, err := Open(t.Context(), cfg, Options{NoSync: true, OnComplete: func(context.Context, db.Tx, *db.Package, *db.File) error {
		return errors.New("simulated crash before commit")
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(broken.Handler())
	data := []byte("bytes that arrived before the crash")
	resp, body := h.tusUpload(pkg.UploadToken, map[string]string{"package_token": pkg.UploadToken, "relativePath": "a/b.mov"}, data)
	if resp.StatusCode < 500 {
		t.Fatalf("upload with a failing completion answered %d %s", resp.StatusCode, body)
	}
	p, err := (&webStore{db: broken.DB, svc: broken.Portal, now: time.Now}).PackageGet(t.Context(), pkg.Package.ID)
	if err != nil || len(p.Files) != 1 || p.Files[0].State != "uploading" {
		t.Fatalf("before restart: %+v %v", p, err)
	}
	h.srv.Close()
	broken.Close()

	// Restart: Open reconciles before serving.
	again, err := Open(t.Context(), cfg, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	p, err = (&webStore{db: again.DB, svc: again.Portal, now: time.Now}).PackageGet(t.Context(), pkg.Package.ID)
	if err != nil || len(p.Files) != 1 || p.Files[0].State != "complete" || p.Files[0].Size != int64(len(data)) {
		t.Fatalf("after restart: %+v %v", p, err)
	}
	sum := sha256.Sum256(data)
	if p.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("reconciled digest %s", p.Files[0].SHA256)
	}
}

// A partial of a parallel upload names its file (relativePath, filename,
// file_size) and is refused before any of its bytes is stored when the
// whole file would be: a hostile path, a duplicate, a denied extension, a
// file or package over the portal's limits.
func TestParallelUploadsAreRefusedAtTheFirstPartialBeforeAnyByteIsStored(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein",
		"limits": map[string]any{"max_file_size": 60, "max_package_size": 60, "denied_extensions": []string{"exe"}}})
	pkg := h.newPackage("p")
	tok := pkg.UploadToken
	h.upload(tok, "taken.mov", []byte("taken"))
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	partial := func(meta string, data []byte) (*http.Response, []byte) {
		return h.req("POST", "/uploads/", data, "Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(len(data)),
			"Upload-Concat", "partial", "Authorization", "Bearer "+tok, "Content-Type", "application/offset+octet-stream",
			"Upload-Metadata", "package_token "+b64(tok)+meta)
	}
	named := func(rel string, fileSize int) string {
		return ",relativePath " + b64(rel) + ",filename " + b64(path.Base(rel)) + ",file_size " + b64(fmt.Sprint(fileSize))
	}
	payload := []byte("HOSTILE-PAYLOAD-must-never-be-stored")
	cases := []struct {
		name, meta string
		want       int
		code       string
	}{
		{"no file metadata (old senders)", "", 400, "partial_metadata_required"},
		{"no file_size", ",relativePath " + b64("a.mov"), 400, "partial_metadata_required"},
		{"file_size not a number", ",relativePath " + b64("a.mov") + ",file_size " + b64("lots"), 400, "invalid_file_size"},
		{"parent traversal", ",relativePath " + b64("../../escape.mov") + ",file_size " + b64("40"), 400, "path_dot_segment"},
		{"absolute", ",relativePath " + b64("/abs/x.mov") + ",file_size " + b64("40"), 400, "path_absolute"},
		{"backslash", ",relativePath " + b64("a\\..\\b.mov") + ",file_size " + b64("40"), 400, "path_backslash"},
		{"reserved name", named("CON.mov", 40), 400, "path_reserved_name"},
		{"dot segment", ",relativePath " + b64("a/./b.mov") + ",file_size " + b64("40"), 400, "path_dot_segment"},
		{"NUL in the name", named("a\x00b.mov", 40), 400, "path_control_character"},
		{"duplicate of a complete file", named("taken.mov", 40), 409, "path_duplicate"},
		{"case duplicate of a complete file", named("TAKEN.MOV", 40), 409, "path_duplicate"},
		{"denied extension", named("virus.exe", 40), 422, "extension_denied"},
		{"whole file over the file limit", named("big.mov", 61), 413, "file_too_large"},
		{"part larger than its file", named("small.mov", 3), 400, "invalid_partial"},
		{"over the package size", named("fat.mov", 60), 413, "package_too_large"},
	}
	before := snapshot(t, h.data)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := payload
			if tc.code == "package_too_large" {
				data = append(bytes.Repeat(payload, 1), make([]byte, 24)...) // 5 stored + 60: over 60
			}
			resp, body := partial(tc.meta, data)
			if resp.StatusCode != tc.want || !bytes.Contains(body, []byte(`"`+tc.code+`"`)) {
				t.Fatalf("partial: %d %s, want %d %s", resp.StatusCode, body, tc.want, tc.code)
			}
		})
	}
	for p, size := range snapshot(t, h.root) {
		if _, ok := before[p]; !ok && !strings.HasSuffix(p, ".db-wal") && !strings.HasSuffix(p, ".db-shm") {
			t.Errorf("a refused partial left a file: %s (%d bytes)", p, size)
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, payload) {
			t.Errorf("a refused partial's bytes were stored in %s", p)
		}
	}

	// Partials that name a good file are admitted, siblings sharing its path;
	// their bytes count against the package, so more partials are refused
	// once the package is full, and the final makes the file.
	var locs []string
	for _, half := range []string{"first half ", "second half"} {
		resp, body := partial(named("ok/joined.mov", 22), []byte(half))
		if resp.StatusCode != 201 {
			t.Fatalf("a good partial was refused: %d %s", resp.StatusCode, body)
		}
		u := resp.Header.Get("Location")
		if i := strings.Index(u, "/uploads/"); i >= 0 {
			u = u[i:]
		}
		locs = append(locs, u)
	}
	var pile []string
	for range 2 {
		resp, body := partial(named("pile.mov", 30), make([]byte, 15))
		if resp.StatusCode != 201 {
			t.Fatalf("partial within the package size: %d %s", resp.StatusCode, body)
		}
		u := resp.Header.Get("Location")
		pile = append(pile, u[strings.Index(u, "/uploads/"):])
	}
	if resp, body := partial(named("pile.mov", 30), make([]byte, 15)); resp.StatusCode != 413 || !bytes.Contains(body, []byte("package_too_large")) {
		t.Fatalf("a partial past the package size (5 + 22 + 30 + 15 bytes): %d %s", resp.StatusCode, body)
	}
	// The sender terminates a partial (tus-js-client's abort): its share
	// comes back, so the next one fits.
	if resp, body := h.req("DELETE", pile[0], nil, "Tus-Resumable", "1.0.0", "Authorization", "Bearer "+tok); resp.StatusCode != 204 {
		t.Fatalf("terminating a partial: %d %s", resp.StatusCode, body)
	}
	if resp, body := partial(named("pile.mov", 30), make([]byte, 15)); resp.StatusCode != 201 {
		t.Fatalf("a partial after another was terminated: %d %s", resp.StatusCode, body)
	}
	resp, body := h.req("POST", "/uploads/", nil, "Tus-Resumable", "1.0.0", "Upload-Concat", "final;"+strings.Join(locs, " "),
		"Authorization", "Bearer "+tok, "Upload-Metadata", "package_token "+b64(tok)+",relativePath "+b64("ok/joined.mov"))
	if resp.StatusCode != 201 {
		t.Fatalf("final of admitted partials: %d %s", resp.StatusCode, body)
	}
	var got struct{ Package web.Package }
	resp, body = h.req("GET", "/p/p/packages/"+pkg.Package.ID, nil, "Authorization", "Bearer "+tok)
	h.mustJSON(resp, body, 200, &got)
	if len(got.Package.Files) != 2 || got.Package.Files[0].Path != "ok/joined.mov" || got.Package.Files[0].State != "complete" || got.Package.Files[0].Size != 22 {
		t.Fatalf("files after parallel uploads: %s", body)
	}
	// A partial of a final cannot be terminated, and keeps its bytes counted.
	if resp, body := h.req("DELETE", locs[0], nil, "Tus-Resumable", "1.0.0", "Authorization", "Bearer "+tok); resp.StatusCode == 204 {
		t.Fatalf("a partial of a complete file was terminated: %s", body)
	}
	if got.Package.TotalSize != 5+22+15+15 {
		t.Fatalf("package size %d while uploading, want 57 (5 + 22 + two pile.mov partials)", got.Package.TotalSize)
	}
	resp, body = h.req("GET", "/p/p/packages/"+pkg.Package.ID, nil, "Authorization", "Bearer "+tok)
	h.mustJSON(resp, body, 200, &got)
	if got.Package.TotalSize != 57 {
		t.Fatalf("package size %d after refusing to terminate a used partial, want 57", got.Package.TotalSize)
	}
}

func TestServeShutsDownGracefullyLettingAnUploadFinish(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	base, stop, served := h.serveForReal(0)

	// Create an upload, then start a PATCH whose body we hold open.
	tok := pkg.UploadToken
	req, _ := http.NewRequest("POST", base+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	const total, first = 3 << 20, 1<<20 + 1 // the store writes in 1 MiB buffers
	body := bytes.Repeat([]byte("ferry"), total/5+1)[:total]
	req.Header.Set("Upload-Length", fmt.Sprint(total))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Upload-Metadata", "relativePath "+base64.StdEncoding.EncodeToString([]byte("slow.mov")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	// A raw connection, so the first half of the body is on the wire (and
	// on disk) before the shutdown starts: Go's client would buffer it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := loc[strings.Index(loc, "/uploads/"):]
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n"+
		"Content-Type: application/offset+octet-stream\r\nAuthorization: Bearer %s\r\n\r\n", path, total, tok)
	if _, err := conn.Write(body[:first]); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(h.data, "uploads", path[len("/uploads/"):]+".bin")
	for i := 0; ; i++ {
		if st, err := os.Stat(bin); err == nil && st.Size() >= 1<<20 {
			break
		}
		if i > 2000 {
			t.Fatalf("the first bytes never reached %s", bin)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop() // SIGTERM arrives mid-upload
	if _, err := conn.Write(body[first:]); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("the in-flight upload did not finish: %+v %v", resp, err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after graceful shutdown: %v", err)
	}
	p, err := (&webStore{db: h.app.DB, svc: h.app.Portal, now: time.Now}).PackageGet(t.Context(), pkg.Package.ID)
	if err != nil || len(p.Files) != 1 || p.Files[0].State != "complete" {
		t.Fatalf("after shutdown: %+v %v", p, err)
	}
}

func TestTerminationKeepsThePackageTrue(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	tok := pkg.UploadToken
	auth := []string{"Tus-Resumable", "1.0.0", "Authorization", "Bearer " + tok}
	h.upload(tok, "done.mov", []byte("complete bytes"))
	// An unfinished upload: created, 3 of 10 bytes sent.
	resp, body := h.req("POST", "/uploads/", []byte("abc"), append(auth, "Upload-Length", "10", "Content-Type", "application/offset+octet-stream",
		"Upload-Metadata", "relativePath "+base64.StdEncoding.EncodeToString([]byte("half.mov")))...)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	half := resp.Header.Get("Location")
	half = half[strings.Index(half, "/uploads/"):]
	var got struct{ Package web.Package }
	resp, body = h.req("GET", "/p/p/packages/"+pkg.Package.ID, nil, "Authorization", "Bearer "+tok)
	h.mustJSON(resp, body, 200, &got)
	var done string
	for _, f := range got.Package.Files {
		if f.Path == "done.mov" {
			done = "/uploads/" + f.UploadID
		}
	}
	if resp, body = h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+tok); resp.StatusCode != 409 {
		t.Fatalf("finalize with an unfinished file: %d %s", resp.StatusCode, body)
	}
	cases := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"a complete file cannot be terminated", done, auth, 409},
		{"another token cannot terminate", half, []string{"Tus-Resumable", "1.0.0", "Authorization", "Bearer " + h.newPackage("p").UploadToken}, 403},
		{"the owner terminates an unfinished upload", half, auth, 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.req("DELETE", tc.path, nil, tc.hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
	resp, body = h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+tok)
	h.mustJSON(resp, body, 200, &got)
	if len(got.Package.Files) != 1 || got.Package.FileCount != 1 || got.Package.TotalSize != int64(len("complete bytes")) {
		t.Fatalf("after termination and finalize: %s", body)
	}
}

func TestSweepCancelsFilesWhoseUnfinishedUploadWasDeleted(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	tok := pkg.UploadToken
	h.upload(tok, "done.mov", []byte("ok"))
	resp, body := h.req("POST", "/uploads/", nil, "Tus-Resumable", "1.0.0", "Authorization", "Bearer "+tok, "Upload-Length", "10",
		"Upload-Metadata", "relativePath "+base64.StdEncoding.EncodeToString([]byte("abandoned.mov")))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	id := loc[strings.LastIndex(loc, "/")+1:]
	if n, err := h.app.cancelVanishedUploads(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("an upload still on disk was cancelled: %d %v", n, err)
	}
	if err := h.app.Ingest.Delete(t.Context(), id); err != nil { // what the unfinished-upload sweeper does
		t.Fatal(err)
	}
	if n, err := h.app.cancelVanishedUploads(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("a row younger than the age was cancelled: %d %v", n, err)
	}
	h.now = h.now.Add(2 * time.Hour)
	if n, err := h.app.cancelVanishedUploads(t.Context(), time.Hour); err != nil || n != 1 {
		t.Fatalf("cancelled %d, %v; want 1", n, err)
	}
	resp, body = h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+tok)
	if resp.StatusCode != 200 {
		t.Fatalf("finalize after the sweep: %d %s", resp.StatusCode, body)
	}
}

func TestDownloadLinksOnTheRealStore(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	h.upload(pkg.UploadToken, "dir/a.mov", []byte("0123456789"))
	link := func(body map[string]any) (int, string) {
		var l struct{ URL string }
		resp, b := h.req("POST", "/api/v1/packages/"+pkg.Package.ID+"/links", body, h.admin()...)
		if resp.StatusCode == 201 {
			json.Unmarshal(b, &l)
		}
		return resp.StatusCode, l.URL
	}
	if code, _ := link(map[string]any{}); code != 409 {
		t.Fatalf("a link to an unfinished package: %d", code)
	}
	resp, body := h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	get := func(path string, hdr ...string) int {
		resp, _ := h.req("GET", path, nil, hdr...)
		return resp.StatusCode
	}
	cases := []struct {
		name  string
		link  map[string]any
		steps func(u string) []int
		want  []int
	}{
		{"limit: a zip is a copy of every file, the page asks for no bytes", map[string]any{"max_downloads": 2}, func(u string) []int {
			return []int{get(u + "/zip"), get(u), get(u+"/zip", "Range", "bytes=0-"), get(u + "/zip"), get(u)}
		}, []int{200, 200, 200, 410, 410}},
		{"expiry", map[string]any{"expires_in": "1h"}, func(u string) []int {
			a := get(u + "/zip")
			h.now = h.now.Add(2 * time.Hour)
			defer func() { h.now = h.now.Add(-2 * time.Hour) }()
			return []int{a, get(u + "/zip"), get(u)}
		}, []int{200, 410, 410}},
		{"password", map[string]any{"password": "open sesame"}, func(u string) []int {
			return []int{get(u), get(u + "/zip"), get(u+"/zip", "X-Link-Password", "nope"), get(u+"/zip", "X-Link-Password", "open sesame")}
		}, []int{401, 401, 401, 200}},
		{"unguessable", map[string]any{}, func(u string) []int {
			other := "A"
			if strings.HasSuffix(u, "A") {
				other = "B"
			}
			return []int{get(u[:len(u)-1] + other), get("/d/" + strings.Repeat("A", 43) + "/zip")}
		}, []int{404, 404}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, u := link(tc.link)
			if code != 201 || len(strings.TrimPrefix(u, "/d/")) < 22 {
				t.Fatalf("create link: %d %q", code, u)
			}
			got := tc.steps(u)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("statuses %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPortalsDeliverOnlyToConnectionsThatExist(t *testing.T) {
	h := newHarness(t)
	resp, body := h.req("POST", "/api/v1/portals", map[string]any{"name": "P", "slug": "p", "connection_ids": []string{"no-such-connection"}}, h.admin()...)
	if resp.StatusCode != 422 || !bytes.Contains(body, []byte("unknown_connection")) {
		t.Fatalf("portal to a missing connection: %d %s", resp.StatusCode, body)
	}
}

func TestPackageListFiltersAndPages(t *testing.T) {
	h := newHarness(t)
	p := h.portal(map[string]any{"name": "P", "slug": "p"})
	for i, sender := range []string{"a@example.com", "b@example.com", "a@example.com", "a@example.com", "c@example.com"} {
		resp, body := h.req("POST", "/p/p/packages", map[string]string{"name": fmt.Sprint("pkg ", i), "sender_email": sender})
		h.mustJSON(resp, body, 201, nil)
	}
	resp, body := h.req("POST", "/api/v1/packages", map[string]string{"name": "mine"}, h.admin()...)
	h.mustJSON(resp, body, 201, nil)
	type page struct {
		Packages   []web.Package
		NextCursor string `json:"next_cursor"`
	}
	list := func(q string) page {
		var pg page
		resp, body := h.req("GET", "/api/v1/packages?"+q, nil, h.admin()...)
		h.mustJSON(resp, body, 200, &pg)
		return pg
	}
	cases := []struct {
		query string
		want  int
	}{
		{"", 6},
		{"portal_id=" + p.ID, 5},
		{"sender_email=A@example.com", 3},
		{"state=uploading&sender_email=b@example.com", 1},
		{"state=finalized", 0},
		{"q=PKG+3", 1},               // a part of the name, any case
		{"q=b%40example", 1},         // a part of the sender
		{"q=admin%40example.com", 1}, // the admin's own package
		{"q=a%40example.com&portal_id=" + p.ID, 3},
	}
	for _, tc := range cases {
		if got := list(tc.query); len(got.Packages) != tc.want || got.NextCursor != "" {
			t.Errorf("?%s: %d packages (next %q), want %d", tc.query, len(got.Packages), got.NextCursor, tc.want)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		pg := list("limit=4&cursor=" + cursor)
		for _, p := range pg.Packages {
			if seen[p.ID] {
				t.Fatalf("package %s on two pages", p.ID)
			}
			seen[p.ID] = true
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 6 {
		t.Fatalf("paging saw %d packages, want 6", len(seen))
	}
	for _, bad := range []string{"limit=0", "limit=x", "state=lost", "cursor=-1"} {
		if resp, body := h.req("GET", "/api/v1/packages?"+bad, nil, h.admin()...); resp.StatusCode != 400 {
			t.Errorf("?%s: %d %s", bad, resp.StatusCode, body)
		}
	}
}

// `ferry send` splits a large file into partials; the server must admit
// them (their metadata names the file) and verify each partial's SHA-256,
// declared after its bytes. Nobody has read the whole file in order yet, so
// its whole-file SHA-256 is unknown (and says so) until the first delivery's
// sequential read records it (delivery's TestFirstDeliveryRecordsTheSHA256OfAnUndeclaredFile).
func TestFerrySendOfASplitFileLeavesTheWholeSHA256ToTheFirstSequentialRead(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Send", "slug": "send", "password": "letmein",
		"limits": map[string]any{"max_file_size": 8 << 20, "max_package_size": 16 << 20, "denied_extensions": []string{"exe"}}})
	dir := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(3, 4)), 5<<20+11)
	if err := os.WriteFile(filepath.Join(dir, "clip.mov"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, err := send.ParseTarget(h.srv.URL+"/p/send", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := send.Send(context.Background(), send.Options{Target: target, Paths: []string{dir},
		Info: send.PackageInfo{Email: "s@example.com", Password: "letmein"}, Streams: 4, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	files, err := h.app.DB.FileListByPackage(t.Context(), &db.FileListByPackageParams{PackageID: res.PackageID})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != filepath.Base(dir)+"/clip.mov" || files[0].State != db.FileComplete || files[0].Size != int64(len(data)) {
		t.Fatalf("files after ferry send: %+v", files)
	}
	if files[0].SHA256 != "" || files[0].SHA256Verified {
		t.Fatalf("recorded sha256 %q (verified %v) before any sequential read, want none yet", files[0].SHA256, files[0].SHA256Verified)
	}
}

// A partial upload the sweeper removes (no final took it, and it sat idle)
// gives its share of the package's size back, as a terminated one does: the
// sender may send that part again without hitting the package limit.
func TestSweptPartialGivesItsShareOfThePackageBack(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein",
		"limits": map[string]any{"max_package_size": 100}})
	tok := h.newPackage("p").UploadToken
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	partial := func(rel string, size int, data []byte) (*http.Response, []byte) {
		return h.req("POST", "/uploads/", data, "Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(size),
			"Upload-Concat", "partial", "Authorization", "Bearer "+tok, "Content-Type", "application/offset+octet-stream",
			"Upload-Metadata", "relativePath "+b64(rel)+",filename "+b64(path.Base(rel))+",file_size "+b64(fmt.Sprint(size)))
	}
	if resp, body := partial("big.mov", 80, []byte("first bytes")); resp.StatusCode != 201 {
		t.Fatalf("first partial: %d %s", resp.StatusCode, body)
	}
	if resp, body := partial("other.mov", 80, nil); resp.StatusCode != 413 {
		t.Fatalf("a second 80-byte partial next to the first: %d %s, want 413", resp.StatusCode, body)
	}
	// Everything counts as idle: the sweeper removes the orphan partial.
	if n, err := h.app.Ingest.Cleanup(t.Context(), -time.Hour); err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want the orphan partial removed", n, err)
	}
	if resp, body := partial("other.mov", 80, nil); resp.StatusCode != 201 {
		t.Fatalf("after the sweep the package still counts the removed partial: %d %s", resp.StatusCode, body)
	}
}
