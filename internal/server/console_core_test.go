package server

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// Deleting a portal that still has packages is refused by the database (the
// packages keep their portal); the console shows the refusal on the portal's
// page, in HTML, and the portal stays.
func TestConsoleRefusesToDeleteAPortalWithPackages(t *testing.T) {
	h := newHarness(t)
	p := h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein"})
	h.newPackage("dailies")
	resp, body := h.req("POST", "/login", map[string]string{"email": "admin@example.com", "password": "correct horse battery"})
	var login struct {
		CSRFToken string `json:"csrf_token"`
	}
	if err := json.Unmarshal(body, &login); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "ferry_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	form := url.Values{"csrf_token": {login.CSRFToken}}.Encode()
	resp, body = h.req("POST", "/admin/portals/"+p.ID+"/delete", []byte(form),
		"Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie)
	page := string(body)
	if resp.StatusCode != 409 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, "still has packages") || !strings.Contains(page, `action="/admin/portals/`+p.ID+`/active"`) {
		t.Fatalf("deleting a portal with packages: %d %s", resp.StatusCode, page)
	}
	resp, _ = h.req("GET", "/api/v1/portals/"+p.ID, nil, h.admin()...)
	if resp.StatusCode != 200 {
		t.Fatalf("the portal is gone: %d", resp.StatusCode)
	}
}
