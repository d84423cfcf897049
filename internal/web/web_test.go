package web

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

type fixture struct {
	t     *testing.T
	store *memStore
	blobs *memBlobs
	srv   *httptest.Server
	token string // a valid API token
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, store: newMemStore(), blobs: &memBlobs{b: map[string][]byte{}}, now: time.Now()}
	_, f.token = f.store.addUser("admin@example.com", "correct horse")
	s, err := New(Options{Store: f.store, Blobs: f.blobs, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request; hdr holds header pairs.
func (f *fixture) do(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	f.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body is not the contract's error shape: %s", b)
	}
	return e.Error.Code
}

var pathVar = regexp.MustCompile(`\{[a-z_]+\}`)

func TestEveryAdminRouteRefusesAnonymousAndWrongTokenCallers(t *testing.T) {
	f := newFixture(t)
	s, _ := New(Options{Store: f.store, Blobs: f.blobs})
	callers := []struct {
		name string
		hdr  []string
	}{
		{"anonymous", nil},
		{"unknown api token", []string{"Authorization", "Bearer " + randToken()}},
		{"malformed authorization", []string{"Authorization", "Basic YWRtaW46eA=="}},
		{"empty bearer", []string{"Authorization", "Bearer "}},
		{"unknown session cookie", []string{"Cookie", sessionCookie + "=" + randToken()}},
	}
	n := 0
	for _, rt := range s.Routes() {
		if rt.Access != Admin {
			continue
		}
		n++
		path := pathVar.ReplaceAllString(rt.Pattern, "x1")
		for _, c := range callers {
			t.Run(rt.Method+" "+rt.Pattern+"/"+c.name, func(t *testing.T) {
				resp, body := f.do(rt.Method, path, map[string]string{"name": "n"}, c.hdr...)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("got %d, want 401: %s", resp.StatusCode, body)
				}
				if errorCode(t, body) != "unauthorized" {
					t.Fatalf("code: %s", body)
				}
			})
		}
	}
	if n < 12 {
		t.Fatalf("only %d admin routes in the table", n)
	}
}

func TestUploaderRoutesRefuseOtherPackagesTokens(t *testing.T) {
	f := newFixture(t)
	f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true)})
	_, body := f.do("POST", "/p/p/packages", map[string]string{"name": "a", "sender_email": "s@example.com"})
	var a createdPackage
	json.Unmarshal(body, &a)
	_, body = f.do("POST", "/p/p/packages", map[string]string{"name": "b", "sender_email": "s@example.com"})
	var b createdPackage
	json.Unmarshal(body, &b)
	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"no token", "GET", "/p/p/packages/" + a.Package.ID, "", 401},
		{"unknown token", "GET", "/p/p/packages/" + a.Package.ID, randToken(), 401},
		{"api token is not an upload token", "GET", "/p/p/packages/" + a.Package.ID, f.token, 401},
		{"other package's token", "GET", "/p/p/packages/" + a.Package.ID, b.UploadToken, 403},
		{"other package's token cannot finalize", "POST", "/p/p/packages/" + a.Package.ID + "/finalize", b.UploadToken, 403},
		{"no token reads no deliveries", "GET", "/p/p/packages/" + a.Package.ID + "/deliveries", "", 401},
		{"other package's token reads no deliveries", "GET", "/p/p/packages/" + a.Package.ID + "/deliveries", b.UploadToken, 403},
		{"own token on another portal's path reads no deliveries", "GET", "/p/other/packages/" + a.Package.ID + "/deliveries", a.UploadToken, 404},
		{"own token", "GET", "/p/p/packages/" + a.Package.ID, a.UploadToken, 200},
		{"own token on another portal's path", "GET", "/p/other/packages/" + a.Package.ID, a.UploadToken, 404},
		{"own token finalizes", "POST", "/p/p/packages/" + a.Package.ID + "/finalize", a.UploadToken, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.token != "" {
				hdr = []string{"Authorization", "Bearer " + tc.token}
			}
			resp, body := f.do(tc.method, tc.path, nil, hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPortalPasswordGuessesAreRateLimited(t *testing.T) {
	f := newFixture(t)
	f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true), Password: ptr("right")})
	var codes []int
	for range 8 {
		resp, _ := f.do("POST", "/p/p/packages", map[string]string{"name": "n", "sender_email": "a@example.com", "password": "wrong"})
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 401 || codes[len(codes)-1] != 429 {
		t.Fatalf("statuses of repeated wrong guesses: %v", codes)
	}
	resp, _ := f.do("POST", "/p/p/packages", map[string]string{"name": "n", "sender_email": "a@example.com", "password": "right"})
	if resp.StatusCode != 429 {
		t.Fatalf("a blocked caller got %d instead of 429 (the right password must not be testable while blocked)", resp.StatusCode)
	}
}

