package server

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestRevokedTokenMarksTheConnectionBrokenDuringDelivery: iconik stops
// accepting a saved connection's token while a portal package is being
// delivered. The real App marks the connection broken with the reason (the
// API shows it), and the files fail after one attempt each instead of
// River retrying them with the dead token.
func TestRevokedTokenMarksTheConnectionBrokenDuringDelivery(t *testing.T) {
	h := newHarness(t)
	var revoked atomic.Bool
	var token string
	// iconik's own answer to a token it no longer knows.
	emu := emulatortest.Start(t, emulator.Options{}, emulatortest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if revoked.Load() && strings.HasPrefix(r.URL.Path, "/API/") && r.Header.Get("Auth-Token") == token {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors": ["Token is invalid"]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	cred := emu.Cred("admin")
	token = cred.Token
	connID := connectEmulator(t, h, emu)
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)

	h.portal(map[string]any{"name": "Dead", "slug": "dead", "active": true, "connection_ids": []string{connID}})
	var p created
	resp, body := h.req("POST", "/p/dead/packages", map[string]string{"name": "Shoot", "sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &p)
	revoked.Store(true)
	for _, path := range []string{"a/one.txt", "two.txt"} {
		h.upload(p.UploadToken, path, []byte("content of "+path))
	}
	resp, body = h.req("POST", "/p/dead/packages/"+p.Package.ID+"/finalize", nil, "Authorization", "Bearer "+p.UploadToken)
	h.mustJSON(resp, body, 200, nil)

	var list struct {
		Deliveries []web.Delivery `json:"deliveries"`
	}
	resp, body = h.req("GET", "/api/v1/packages/"+p.Package.ID+"/deliveries", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("deliveries %+v", list.Deliveries)
	}
	d := waitSettled(t, h, list.Deliveries[0].ID)
	if d.State != "failed" {
		t.Fatalf("delivery %s, want failed", d.State)
	}
	files, err := h.app.DB.DeliveryFileList(t.Context(), &db.DeliveryFileListParams{DeliveryID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.State != db.DeliveryFileFailed || f.Attempts != 1 || !strings.Contains(f.Error, "401") {
			t.Errorf("%s: %s after %d attempts: %q; want failed after 1 attempt for the 401", f.Path, f.State, f.Attempts, f.Error)
		}
	}
	var got struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = h.req("GET", "/api/v1/connections/"+connID, nil, h.admin()...)
	h.mustJSON(resp, body, 200, &got)
	if got.Connection.State != "broken" || !strings.Contains(got.Connection.StateReason, "401") {
		t.Fatalf("connection %s %q, want broken for the 401", got.Connection.State, got.Connection.StateReason)
	}
	if strings.Contains(string(body), cred.Token) {
		t.Fatal("the connection's answer holds the token")
	}
	// Send to Cloud to the broken connection is refused up front.
	resp, body = h.req("POST", "/api/v1/packages/"+p.Package.ID+"/deliveries", map[string]string{"connection_id": connID}, h.admin()...)
	h.mustJSON(resp, body, 409, nil)
	if !strings.Contains(string(body), "connection_broken") {
		t.Fatalf("Send to Cloud to a broken connection: %s", body)
	}
}

// waitSettled waits (bounded) for delivery id to settle, whatever the outcome.
func waitSettled(t *testing.T, h *harness, id string) web.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		var d struct {
			Delivery web.Delivery `json:"delivery"`
		}
		resp, body := h.req("GET", "/api/v1/deliveries/"+id, nil, h.admin()...)
		h.mustJSON(resp, body, 200, &d)
		if d.Delivery.SettledAt != nil {
			return d.Delivery
		}
		select {
		case <-ctx.Done():
			t.Fatalf("delivery still %s: %+v", d.Delivery.State, d.Delivery.Errors)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
