package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestConsoleTokensShowTheSecretOnceAndRevoke(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	resp, page := b.get("/admin/tokens")
	wantHTML(t, resp, page, 200, `for="token-name"`, `for="expires_days"`)

	resp, body := b.post("/admin/tokens", url.Values{"name": {"ingest"}, "expires_days": {"soon"}})
	wantHTML(t, resp, body, 422, "is not a number of days", `value="ingest"`)

	resp, body = b.post("/admin/tokens", url.Values{"name": {"ingest"}, "expires_days": {"30"}})
	wantHTML(t, resp, body, 201, "shown only this once", `data-copy="#token-secret"`)
	list, _ := f.store.APITokenList(t.Context())
	if len(list) != 1 || list[0].Name != "ingest" || list[0].ExpiresAt == nil {
		t.Fatalf("tokens: %+v", list)
	}
	i := strings.Index(body, `<code id="token-secret">`)
	secret := body[i+len(`<code id="token-secret">`):]
	secret = secret[:strings.Index(secret, "<")]
	if r, _ := f.do("GET", "/api/v1/tokens", nil, "Authorization", "Bearer "+secret); r.StatusCode != 200 {
		t.Fatalf("the shown secret does not work: %d", r.StatusCode)
	}
	resp, page = b.get("/admin/tokens")
	wantHTML(t, resp, page, 200, "ingest", "Revoke")
	if strings.Contains(page, secret) {
		t.Fatal("the secret is shown again on the list")
	}

	resp, _ = b.post("/admin/tokens/"+list[0].ID+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if r, _ := f.do("GET", "/api/v1/tokens", nil, "Authorization", "Bearer "+secret); r.StatusCode != 401 {
		t.Fatalf("a revoked token still works: %d", r.StatusCode)
	}
	resp, page = b.get("/admin/tokens")
	wantHTML(t, resp, page, 200, "revoked")
}

func TestConsoleAdminsAddAndNeverRemoveTheLast(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	resp, page := b.get("/admin/users")
	wantHTML(t, resp, page, 200, "admin@example.com", "the only admin")

	cases := []struct {
		name, email, pw, pw2, msg string
		status                    int
	}{
		{"passwords differ", "ed@example.com", "long enough password", "long enough passw0rd", "The two passwords differ", 422},
		{"short password", "ed@example.com", "short", "short", "at least 12 characters", 400},
		{"taken email", "admin@example.com", "long enough password", "long enough password", "already exists", 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.post("/admin/users", url.Values{"email": {tc.email}, "password": {tc.pw}, "password2": {tc.pw2}})
			wantHTML(t, resp, body, tc.status, tc.msg, `value="`+tc.email+`"`)
		})
	}
	resp, _ = b.post("/admin/users", url.Values{"email": {"ed@example.com"}, "password": {"long enough password"}, "password2": {"long enough password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	ed := f.signIn("ed@example.com", "long enough password")

	// Ed removes the first admin; then Ed, the last, cannot be removed.
	users, _ := f.store.UserList(t.Context())
	var adminID, edID string
	for _, u := range users {
		if u.Email == "admin@example.com" {
			adminID = u.ID
		} else {
			edID = u.ID
		}
	}
	resp, _ = ed.post("/admin/users/"+adminID+"/delete", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	resp, body := ed.post("/admin/users/"+edID+"/delete", nil)
	wantHTML(t, resp, body, 409, "only admin")
	if n, _ := f.store.UserCount(t.Context()); n != 1 {
		t.Fatalf("%d admins left, want 1", n)
	}
	// The removed admin's session ended with the account.
	if resp, _ := b.get("/admin/users"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a removed admin's session still works: %d", resp.StatusCode)
	}
}