func TestSessionNeedsCSRFTokenForStateChanges(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do("POST", "/login", "email=admin%40example.com&password=correct+horse", "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie missing or not HttpOnly+SameSite: %+v", cookie)
	}
	ck := sessionCookie + "=" + cookie.Value
	_, body = f.do("GET", "/api/v1/session", nil, "Cookie", ck)
	var sr sessionResponse
	json.Unmarshal(body, &sr)
	if sr.CSRFToken == "" || sr.User.Email != "admin@example.com" {
		t.Fatalf("session: %s", body)
	}
	cases := []struct {
		name string
		hdr  []string
		want int
	}{
		{"no csrf token", []string{"Cookie", ck}, 403},
		{"wrong csrf token", []string{"Cookie", ck, csrfHeader, "x" + sr.CSRFToken}, 403},
		{"cross-site request with the token", []string{"Cookie", ck, csrfHeader, sr.CSRFToken, "Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin with token", []string{"Cookie", ck, csrfHeader, sr.CSRFToken}, 201},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do("POST", "/api/v1/portals", map[string]any{"name": "P", "slug": "s" + string(rune('a'+i))}, tc.hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
	// A browser's form gets the form again with the message (issue 10: it
	// showed raw JSON); JSON callers keep the JSON error.
	resp, body = f.do("POST", "/login", "email=admin%40example.com&password=nope", "Content-Type", "application/x-www-form-urlencoded")
	wantHTML(t, resp, string(body), 401, "The email or password is wrong.")
	resp, body = f.do("POST", "/login", map[string]string{"email": "admin@example.com", "password": "nope"})
	if resp.StatusCode != 401 || errorCode(t, body) != "wrong_credentials" {
		t.Fatalf("bad login: %d %s", resp.StatusCode, body)
	}
}

// linkFixture makes a finalized package with a nested tree and a link to it.
func (f *fixture) linkFixture(files map[string][]byte, link map[string]any) (string, map[string][]byte) {
	f.t.Helper()
	pkg, _, _ := f.store.PackageCreate(f.t.Context(), PackageInput{Name: "Shoot: day/1", SenderEmail: "s@example.com"})
	for p, data := range files {
		up := "up-" + p
		f.blobs.b[up] = data
		f.store.addFile(pkg.ID, File{Path: p, Size: int64(len(data)), State: FileComplete, UploadID: up})
	}
	resp, body := f.do("POST", "/api/v1/packages/"+pkg.ID+"/links", link, "Authorization", "Bearer "+f.token)
	if resp.StatusCode != 201 {
		f.t.Fatalf("create link: %d %s", resp.StatusCode, body)
	}
	var cl createdLink
	json.Unmarshal(body, &cl)
	if len(cl.Token) < 32 || cl.URL != "/d/"+cl.Token {
		f.t.Fatalf("link answer: %s", body)
	}
	return cl.URL, files
}

func TestZipDownloadOfANestedPackageIsByteForByte(t *testing.T) {
	f := newFixture(t)
	files := map[string][]byte{
		"a.txt":              bytes.Repeat([]byte("a"), 10),
		"Cam A/Day 1/c1.mov": bytes.Repeat([]byte{1, 2, 3}, 100000),
		"Cam A/Day 2/c2.mov": bytes.Repeat([]byte{9}, 70000),
		"Cam B/ñandú/日本.wav": []byte("riff"),
		"Cam B/empty.bin":    {},
	}
	u, _ := f.linkFixture(files, map[string]any{})
	resp, body := f.do("GET", u+"/zip", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("zip: %d %s", resp.StatusCode, resp.Header)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(files) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(files))
	}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, files[zf.Name]) {
			t.Fatalf("%s differs (err %v)", zf.Name, err)
		}
	}
}

