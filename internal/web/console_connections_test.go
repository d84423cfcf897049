package web

import (
	"context"
	"html"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
)

// sessions holds each fixture's signed-in browser session, so that a test's
// requests share one (as a browser's do; the sealed token is bound to it).
var sessions sync.Map

// consoleSession signs in through the form (once per fixture) and returns
// the session cookie header value and the CSRF token forms carry.
func (f *fixture) consoleSession() (cookie, csrf string) {
	f.t.Helper()
	if v, ok := sessions.Load(f); ok {
		s := v.([2]string)
		return s[0], s[1]
	}
	resp, body := f.do("POST", "/login", "email=admin%40example.com&password=correct+horse", "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			sessions.Store(f, [2]string{sessionCookie + "=" + c.Value, csrfToken(c.Value)})
			f.t.Cleanup(func() { sessions.Delete(f) })
			return sessionCookie + "=" + c.Value, csrfToken(c.Value)
		}
	}
	f.t.Fatal("sign in set no session cookie")
	return "", ""
}

// form posts a console form as a browser would (the CSRF token in the form
// unless withCSRF is false).
func (f *connFixture) form(path string, vals url.Values, withCSRF bool) (*http.Response, string) {
	f.t.Helper()
	ck, csrf := f.consoleSession()
	vals = maps.Clone(vals)
	if withCSRF {
		vals.Set("csrf_token", csrf)
	}
	resp, body := f.do("POST", path, vals.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Cookie", ck)
	return resp, string(body)
}

func (f *connFixture) page(path string) (*http.Response, string) {
	f.t.Helper()
	ck, _ := f.consoleSession()
	resp, body := f.do("GET", path, nil, "Cookie", ck)
	return resp, string(body)
}

var sealedField = regexp.MustCompile(`name="sealed_token" value="([^"]+)"`)

// verifyForm posts step 1 and returns the page and its sealed token.
func (f *connFixture) verifyForm(cred string) (*http.Response, string, url.Values) {
	f.t.Helper()
	c := f.creds(cred)
	resp, body := f.form("/admin/connections/new", url.Values{"base_url": {c["base_url"]}, "app_id": {c["app_id"]}, "token": {c["token"]}}, true)
	m := sealedField.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("step 2 carries no sealed token: %d %s", resp.StatusCode, body)
	}
	return resp, body, url.Values{"base_url": {c["base_url"]}, "app_id": {c["app_id"]}, "sealed_token": {html.UnescapeString(m[1])}}
}

// storageID finds the radio button of a storage on step 2.
func storageID(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="storage_id" value="([^"]+)"[^>]*> <label for="[^"]+">` + regexp.QuoteMeta(name) + `<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no selectable storage %q on the page", name)
	}
	return m[1]
}

func (f *connFixture) createConnection(name string) string {
	f.t.Helper()
	_, page, vals := f.verifyForm("admin")
	vals.Set("storage_id", storageID(f.t, page, "s3"))
	vals.Set("name", name)
	vals.Set("portal_root", "Portal Downloads")
	vals.Set("send_root", "MASV")
	resp, body := f.form("/admin/connections", vals, true)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/connections/") {
		f.t.Fatalf("save: %d %s %s", resp.StatusCode, loc, body)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(loc, "/admin/connections/"), "?")
	return id
}

func TestVerificationNamesEachRoleAsIconikShowsIt(t *testing.T) {
	f := newConnFixture(t)
	status, body := f.api("POST", "/api/v1/connections/verify", f.creds("power"))
	if status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
	v := decode[verificationResponse](t, body).Verification
	missing := []RoleCheck{}
	for _, r := range v.Roles {
		if r.Label == "" || r.Name == "" {
			t.Errorf("role without a name or label: %+v", r)
		}
		if !r.Present {
			missing = append(missing, r)
		}
	}
	if len(v.Roles) < 20 || len(missing) != 1 || missing[0] != (RoleCheck{Name: "can_write_metadata_values", Label: "Metadata values - write"}) {
		t.Fatalf("roles %+v, missing %+v", v.Roles, missing)
	}
}

