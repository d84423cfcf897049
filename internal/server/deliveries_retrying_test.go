package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestDeliveryWaitingOnAnUnreachableIconikReadsRetrying: while iconik
// answers every call 503, the status API says so: the delivery reads
// "retrying" with the reason, and the file carries its last error, its
// attempt count and when it is tried next. Once iconik is back the
// delivery is delivered and nothing waits for a retry any more.
func TestDeliveryWaitingOnAnUnreachableIconikReadsRetrying(t *testing.T) {
	h := newHarness(t)
	var down atomic.Bool
	emu := emulatortest.Start(t, emulator.Options{}, emulatortest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() && strings.HasPrefix(r.URL.Path, "/API/") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"errors": ["Service unavailable"]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	connID := connectEmulator(t, h, emu)
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)

	h.portal(map[string]any{"name": "Outage", "slug": "outage", "active": true, "connection_ids": []string{connID}})
	var p created
	resp, body := h.req("POST", "/p/outage/packages", map[string]string{"name": "Shoot", "sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &p)
	down.Store(true)
	h.upload(p.UploadToken, "clip.txt", []byte("waiting for iconik\n"))
	resp, body = h.req("POST", "/p/outage/packages/"+p.Package.ID+"/finalize", nil, "Authorization", "Bearer "+p.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	var list struct {
		Deliveries []web.Delivery `json:"deliveries"`
	}
	resp, body = h.req("GET", "/api/v1/packages/"+p.Package.ID+"/deliveries", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("deliveries %+v", list.Deliveries)
	}
	id := list.Deliveries[0].ID

	// The fields are read as the API spells them, not through web.Delivery,
	// so the test says what a client sees.
	type fileJSON struct {
		Path          string `json:"path"`
		State         string `json:"state"`
		LastError     string `json:"last_error"`
		Attempts      int    `json:"attempts"`
		NextAttemptAt string `json:"next_attempt_at"`
	}
	type deliveryJSON struct {
		State  string            `json:"state"`
		Reason string            `json:"reason"`
		Files  []fileJSON        `json:"files"`
		Errors []json.RawMessage `json:"errors"`
	}
	get := func() (deliveryJSON, []byte) {
		var d struct {
			Delivery deliveryJSON `json:"delivery"`
		}
		resp, body := h.req("GET", "/api/v1/deliveries/"+id, nil, h.admin()...)
		h.mustJSON(resp, body, 200, &d)
		return d.Delivery, body
	}
	deadline := time.Now().Add(time.Minute)
	var d deliveryJSON
	var raw []byte
	for {
		d, raw = get()
		if d.State == "retrying" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while iconik answers 503 the delivery reads %q; want retrying: %s", d.State, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.Reason, "503") || len(d.Errors) == 0 || len(d.Files) != 1 {
		t.Fatalf("retrying without the reason: %s", raw)
	}
	f := d.Files[0]
	next, err := time.Parse(time.RFC3339Nano, f.NextAttemptAt)
	if f.State != "retrying" || !strings.Contains(f.LastError, "503") || f.Attempts < 1 || err != nil || next.IsZero() {
		t.Fatalf("file while iconik is down: %+v (next attempt: %v); want retrying with its last error, attempts and next attempt time", f, err)
	}

	down.Store(false)
	settled := waitSettled(t, h, id)
	if settled.State != "delivered" {
		t.Fatalf("after iconik came back: %s %+v", settled.State, settled.Errors)
	}
	d, raw = get()
	if d.Files[0].NextAttemptAt != "" || d.Files[0].State != "delivered" || d.Reason != "" {
		t.Fatalf("a delivered file still waits for a retry: %s", raw)
	}
}