func TestFileDownloadSupportsRange(t *testing.T) {
	f := newFixture(t)
	data := []byte("0123456789abcdefghij")
	u, _ := f.linkFixture(map[string][]byte{"dir/f.bin": data}, map[string]any{})
	_, page := f.do("GET", u, nil)
	m := regexp.MustCompile(`href="(/d/[^"]+/files/[^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no file link on the page: %s", page)
	}
	cases := []struct {
		rng    string
		status int
		want   string
	}{
		{"", 200, string(data)},
		{"bytes=0-3", 206, "0123"},
		{"bytes=10-", 206, "abcdefghij"},
		{"bytes=-2", 206, "ij"},
		{"bytes=50-60", 416, ""},
	}
	for _, tc := range cases {
		t.Run(tc.rng, func(t *testing.T) {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			resp, body := f.do("GET", string(m[1]), nil, hdr...)
			if resp.StatusCode != tc.status || (tc.want != "" && string(body) != tc.want) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

func TestDownloadLinkExpiryPasswordAndLimit(t *testing.T) {
	files := map[string][]byte{"x/y.bin": []byte("payload")}
	cases := []struct {
		name  string
		link  map[string]any
		steps func(f *fixture, u string) []int
		want  []int
	}{
		{"unlimited link serves repeatedly", map[string]any{}, func(f *fixture, u string) []int {
			return []int{status(f, "GET", u+"/zip"), status(f, "GET", u+"/zip"), status(f, "GET", u+"/zip")}
		}, []int{200, 200, 200}},
		{"limit of two downloads", map[string]any{"max_downloads": 2}, func(f *fixture, u string) []int {
			return []int{status(f, "GET", u+"/zip"), status(f, "GET", u+"/zip"), status(f, "GET", u+"/zip"), status(f, "GET", u)}
		}, []int{200, 200, 410, 410}},
		{"expired link", map[string]any{"expires_in": "1h"}, func(f *fixture, u string) []int {
			a := status(f, "GET", u+"/zip")
			f.now = f.now.Add(2 * time.Hour)
			return []int{a, status(f, "GET", u+"/zip"), status(f, "GET", u)}
		}, []int{200, 410, 410}},
		{"password: none, wrong, right by header", map[string]any{"password": "pw"}, func(f *fixture, u string) []int {
			return []int{status(f, "GET", u+"/zip"), status(f, "GET", u+"/zip", linkPasswordHeader, "bad"),
				status(f, "GET", u+"/zip", linkPasswordHeader, "pw"), status(f, "GET", u)}
		}, []int{401, 401, 200, 401}},
		{"password unlock form sets a cookie for this link", map[string]any{"password": "pw"}, func(f *fixture, u string) []int {
			resp, _ := f.do("POST", u+"/unlock", "password=pw", "Content-Type", "application/x-www-form-urlencoded")
			var ck string
			for _, c := range resp.Cookies() {
				if c.Name == linkCookie {
					ck = c.Name + "=" + c.Value
				}
			}
			wrong, _ := f.do("POST", u+"/unlock", "password=nope", "Content-Type", "application/x-www-form-urlencoded")
			return []int{resp.StatusCode, status(f, "GET", u+"/zip", "Cookie", ck), status(f, "GET", u, "Cookie", ck),
				wrong.StatusCode, status(f, "GET", u+"/zip", "Cookie", linkCookie+"=forged")}
		}, []int{303, 200, 200, 401, 401}},
		{"unknown token", map[string]any{}, func(f *fixture, u string) []int {
			return []int{status(f, "GET", "/d/"+randToken()+"/zip"), status(f, "GET", "/d/"+randToken())}
		}, []int{404, 404}},
		{"past expiry is refused at creation", map[string]any{"expires_at": time.Now().Add(-time.Hour)}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.steps == nil {
				pkg, _, _ := f.store.PackageCreate(t.Context(), PackageInput{Name: "p"})
				resp, body := f.do("POST", "/api/v1/packages/"+pkg.ID+"/links", tc.link, "Authorization", "Bearer "+f.token)
				if resp.StatusCode != 422 {
					t.Fatalf("got %d: %s", resp.StatusCode, body)
				}
				return
			}
			u, _ := f.linkFixture(files, tc.link)
			got := tc.steps(f, u)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("statuses %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func status(f *fixture, method, path string, hdr ...string) int {
	resp, _ := f.do(method, path, nil, hdr...)
	return resp.StatusCode
}

func TestOpenAPIDocumentIsValidAndCoversTheAPI(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do("GET", "/api/v1/openapi.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	s, _ := New(Options{Store: f.store, Blobs: f.blobs})
	for _, rt := range s.Routes() {
		if !strings.HasPrefix(rt.Pattern, "/api/v1/") || rt.Pattern == "/api/v1/openapi.json" {
			continue
		}
		item := doc.Paths.Find(rt.Pattern)
		if item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("%s %s is not in the OpenAPI document", rt.Method, rt.Pattern)
		}
	}
}

func TestErrorsAreJSONEverywhere(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ method, path string }{
		{"GET", "/nope"},
		{"DELETE", "/p/x/packages"},
		{"POST", "/p/missing/packages"},
		{"GET", "/d/unknown/zip"},
	}
	for _, tc := range cases {
		resp, body := f.do(tc.method, tc.path, map[string]string{})
		if resp.StatusCode < 400 {
			t.Errorf("%s %s: %d", tc.method, tc.path, resp.StatusCode)
			continue
		}
		errorCode(t, body)
	}
}

func TestPagesEscapeWhatSendersAndAdminsTyped(t *testing.T) {
	f := newFixture(t)
	evil := `<script>alert("x")</script>`
	f.store.PortalCreate(t.Context(), PortalInput{Name: evil, Slug: "p", Active: ptr(true), WelcomeMessage: evil})
	u, _ := f.linkFixture(map[string][]byte{"dir/" + `<img src=x onerror=alert(1)>.mov`: []byte("x")}, map[string]any{})
	for _, path := range []string{"/p/p", u} {
		resp, body := f.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if bytes.Contains(body, []byte("<script>alert")) || bytes.Contains(body, []byte("<img src=x")) {
			t.Fatalf("%s renders markup it was given:\n%s", path, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if strings.Contains(csp, "unsafe-inline'; style") && strings.Contains(csp, "script-src 'unsafe-inline'") {
			t.Fatalf("%s allows inline scripts: %s", path, csp)
		}
	}
	resp, body := f.do("GET", "/p/p", nil)
	m := regexp.MustCompile(`<script nonce="([^"]+)"`).FindSubmatch(body)
	if m == nil || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "'nonce-"+string(m[1])+"'") {
		t.Fatalf("the portal script does not carry the CSP nonce: %s", resp.Header.Get("Content-Security-Policy"))
	}
}