func TestNewConnectionPageShowsChecklistAndStoragePicker(t *testing.T) {
	f := newConnFixture(t)
	resp, body := f.page("/admin/connections/new")
	if resp.StatusCode != 200 || !strings.Contains(body, `value="https://app.iconik.io"`) || !strings.Contains(body, `<label for="token">`) {
		t.Fatalf("step 1: %d %s", resp.StatusCode, body)
	}

	t.Run("power user: the one missing role, no save form", func(t *testing.T) {
		resp, body, _ := f.verifyForm("power")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		for _, want := range []string{"1 role missing: Metadata values - write (can_write_metadata_values); grant it", `<li class="no">Metadata values - write <code>can_write_metadata_values</code>`,
			`<li class="yes">Assets - create <code>can_create_assets</code>`, "Verify again"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(body, `action="/admin/connections"`) {
			t.Error("a token missing a role is offered the save form")
		}
		noSecretIn(t, "the page", body, f.emu.Cred("power").Token)
	})

	t.Run("admin: storages, selectable first, reasons and the settings note", func(t *testing.T) {
		resp, body, _ := f.verifyForm("admin")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		noSecretIn(t, "the page", body, f.emu.Cred("admin").Token)
		table := body[strings.Index(body, `id="storages"`):]
		table = table[:strings.Index(table, "</table>")]
		firstBad := strings.Index(table, "badge bad")
		if !strings.Contains(table, `name="storage_id"`) || firstBad < 0 || strings.Contains(table[firstBad:], "badge ok") || strings.Contains(table[firstBad:], `name="storage_id"`) {
			t.Errorf("selectable storages are not listed first: %s", table)
		}
		for _, want := range []string{"PROXIES, not FILES", "INACTIVE, not ACTIVE", "Admin &gt; Storages", "Read, Write and Delete", `<li class="yes">Power user or admin`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("bad token: step 1 again with the refusal inline", func(t *testing.T) {
		c := f.creds("admin")
		resp, body := f.form("/admin/connections/new", url.Values{"base_url": {c["base_url"]}, "app_id": {c["app_id"]}, "token": {"not-a-valid-token"}}, true)
		if resp.StatusCode != 400 || !strings.Contains(body, `class="error" role="alert"`) || !strings.Contains(body, `id="token"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestSavingAConnectionUsesTheSealedToken(t *testing.T) {
	f := newConnFixture(t)
	_, page, vals := f.verifyForm("admin")
	vals.Set("storage_id", storageID(t, page, "s3"))
	vals.Set("portal_root", "Portal Downloads")
	vals.Set("send_root", "MASV")

	t.Run("refusal re-rendered inline", func(t *testing.T) {
		resp, body := f.form("/admin/connections", vals, true) // no name
		if resp.StatusCode != 400 || !strings.Contains(body, "needs a name") || !strings.Contains(body, `name="storage_id"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("a tampered sealed token is refused", func(t *testing.T) {
		bad := url.Values{}
		for k, v := range vals {
			bad[k] = v
		}
		bad.Set("name", "Tenant")
		bad.Set("sealed_token", vals.Get("sealed_token")+"x")
		resp, body := f.form("/admin/connections", bad, true)
		if resp.StatusCode != 400 || !strings.Contains(body, "enter it again") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("without the CSRF token", func(t *testing.T) {
		vals.Set("name", "Tenant")
		resp, body := f.form("/admin/connections", vals, false)
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	resp, body := f.form("/admin/connections", vals, true)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", resp.StatusCode, body)
	}
	resp, body = f.page("/admin/connections")
	if resp.StatusCode != 200 || !strings.Contains(body, ">Tenant</a>") || !strings.Contains(body, "Portal Downloads") || !strings.Contains(body, "badge active") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
}

func TestConnectionPageFormsEditAndRefuseInline(t *testing.T) {
	f := newConnFixture(t)
	id := f.createConnection("Tenant")
	base := "/admin/connections/" + id
	resp, body := f.page(base)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="slack-state">Webhook: <span class="badge">not set`) {
		t.Fatalf("page: %d %s", resp.StatusCode, body)
	}
	const hook = "https://hooks.slack.com/services/T1/B1/hook-secret-part"
	cases := []struct {
		name, path string
		vals       url.Values
		csrf       bool
		status     int
		want       string // on the page after the redirect, or inline
	}{
		{"roots without csrf", base, url.Values{"name": {"Tenant"}, "portal_root": {"Ingest"}, "send_root": {"Sent"}}, false, 403, ""},
		{"roots", base, url.Values{"name": {"Tenant 2"}, "portal_root": {"Ingest"}, "send_root": {"Sent"}}, true, 303, `value="Ingest"`},
		{"empty name refused inline", base, url.Values{"name": {""}, "portal_root": {"Ingest"}, "send_root": {"Sent"}}, true, 400, "needs a name"},
		{"slack set", base + "/slack", url.Values{"slack_webhook_url": {hook}}, true, 303, `badge ok">set`},
		{"slack empty refused", base + "/slack", url.Values{"slack_webhook_url": {""}}, true, 400, "Paste the Slack webhook URL"},
		{"slack removed", base + "/slack", url.Values{"remove": {"1"}}, true, 303, `badge">not set`},
		{"credentials with a bad token", base + "/credentials", url.Values{"base_url": {f.emu.URL}, "app_id": {f.emu.Cred("admin").AppID}, "token": {"nope"}}, true, 400, "iconik"},
		{"credentials of a power user", base + "/credentials", url.Values{"base_url": {f.emu.URL}, "app_id": {f.emu.Cred("power").AppID}, "token": {f.emu.Cred("power").Token}}, true, 422, "can_write_metadata_values"},
		{"credentials", base + "/credentials", url.Values{"base_url": {f.emu.URL}, "app_id": {f.emu.Cred("admin").AppID}, "token": {f.emu.Cred("admin").Token}}, true, 303, "Credentials replaced"},
		{"verify again", base + "/verify", url.Values{}, true, 303, "Verified"},
		{"verify without csrf", base + "/verify", url.Values{}, false, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.form(c.path, c.vals, c.csrf)
			if resp.StatusCode != c.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == 303 {
				_, body = f.page(resp.Header.Get("Location"))
			}
			if !strings.Contains(body, c.want) {
				t.Fatalf("page lacks %q: %s", c.want, body)
			}
			noSecretIn(t, "the page", body, hook, f.emu.Cred("admin").Token, f.emu.Cred("power").Token)
		})
	}
}

func TestDeletingAConnectionAPortalUsesIsRefusedNamingThePortal(t *testing.T) {
	f := newConnFixture(t)
	id := f.createConnection("Tenant")
	p, err := f.store.PortalCreate(context.Background(), &db.PortalCreateParams{ID: "p1", Name: "Dailies", Slug: "dailies", Active: true,
		ConnectionIDs: []string{id}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := f.form("/admin/connections/"+id+"/delete", url.Values{}, false)
	if resp.StatusCode != 403 {
		t.Fatalf("delete without csrf: %d %s", resp.StatusCode, body)
	}
	resp, body = f.form("/admin/connections/"+id+"/delete", url.Values{}, true)
	if resp.StatusCode != 409 || !strings.Contains(body, `role="alert">Portals deliver to this connection (Dailies)`) {
		t.Fatalf("delete of a used connection: %d %s", resp.StatusCode, body)
	}
	if err := f.store.PortalDelete(context.Background(), &db.PortalDeleteParams{ID: p.ID}); err != nil {
		t.Fatal(err)
	}
	resp, body = f.form("/admin/connections/"+id+"/delete", url.Values{}, true)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/admin/connections?flash=Connection+Tenant+deleted." {
		t.Fatalf("delete: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if resp, _ := f.page("/admin/connections/" + id); resp.StatusCode != 404 {
		t.Fatalf("the deleted connection's page: %d", resp.StatusCode)
	}
}

func TestBrokenConnectionIsListedWithReasonAndVerifyAgain(t *testing.T) {
	f := newConnFixture(t)
	id := f.createConnection("Tenant")
	if _, err := f.store.ConnectionSetState(context.Background(), &db.ConnectionSetStateParams{ID: id, State: db.ConnectionBroken,
		StateReason: "iconik refused the token (401)", UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, body := f.page("/admin/connections")
	for _, want := range []string{"badge broken", "iconik refused the token (401)", `action="/admin/connections/` + id + `/verify"`, "Verify again"} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %q: %s", want, body)
		}
	}
	resp, _ := f.form("/admin/connections/"+id+"/verify", url.Values{}, true)
	if resp.StatusCode != 303 {
		t.Fatalf("verify again: %d", resp.StatusCode)
	}
	if _, body = f.page("/admin/connections"); strings.Contains(body, "badge broken") {
		t.Fatal("still broken after a passing verification")
	}
}

// slackRefused is the notifications service as the connection page reads it:
// only why Slack last refused a webhook (the rest is not used by the page).
type slackRefused struct {
	Notifications
	reason string
}

func (n slackRefused) SlackFailure(context.Context, string) (string, time.Time, error) {
	return n.reason, time.Now().Add(time.Hour), nil
}

func TestConnectionPageShowsWhySlackRefusedTheWebhook(t *testing.T) {
	f := newConnFixture(t)
	id := f.createConnection("Tenant")
	const hook = "https://hooks.slack.com/services/T1/B1/hook-secret-part"
	if resp, body := f.form("/admin/connections/"+id+"/slack", url.Values{"slack_webhook_url": {hook}}, true); resp.StatusCode != 303 {
		t.Fatalf("set: %d %s", resp.StatusCode, body)
	}
	s, err := New(Options{Store: f.fixture.store, Blobs: f.blobs, Connections: f.svc, Notifications: slackRefused{reason: "Slack answered 404 no_service"}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = s.Handler()
	resp, body := f.page("/admin/connections/" + id)
	if resp.StatusCode != 200 || !strings.Contains(body, `badge ok">set`) || !strings.Contains(body, `id="slack-error">Slack refused the last message: Slack answered 404 no_service`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	noSecretIn(t, "the page", body, hook)
	if _, body = f.page("/admin/connections"); !strings.Contains(body, "Slack: refused") {
		t.Errorf("the list does not say Slack refused the webhook: %s", body)
	}
}

func TestStoragePickerListsSelectableStoragesFirstInIconiksOrder(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a+ b- c+ d- e+", "a c e b d"},
		{"a- b- c+", "c a b"},
		{"a+ b+", "a b"},
		{"", ""},
	}
	for _, c := range cases {
		var st []IconikStorage
		for _, f := range strings.Fields(c.in) {
			st = append(st, IconikStorage{Name: f[:1], Selectable: f[1] == '+'})
		}
		selectableFirst(st)
		var got []string
		for _, s := range st {
			got = append(got, s.Name)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSealedTokenVerifiesAgainButOnlyInItsSession(t *testing.T) {
	f := newConnFixture(t)
	_, _, vals := f.verifyForm("power")
	resp, body := f.form("/admin/connections/new", vals, true) // "Verify again" on step 2
	if resp.StatusCode != 200 || !strings.Contains(body, `id="checklist"`) || !strings.Contains(body, "1 role missing") {
		t.Fatalf("verify again with the sealed token: %d %s", resp.StatusCode, body)
	}
	// Another signed-in session (another browser) cannot use it.
	sessions.Delete(f.fixture)
	resp, body = f.form("/admin/connections/new", vals, true)
	if resp.StatusCode != 400 || !strings.Contains(body, "enter it again") {
		t.Fatalf("a sealed token from another session: %d %s", resp.StatusCode, body)
	}
}

func TestVerifyAgainThatFailsShowsTheConnectionBrokenWithTheReason(t *testing.T) {
	f := newConnFixture(t)
	id := f.createConnection("Tenant")
	// The storage disappears from iconik: point the connection at one iconik never had.
	ctx := context.Background()
	row, err := f.store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	row.StorageID = "00000000-0000-0000-0000-000000000000"
	if _, err := f.store.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: row.ID, Name: row.Name, BaseURL: row.BaseURL, AppID: row.AppID,
		TokenSealed: row.TokenSealed, StorageID: row.StorageID, StorageName: row.StorageName, StorageMethod: row.StorageMethod,
		PortalRoot: row.PortalRoot, SendRoot: row.SendRoot, MetadataViewID: row.MetadataViewID, MetadataField: row.MetadataField,
		IconikUserID: row.IconikUserID, IconikUserEmail: row.IconikUserEmail, State: row.State, VerifiedAt: row.VerifiedAt, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	resp, body := f.form("/admin/connections/"+id+"/verify", url.Values{}, true)
	if resp.StatusCode != 409 || !strings.Contains(body, `role="alert">iconik refused the connection:`) || !strings.Contains(body, "badge broken") {
		t.Fatalf("verify again: %d %s", resp.StatusCode, body)
	}
	if _, body = f.page("/admin/connections"); !strings.Contains(body, "badge broken") || !strings.Contains(body, "Verify again") {
		t.Fatalf("list: %s", body)
	}
}
