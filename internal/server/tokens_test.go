package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/web"
)

// apiToken is the admin API's view of a token (never its secret).
type apiToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	UserEmail  string     `json:"user_email"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	State      string     `json:"state"`
}

type createdToken struct {
	Token  apiToken `json:"token"`
	Secret string   `json:"secret"`
}

// newToken creates an API token through the admin API.
func (h *harness) newToken(body map[string]any) createdToken {
	h.t.Helper()
	var c createdToken
	resp, out := h.req("POST", "/api/v1/tokens", body, h.admin()...)
	h.mustJSON(resp, out, http.StatusCreated, &c)
	if c.Secret == "" || c.Token.ID == "" {
		h.t.Fatalf("created token without secret or id: %s", out)
	}
	return c
}

// listTokens returns GET /api/v1/tokens by id, and its raw body.
func (h *harness) listTokens() (map[string]apiToken, []byte) {
	h.t.Helper()
	var l struct {
		Tokens []apiToken `json:"tokens"`
	}
	resp, out := h.req("GET", "/api/v1/tokens", nil, h.admin()...)
	h.mustJSON(resp, out, http.StatusOK, &l)
	m := map[string]apiToken{}
	for _, t := range l.Tokens {
		m[t.ID] = t
	}
	return m, out
}

// wantCode checks a refusal's status and error code.
func (h *harness) wantCode(resp *http.Response, body []byte, status int, code string) {
	h.t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	h.mustJSON(resp, body, status, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		h.t.Fatalf("%s %s: error %+v, want code %q", resp.Request.Method, resp.Request.URL.Path, e.Error, code)
	}
}

func TestRevokedTokenIsRefusedOnTheVeryNextRequest(t *testing.T) {
	onEveryDatabase(t, func(t *testing.T, h *harness) {
		c := h.newToken(map[string]any{"name": "ci"})
		bearer := []string{"Authorization", "Bearer " + c.Secret}
		resp, body := h.req("GET", "/api/v1/portals", nil, bearer...)
		h.mustJSON(resp, body, http.StatusOK, nil)

		var revoked struct{ Token apiToken }
		resp, body = h.req("DELETE", "/api/v1/tokens/"+c.Token.ID, nil, h.admin()...)
		h.mustJSON(resp, body, http.StatusOK, &revoked)
		if revoked.Token.RevokedAt == nil || revoked.Token.State != "revoked" {
			t.Fatalf("revoke answered %s", body)
		}
		resp, body = h.req("GET", "/api/v1/portals", nil, bearer...)
		h.wantCode(resp, body, http.StatusUnauthorized, "token_revoked")

		// Revoking again changes nothing; an unknown id is a 404.
		var again struct{ Token apiToken }
		resp, body = h.req("DELETE", "/api/v1/tokens/"+c.Token.ID, nil, h.admin()...)
		h.mustJSON(resp, body, http.StatusOK, &again)
		if again.Token.RevokedAt == nil || !again.Token.RevokedAt.Equal(*revoked.Token.RevokedAt) {
			t.Fatalf("second revoke moved revoked_at: %s", body)
		}
		resp, body = h.req("DELETE", "/api/v1/tokens/no-such-token", nil, h.admin()...)
		h.wantCode(resp, body, http.StatusNotFound, "token_not_found")

		// A token may revoke itself; its very next request is refused.
		self := h.newToken(map[string]any{"name": "self"})
		resp, body = h.req("DELETE", "/api/v1/tokens/"+self.Token.ID, nil, "Authorization", "Bearer "+self.Secret)
		h.mustJSON(resp, body, http.StatusOK, nil)
		resp, body = h.req("GET", "/api/v1/tokens", nil, "Authorization", "Bearer "+self.Secret)
		h.wantCode(resp, body, http.StatusUnauthorized, "token_revoked")

		// The harness's own token is untouched.
		resp, body = h.req("GET", "/api/v1/portals", nil, h.admin()...)
		h.mustJSON(resp, body, http.StatusOK, nil)
	})
}

func TestExpiredTokenIsRefusedWithACodeSayingExpired(t *testing.T) {
	onEveryDatabase(t, func(t *testing.T, h *harness) {
		in := h.newToken(map[string]any{"name": "short", "expires_in": "1h"})
		at := h.newToken(map[string]any{"name": "dated", "expires_at": h.now.Add(2 * time.Hour).Format(time.RFC3339)})
		if in.Token.ExpiresAt == nil || !in.Token.ExpiresAt.Equal(h.now.Add(time.Hour).Truncate(time.Microsecond)) {
			t.Fatalf("expires_in 1h gave expires_at %v (now %v)", in.Token.ExpiresAt, h.now)
		}
		for _, c := range []createdToken{in, at} {
			resp, body := h.req("GET", "/api/v1/portals", nil, "Authorization", "Bearer "+c.Secret)
			h.mustJSON(resp, body, http.StatusOK, nil)
		}
		h.now = h.now.Add(time.Hour)
		resp, body := h.req("GET", "/api/v1/portals", nil, "Authorization", "Bearer "+in.Secret)
		h.wantCode(resp, body, http.StatusUnauthorized, "token_expired")
		resp, body = h.req("GET", "/api/v1/portals", nil, "Authorization", "Bearer "+at.Secret)
		h.mustJSON(resp, body, http.StatusOK, nil)
		h.now = h.now.Add(time.Hour)
		resp, body = h.req("POST", "/api/v1/portals", map[string]any{"name": "P", "slug": "p"}, "Authorization", "Bearer "+at.Secret)
		h.wantCode(resp, body, http.StatusUnauthorized, "token_expired")

		list, _ := h.listTokens()
		if list[in.Token.ID].State != "expired" || list[at.Token.ID].State != "expired" {
			t.Fatalf("list after expiry: %+v", list)
		}
	})
}

func TestTokenListShowsLastUseAndNeverTheSecret(t *testing.T) {
	onEveryDatabase(t, func(t *testing.T, h *harness) {
		c := h.newToken(map[string]any{"name": "nightly export"})
		list, raw := h.listTokens()
		got, ok := list[c.Token.ID]
		if !ok || got.Name != "nightly export" || got.UserEmail != "admin@example.com" || got.LastUsedAt != nil ||
			got.ExpiresAt != nil || got.RevokedAt != nil || got.State != "active" {
			t.Fatalf("new token listed as %+v (ok %v)", got, ok)
		}
		if bytes.Contains(raw, []byte(c.Secret)) || bytes.Contains(raw, []byte("hash")) {
			t.Fatalf("the list shows a secret: %s", raw)
		}

		use := func() {
			t.Helper()
			resp, body := h.req("GET", "/api/v1/portals", nil, "Authorization", "Bearer "+c.Secret)
			h.mustJSON(resp, body, http.StatusOK, nil)
		}
		lastUse := func() time.Time {
			t.Helper()
			list, _ := h.listTokens()
			if list[c.Token.ID].LastUsedAt == nil {
				t.Fatalf("last use not recorded: %+v", list[c.Token.ID])
			}
			return *list[c.Token.ID].LastUsedAt
		}
		first := h.now
		use()
		if got := lastUse(); !got.Equal(first.Truncate(time.Microsecond)) {
			t.Fatalf("last use %v, want %v", got, first)
		}
		// Within a minute the recorded use stays (no write per request)...
		h.now = first.Add(30 * time.Second)
		use()
		if got := lastUse(); !got.Equal(first.Truncate(time.Microsecond)) {
			t.Fatalf("last use moved to %v within a minute of %v", got, first)
		}
		// ...and after it, the next request records itself.
		h.now = first.Add(61 * time.Second)
		use()
		if got := lastUse(); !got.Equal(h.now.Truncate(time.Microsecond)) {
			t.Fatalf("last use %v, want %v", got, h.now)
		}
	})
}

func TestTokenCreationRefusesBadInputAndStoresNothing(t *testing.T) {
	h := newHarness(t)
	before, _ := h.listTokens()
	cases := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"no name", map[string]any{"expires_in": "1h"}, http.StatusBadRequest, "invalid_name"},
		{"blank name", map[string]any{"name": "  "}, http.StatusBadRequest, "invalid_name"},
		{"name with a newline", map[string]any{"name": "ci\nfake row"}, http.StatusBadRequest, "invalid_name"},
		{"expires_in not a duration", map[string]any{"name": "x", "expires_in": "soon"}, http.StatusUnprocessableEntity, "invalid_expires_in"},
		{"expires_in negative", map[string]any{"name": "x", "expires_in": "-1h"}, http.StatusUnprocessableEntity, "invalid_expires_in"},
		{"expires_at in the past", map[string]any{"name": "x", "expires_at": h.now.Add(-time.Minute).Format(time.RFC3339)}, http.StatusUnprocessableEntity, "invalid_expires_at"},
		{"both expiries", map[string]any{"name": "x", "expires_in": "1h", "expires_at": h.now.Add(time.Hour).Format(time.RFC3339)}, http.StatusUnprocessableEntity, "invalid_expires_in"},
	}
	for _, tc := range cases {
		// The harness reports through the parent test, so no subtests here.
		resp, body := h.req("POST", "/api/v1/tokens", tc.body, h.admin()...)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	if after, _ := h.listTokens(); len(after) != len(before) {
		t.Fatalf("refused creations stored tokens: %d before, %d after", len(before), len(after))
	}
}

// TestEveryAdminRouteRefusesRevokedAndExpiredTokens walks the route table on
// the real store: no admin route (River UI included) lets a revoked or an
// expired token through, and each says which it was.
func TestEveryAdminRouteRefusesRevokedAndExpiredTokens(t *testing.T) {
	h := newHarness(t)
	revoked := h.newToken(map[string]any{"name": "revoked"})
	resp, body := h.req("DELETE", "/api/v1/tokens/"+revoked.Token.ID, nil, h.admin()...)
	h.mustJSON(resp, body, http.StatusOK, nil)
	expired := h.newToken(map[string]any{"name": "expired", "expires_in": "1m"})
	h.now = h.now.Add(time.Minute)
	callers := map[string]string{revoked.Secret: "token_revoked", expired.Secret: "token_expired"}
	n := 0
	for _, rt := range h.app.Web.Routes() {
		if rt.Access != web.Admin {
			continue
		}
		n++
		path := strings.NewReplacer("{id}", revoked.Token.ID).Replace(rt.Pattern)
		for secret, code := range callers {
			resp, body := h.req(rt.Method, path, map[string]string{"name": "x"}, "Authorization", "Bearer "+secret)
			h.wantCode(resp, body, http.StatusUnauthorized, code)
		}
	}
	if n < 12 {
		t.Fatalf("only %d admin routes", n)
	}
}