// A JSON endpoint takes only bodies declared as JSON: a cross-site HTML form
// (text/plain, urlencoded, multipart) reaches none of them without a CORS
// preflight, and a client that forgot the header learns why at once.
func TestJSONEndpointsRefuseOtherMediaTypes(t *testing.T) {
	f := newFixture(t)
	f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true)})
	pkg := `{"name":"n","sender_email":"a@example.com"}`
	auth := []string{"Authorization", "Bearer " + f.token}
	cases := []struct {
		name, method, path, body, ctype string
		hdr                             []string
		want                            int
	}{
		{"portal package as text/plain", "POST", "/p/p/packages", pkg, "text/plain", nil, 415},
		{"portal package as a form", "POST", "/p/p/packages", "name=n", "application/x-www-form-urlencoded", nil, 415},
		{"portal package with no type", "POST", "/p/p/packages", pkg, "", nil, 415},
		{"portal package as JSON with a charset", "POST", "/p/p/packages", pkg, "application/json; charset=utf-8", nil, 201},
		{"sign-in as text/plain", "POST", "/login", `{"email":"admin@example.com","password":"correct horse"}`, "text/plain", nil, 415},
		{"admin portal create as text/plain", "POST", "/api/v1/portals", `{"name":"Q","slug":"q"}`, "text/plain", auth, 415},
		{"admin portal create as JSON", "POST", "/api/v1/portals", `{"name":"Q","slug":"q"}`, "application/json", auth, 201},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{"Content-Type", tc.ctype}, tc.hdr...)
			resp, body := f.do(tc.method, tc.path, tc.body, hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == 415 {
				if code := errorCode(t, body); code != "unsupported_media_type" {
					t.Fatalf("code %q, want unsupported_media_type", code)
				}
			}
		})
	}
}

