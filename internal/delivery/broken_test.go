package delivery_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
)

// countingTransport counts the requests sent through it.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// tokenClient is a client of the emulator acting with appID and token,
// counting its requests.
func (e *env) tokenClient(appID, token string) (*iconik.Client, *countingTransport) {
	e.t.Helper()
	ct := &countingTransport{base: http.DefaultTransport}
	cl, err := iconik.New(iconik.Options{BaseURL: e.url, AppID: appID, Token: token,
		Transport: ispectest.TransportAllowing(e.t, ct, http.StatusUnauthorized, http.StatusForbidden),
		Backoff:   20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 8, RateLimit: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	return cl, ct
}

// waitDelivered waits (bounded) until the package's file path is delivered
// to conn, before the package is finalized.
func (e *env) waitDelivered(h *pkgHandle, conn, path string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		d, err := e.store.DeliveryGetByPackageConnection(e.ctx, &db.DeliveryGetByPackageConnectionParams{PackageID: h.pkg.ID, ConnectionID: conn})
		if err == nil {
			f, err := e.store.DeliveryFileGet(e.ctx, &db.DeliveryFileGetParams{DeliveryID: d.ID, FileID: h.ids[path]})
			if err == nil && f.State == db.DeliveryFileDelivered {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("%s was not delivered before finalize", path)
}

// TestRefusedConnectionIsMarkedBrokenAndFailsFilesAtOnce: when iconik stops
// accepting the connection's token mid-delivery (401), or the token lacks a
// role a step needs (403), the connection is marked broken with the reason
// and each remaining file fails after one attempt, instead of being retried
// by River for hours; the dead token is not used again to clean up.
func TestRefusedConnectionIsMarkedBrokenAndFailsFilesAtOnce(t *testing.T) {
	cases := []struct {
		name       string
		revoke     bool   // the token is replaced after the first file was delivered
		credential string // else: the connection acts with this seed token throughout
		status     string // in the reason and the files' errors
	}{
		{name: "token revoked mid-delivery", revoke: true, status: "401"},
		{name: "token lacking can_write_metadata_values", credential: "power", status: "403"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			conn := e.connect("c", "s3")
			e.createPortal("Broken", conn.ID)
			h := e.newPackage("broken", "Pkg", "b@example.com")
			var dead *countingTransport
			if c.revoke {
				e.put(h, "first.txt", []byte("delivered before the token went\n"))
				e.waitDelivered(h, conn.ID, "first.txt")
				var cl *iconik.Client
				cl, dead = e.tokenClient(e.cred("admin").AppID, "a-token-iconik-revoked")
				e.conns.setClient(conn.ID, cl)
			} else {
				cred := e.cred(c.credential)
				cl, _ := e.tokenClient(cred.AppID, cred.Token)
				e.conns.setClient(conn.ID, cl)
			}
			e.put(h, "a/one.txt", []byte("one\n"))
			e.put(h, "a/two.txt", []byte("two\n"))
			e.finalize(h)

			st := e.settled(h, conn.ID)
			reason := e.conns.brokenReason(conn.ID)
			if !strings.Contains(reason, c.status) {
				t.Fatalf("connection broken reason %q, want one naming %s", reason, c.status)
			}
			failed := 0
			for _, f := range st.Files {
				if f.Path == "first.txt" {
					if f.State != db.DeliveryFileDelivered {
						t.Fatalf("%s: %s %s", f.Path, f.State, f.Error)
					}
					continue
				}
				failed++
				if f.State != db.DeliveryFileFailed || f.Attempts != 1 || !strings.Contains(f.Error, "marked broken") {
					t.Errorf("%s: %s after %d attempts (%q); want failed after 1 attempt, saying the connection is broken", f.Path, f.State, f.Attempts, f.Error)
				}
			}
			if failed != 2 {
				t.Fatalf("%d files failed, want 2", failed)
			}
			// At most one refused call per file: none to retry, none to
			// clean up with the dead token, none to close the package job.
			if dead != nil && dead.n.Load() > 2 {
				t.Fatalf("%d calls made with the revoked token, want at most 2 (one per file)", dead.n.Load())
			}
		})
	}
}
