package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// browser is a signed-in browser session against the fixture: its cookie
// and the CSRF token its forms carry.
type browser struct {
	f      *fixture
	cookie string
	csrf   string
}

func (f *fixture) signIn(email, password string) *browser {
	f.t.Helper()
	resp, body := f.form("POST", "/login", url.Values{"email": {email}, "password": {password}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return &browser{f: f, cookie: c.Value, csrf: csrfToken(c.Value)}
		}
	}
	f.t.Fatal("sign-in set no session cookie")
	return nil
}

// form posts url-encoded values as a browser form does (same origin).
func (f *fixture) form(method, path string, v url.Values, cookie string) (*http.Response, string) {
	f.t.Helper()
	hdr := []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin"}
	if cookie != "" {
		hdr = append(hdr, "Cookie", sessionCookie+"="+cookie)
	}
	resp, body := f.do(method, path, v.Encode(), hdr...)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.f.t.Helper()
	resp, body := b.f.do("GET", path, nil, "Cookie", sessionCookie+"="+b.cookie)
	return resp, string(body)
}

// post sends a console form with the session's CSRF token.
func (b *browser) post(path string, v url.Values) (*http.Response, string) {
	b.f.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set(csrfField, b.csrf)
	return b.f.form("POST", path, v, b.cookie)
}

func wantHTML(t *testing.T, resp *http.Response, body string, status int, contains ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q, want HTML: %s", ct, body)
	}
	for _, c := range contains {
		if !strings.Contains(body, c) {
			t.Fatalf("page lacks %q:\n%s", c, body)
		}
	}
}

// emptyFixture is a server with no account at all (a fresh install).
func emptyFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, store: newMemStore(), blobs: &memBlobs{b: map[string][]byte{}}, now: time.Now()}
	s, err := New(Options{Store: f.store, Blobs: f.blobs, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func TestFirstRunOffersTheFirstAdminAndSignsThemIn(t *testing.T) {
	f := emptyFixture(t)
	resp, body := f.do("GET", "/", nil)
	wantHTML(t, resp, string(body), 200, `action="/setup"`, `for="password2"`)

	cases := []struct {
		name, email, pw, pw2, want string
		status                     int
	}{
		{"passwords differ", "first@example.com", "long enough password", "long enough passw0rd", "The two passwords differ", 422},
		{"short password", "first@example.com", "short", "short", "at least 12 characters", 400},
		{"not an email", "first", "long enough password", "long enough password", "not an email address", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.form("POST", "/setup", url.Values{"email": {tc.email}, "password": {tc.pw}, "password2": {tc.pw2}}, "")
			wantHTML(t, resp, body, tc.status, tc.want, `value="`+tc.email+`"`)
			if n, _ := f.store.UserCount(t.Context()); n != 0 {
				t.Fatalf("%d users after a refusal", n)
			}
		})
	}

	resp, _ = f.form("POST", "/setup", url.Values{"email": {"first@example.com"}, "password": {"long enough password"}, "password2": {"long enough password"}}, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") == "" {
		t.Fatalf("first admin: %d", resp.StatusCode)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c.Value
		}
	}
	b := &browser{f: f, cookie: cookie, csrf: csrfToken(cookie)}
	resp2, page := b.get("/")
	wantHTML(t, resp2, page, 200, "Dashboard", "first@example.com")

	// The form works only while there is no account.
	resp, body2 := f.form("POST", "/setup", url.Values{"email": {"second@example.com"}, "password": {"long enough password"}, "password2": {"long enough password"}}, "")
	wantHTML(t, resp, body2, 409, "An admin already exists")
	if n, _ := f.store.UserCount(t.Context()); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	resp, body = f.do("GET", "/", nil)
	wantHTML(t, resp, string(body), 200, `action="/login"`)
	if strings.Contains(string(body), "/setup") {
		t.Fatal("the first-run form is still offered once an admin exists")
	}
}