// A tus client author learns from the API description which Upload-Metadata
// keys ferry reads, since tus leaves metadata free-form.
func TestOpenAPIDescribesTheTusMetadataKeys(t *testing.T) {
	f := newFixture(t)
	_, body := f.do("GET", "/api/v1/openapi.json", nil)
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	item := doc.Paths.Find("/uploads/")
	if item == nil || item.Post == nil {
		t.Fatal("POST /uploads/ (tus creation) is not in the OpenAPI document")
	}
	for _, key := range []string{"package_token", "relativePath", "filename", "sha256", "file_size"} {
		if !strings.Contains(item.Post.Description, "`"+key+"`") {
			t.Errorf("the tus creation description does not name the metadata key %q", key)
		}
	}
	if item.Post.Responses.Status(413) == nil {
		t.Error("the tus creation does not document 413 for uploads over Tus-Max-Size")
	}
}

// Console pages are for a signed-in browser: a visitor who is not signed in
// (or brings a credential that is unknown) is sent to the sign-in page on a
// GET and refused with an HTML page otherwise; never JSON, never the page.
func TestEveryConsoleRouteSendsStrangersToSignIn(t *testing.T) {
	f := newFixture(t)
	s, _ := New(Options{Store: f.store, Blobs: f.blobs})
	callers := []struct {
		name string
		hdr  []string
	}{
		{"anonymous", nil},
		{"unknown api token", []string{"Authorization", "Bearer " + randToken()}},
		{"unknown session cookie", []string{"Cookie", sessionCookie + "=" + randToken()}},
	}
	for _, rt := range s.Routes() {
		if rt.Access != Console {
			continue
		}
		path := pathVar.ReplaceAllString(rt.Pattern, "x1")
		for _, c := range callers {
			t.Run(rt.Method+" "+rt.Pattern+"/"+c.name, func(t *testing.T) {
				hdr := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, c.hdr...)
				resp, body := f.do(rt.Method, path, "name=n", hdr...)
				if rt.Method == http.MethodGet {
					if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
						t.Fatalf("got %d to %q, want 303 to /login?next=...", resp.StatusCode, resp.Header.Get("Location"))
					}
					return
				}
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("got %d %s, want a 401 HTML page: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			})
		}
	}
}

// Finalizing gives the sender a receipt address; the receipt lists the
// package's files, and a receipt token for another or a made-up package
// shows nothing.
func TestFinalizeGivesTheSenderAReceiptOnlyForTheirPackage(t *testing.T) {
	f := newFixture(t)
	f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true)})
	resp, body := f.do("POST", "/p/p/packages", map[string]string{"name": "Rushes", "sender_email": "a@example.com"})
	var created createdPackage
	if resp.StatusCode != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do("POST", "/p/p/packages/"+created.Package.ID+"/finalize", nil, "Authorization", "Bearer "+created.UploadToken)
	var fin finalizedResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &fin) != nil || !strings.HasPrefix(fin.ReceiptURL, "/r/") {
		t.Fatalf("finalize: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do("GET", fin.ReceiptURL, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("Rushes")) {
		t.Fatalf("receipt: %d %s", resp.StatusCode, body)
	}
	for _, forged := range []string{"/r/" + created.Package.ID, "/r/" + created.Package.ID + ".AAAAAAAAAAAAAAAAAAAAAAAA", "/r/other." + strings.SplitN(fin.ReceiptURL, ".", 2)[1]} {
		if resp, body := f.do("GET", forged, nil); resp.StatusCode != 404 || bytes.Contains(body, []byte("Rushes")) {
			t.Errorf("%s: %d", forged, resp.StatusCode)
		}
	}
}
