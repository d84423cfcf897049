package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func portalValues(kv ...string) url.Values {
	v := url.Values{"name": {"Rushes"}, "slug": {"rushes"}, "active": {"on"}, "password_mode": {"keep"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestConsolePortalCreateAndEditRoundTripEveryField(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	resp, page := b.get("/admin/portals/new")
	wantHTML(t, resp, page, 200, `action="/admin/portals"`, `for="max_file_size"`)

	resp, body := b.post("/admin/portals", portalValues(
		"password_mode", "set", "password", "s3cret", "recipients", "a@example.com\nb@example.com",
		"welcome_message", "Hello", "max_file_size", "20 GB", "max_package_size", "1.5 TiB", "max_file_count", "100",
		"allowed_extensions", "mov, mxf", "denied_extensions", "exe", "retention_days", "30"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	p, err := f.store.PortalGetBySlug(t.Context(), "rushes")
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxFileSize: 20e9, MaxPackageSize: 1649267441664, MaxFileCount: 100, AllowedExtensions: []string{"mov", "mxf"}, DeniedExtensions: []string{"exe"}}
	if p.Name != "Rushes" || !p.Active || !p.HasPassword || strings.Join(p.Recipients, ",") != "a@example.com,b@example.com" ||
		p.WelcomeMessage != "Hello" || p.RetentionDays != 30 || p.Limits.MaxFileSize != want.MaxFileSize ||
		p.Limits.MaxPackageSize != want.MaxPackageSize || p.Limits.MaxFileCount != 100 ||
		strings.Join(p.Limits.AllowedExtensions, ",") != "mov,mxf" || strings.Join(p.Limits.DeniedExtensions, ",") != "exe" {
		t.Fatalf("stored %+v", p)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/admin/portals/"+p.ID) {
		t.Fatalf("redirected to %q", loc)
	}
	resp, page = b.get("/admin/portals/" + p.ID)
	wantHTML(t, resp, page, 200, `value="20 GB"`, `value="1.5 TiB"`, f.srv.URL+"/p/rushes", `data-copy="#portal-link"`, "Remove the password")

	// Keep the password, change the name; then remove it.
	resp, body = b.post("/admin/portals/"+p.ID, portalValues("name", "Dailies"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	if p, _ = f.store.PortalGet(t.Context(), p.ID); p.Name != "Dailies" || !p.HasPassword || p.Limits.MaxFileSize != 0 {
		t.Fatalf("after update: %+v", p)
	}
	b.post("/admin/portals/"+p.ID, portalValues("password_mode", "remove"))
	if p, _ = f.store.PortalGet(t.Context(), p.ID); p.HasPassword {
		t.Fatal("password not removed")
	}
}

func TestConsolePortalRefusalsAreShownInline(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	f.store.PortalCreate(t.Context(), PortalInput{Name: "Taken", Slug: "taken", Active: ptr(true)})
	cases := []struct {
		name   string
		v      url.Values
		status int
		msg    string
	}{
		{"duplicate slug", portalValues("slug", "taken"), 409, "taken"},
		{"bad size", portalValues("max_file_size", "twenty gigs"), 422, "is not a size like 20 GB"},
		{"bad count", portalValues("max_file_count", "many"), 422, "is not a whole number"},
		{"set without a password", portalValues("password_mode", "set"), 422, "Type the new password"},
		{"no slug", portalValues("slug", ""), 422, "needs a slug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Set("welcome_message", "kept as typed")
			resp, body := b.post("/admin/portals", tc.v)
			wantHTML(t, resp, body, tc.status, tc.msg, `role="alert"`, "kept as typed")
		})
	}
	if ps, _ := f.store.PortalList(t.Context()); len(ps) != 1 {
		t.Fatalf("%d portals after refusals", len(ps))
	}
}

func TestConsolePortalDeactivateAndDelete(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	p, _ := f.store.PortalCreate(t.Context(), PortalInput{Name: "Rushes", Slug: "rushes", Active: ptr(true), Recipients: []string{"a@example.com"}})
	resp, page := b.get("/admin/portals")
	wantHTML(t, resp, page, 200, "Rushes", f.srv.URL+"/p/rushes", "Deactivate")
	resp, _ = b.post("/admin/portals/"+p.ID+"/active", url.Values{"active": {"false"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", resp.StatusCode)
	}
	if got, _ := f.store.PortalGet(t.Context(), p.ID); got.Active || len(got.Recipients) != 1 {
		t.Fatalf("after deactivate: %+v", got)
	}
	resp, page = b.get("/admin/portals/" + p.ID)
	wantHTML(t, resp, page, 200, `data-confirm="Delete the portal Rushes?`)
	resp, _ = b.post("/admin/portals/"+p.ID+"/delete", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, err := f.store.PortalGet(t.Context(), p.ID); err == nil {
		t.Fatal("portal still there")
	}
	resp, page = b.get("/admin/portals/" + p.ID)
	wantHTML(t, resp, page, 404)
}

func TestSizesAreParsedAsTypedAndShownBackExactly(t *testing.T) {
	cases := []struct {
		in   string
		n    int64
		back string
	}{
		{"20 GB", 20e9, "20 GB"},
		{"20GB", 20e9, "20 GB"},
		{"1.5 TiB", 1649267441664, "1.5 TiB"},
		{"512 MiB", 512 << 20, "512 MiB"},
		{"2.5 gb", 2.5e9, "2.5 GB"},
		{"1000", 1000, "1 KB"},
		{"1234567", 1234567, "1234567 B"},
		{"7", 7, "7 B"},
		{"", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			n, err := parseSize("x", tc.in)
			if err != nil || n != tc.n {
				t.Fatalf("parseSize(%q) = %d, %v; want %d", tc.in, n, err, tc.n)
			}
			if got := formatSize(n); got != tc.back {
				t.Fatalf("formatSize(%d) = %q, want %q", n, got, tc.back)
			}
			if again, _ := parseSize("x", formatSize(n)); again != n {
				t.Fatalf("%q does not read back as %d", formatSize(n), n)
			}
		})
	}
	for _, bad := range []string{"20 XB", "-1 GB", "GB", "1e400"} {
		if _, err := parseSize("x", bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
