package web

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
)

// The portal form offers every Cloud Connect connection as a checkbox
// (broken ones marked), and the dashboard names a broken connection with
// its reason; both through the real connect service.
func TestConsolePortalDeliversToTheConnectionsTicked(t *testing.T) {
	f := newConnFixture(t)
	admin := f.creds("admin")
	_, body := f.api("POST", "/api/v1/connections/verify", admin)
	var s3 string
	for _, s := range decode[verificationResponse](t, body).Verification.Storages {
		if s.Name == "s3" {
			s3 = s.ID
		}
	}
	in := f.creds("admin")
	in["name"], in["storage_id"] = "Tenant", s3
	status, body := f.api("POST", "/api/v1/connections", in)
	if status != 201 {
		t.Fatalf("creating the connection: %d %s", status, body)
	}
	c := decode[struct{ Connection struct{ ID string } }](t, body).Connection

	b := f.signIn("admin@example.com", "correct horse")
	resp, page := b.get("/admin/portals/new")
	wantHTML(t, resp, page, 200, "Deliver to Cloud: select connections", `value="`+c.ID+`"`, "Tenant")
	resp, page = b.post("/admin/portals", url.Values{"name": {"Rushes"}, "slug": {"rushes"}, "active": {"on"}, "password_mode": {"keep"}, "connection_ids": {c.ID}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %s", resp.StatusCode, page)
	}
	p, err := f.fixture.store.PortalGetBySlug(t.Context(), "rushes")
	if err != nil || len(p.ConnectionIDs) != 1 || p.ConnectionIDs[0] != c.ID {
		t.Fatalf("portal %+v (%v): want it delivering to %s", p, err, c.ID)
	}
	resp, page = b.get("/admin/portals/" + p.ID)
	wantHTML(t, resp, page, 200, `value="`+c.ID+`" checked`)

	if _, err := f.store.ConnectionSetState(t.Context(), &db.ConnectionSetStateParams{ID: c.ID, State: db.ConnectionBroken, StateReason: "iconik refused the token", UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	resp, page = b.get("/")
	wantHTML(t, resp, page, 200, "Needs attention", "Tenant", "iconik refused the token")
	resp, page = b.get("/admin/portals/" + p.ID)
	wantHTML(t, resp, page, 200, `<span class="badge broken">broken</span>`)
}