func TestFirstRunRefusesACrossOriginPost(t *testing.T) {
	f := emptyFixture(t)
	resp, body := f.do("POST", "/setup", url.Values{"email": {"x@example.com"}, "password": {"long enough password"}, "password2": {"long enough password"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
	wantHTML(t, resp, string(body), 403, "Cross-origin")
	if n, _ := f.store.UserCount(t.Context()); n != 0 {
		t.Fatalf("%d users after a cross-origin post", n)
	}
}

func TestSignInFormShowsAWrongPasswordInlineAndKeepsTheEmail(t *testing.T) {
	f := newFixture(t)
	resp, body := f.form("POST", "/login", url.Values{"email": {"admin@example.com"}, "password": {"wrong"}, "next": {"/admin/portals"}}, "")
	wantHTML(t, resp, body, 401, "The email or password is wrong.", `value="admin@example.com"`, `name="next" value="/admin/portals"`)
	// JSON callers keep JSON errors.
	resp2, b := f.do("POST", "/login", map[string]string{"email": "admin@example.com", "password": "wrong"})
	if resp2.StatusCode != 401 || errorCode(t, b) != "wrong_credentials" {
		t.Fatalf("JSON sign-in: %d %s", resp2.StatusCode, b)
	}
}

func TestSignInReturnsToTheLocalPageAskedFor(t *testing.T) {
	f := newFixture(t)
	resp, _ := f.do("GET", "/admin/portals", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fadmin%2Fportals" {
		t.Fatalf("stranger on a console page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.do("GET", "/login?next=%2Fadmin%2Fportals", nil)
	wantHTML(t, resp, string(body), 200, `name="next" value="/admin/portals"`)
	cases := []struct{ next, want string }{
		{"/admin/portals?x=1", "/admin/portals?x=1"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"", "/"},
	}
	for _, tc := range cases {
		t.Run(tc.next, func(t *testing.T) {
			resp, body := f.form("POST", "/login", url.Values{"email": {"admin@example.com"}, "password": {"correct horse"}, "next": {tc.next}}, "")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
				t.Fatalf("got %d to %q, want %q: %s", resp.StatusCode, resp.Header.Get("Location"), tc.want, body)
			}
		})
	}
}

func TestSignOutFormReturnsToTheSignInPage(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	resp, _ := b.post("/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("sign out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get("/admin/portals")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session still works after signing out: %d", resp.StatusCode)
	}
}

func TestDashboardListsPackagesAndPortalsWithTheirLinks(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	f.store.PortalCreate(t.Context(), PortalInput{Name: "Rushes", Slug: "rushes", Active: ptr(true)})
	f.do("POST", "/p/rushes/packages", map[string]string{"name": "Day 1", "sender_email": "cam@example.com"})
	resp, page := b.get("/")
	wantHTML(t, resp, page, 200, "Day 1", "cam@example.com", "Rushes", f.srv.URL+"/p/rushes", `data-copy="#portal-url-0"`, "uploading")
}

// withDeliveries adds canned deliveries to the memStore: the dashboard only
// reads them (DeliveryList), and what it makes of their states is the test.
type withDeliveries struct {
	*memStore
	byPackage map[string][]Delivery
}

func (d withDeliveries) DeliveryGet(_ context.Context, id string) (*Delivery, error) {
	return nil, ErrNotFound
}
func (d withDeliveries) DeliveryList(_ context.Context, pkg string) ([]Delivery, error) {
	return d.byPackage[pkg], nil
}
func (d withDeliveries) DeliveryRetry(context.Context, string) (int, error) { return 0, nil }
func (d withDeliveries) DeliverySend(context.Context, string, string) (*Delivery, error) {
	return nil, ErrNotFound
}
func (d withDeliveries) JobsUI() http.Handler { return nil }

func TestDashboardShowsDeliveriesNeedingAttention(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.store.PortalCreate(ctx, PortalInput{Name: "Rushes", Slug: "rushes", Active: ptr(true)})
	mk := func(name string) string {
		p, _, err := f.store.PackageCreate(ctx, PackageInput{PortalSlug: "rushes", Name: name, SenderEmail: "cam@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	ok, failed, retrying := mk("All good"), mk("Broke"), mk("Trying again")
	st := withDeliveries{memStore: f.store, byPackage: map[string][]Delivery{
		ok:       {{ID: "d1", State: "delivered"}},
		failed:   {{ID: "d2", State: "partially failed", Errors: []DeliveryError{{Path: "a/clip.mov", Message: "iconik answered 500"}}}},
		retrying: {{ID: "d3", State: "running", Files: []DeliveryFile{{Path: "b.mov", State: "queued", Error: "connection reset"}}}},
	}}
	s, err := New(Options{Store: st, Blobs: f.blobs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	f.srv = srv
	b := f.signIn("admin@example.com", "correct horse")
	resp, page := b.get("/")
	wantHTML(t, resp, page, 200, "Needs attention", "a/clip.mov: iconik answered 500", `badge retrying`, `badge partially failed`, `badge delivered`)
	attention := page[strings.Index(page, "Needs attention"):strings.Index(page, "Recent packages")]
	if strings.Contains(attention, "All good") || !strings.Contains(attention, "Broke") || !strings.Contains(attention, "Trying again") {
		t.Fatalf("needs attention lists the wrong packages:\n%s", attention)
	}
}
