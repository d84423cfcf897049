package delivery_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// TestDeliveryFileWaitingForARetrySaysWhyUntilItGoesThrough: iconik
// refuses asset creates with 503 (a POST: the client leaves the retry to
// ferry, which retries the step in place, then the job through River). The
// file says so while it waits (last error, attempts, next attempt time)
// and the delivery reads retrying with the reason; once iconik takes the
// create, the file is delivered, waits for nothing, and keeps its last error.
func TestDeliveryFileWaitingForARetrySaysWhyUntilItGoesThrough(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	e := newEnv(t, envOptions{noSpec: true, wrap: func(h http.Handler) http.Handler {
		checked := emulatortest.Checked(t, h, 0)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() && r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/API/assets/v1/assets" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"errors": ["Service unavailable"]}`))
				return
			}
			checked.ServeHTTP(w, r)
		})
	}})
	conn := e.connect("c", "s3")
	e.createPortal("Wait", conn.ID)
	h := e.newPackage("wait", "Shoot", "s@example.com")
	e.put(h, "clip.txt", []byte("waits for iconik\n"))
	e.finalize(h)

	d := e.deliveryOf(h, conn.ID)
	// First the step's own retry of the 503, then (a create that failed
	// may have happened: ferry looks for it within the index grace) River's
	// retry of the job: both read as retrying, with the reason.
	waitFor := func(what string, ok func(st *delivery.Status, f *db.DeliveryFile) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			st, err := e.svc.Get(e.ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			f := st.Files[0]
			if ok(st, f) {
				if !strings.Contains(st.Reason, "clip.txt: "+f.LastError) || f.NextAttemptAt == nil || f.State.Settled() {
					t.Fatalf("%s: reason %q, file %s, last error %q, next attempt %v", what, st.Reason, f.State, f.LastError, f.NextAttemptAt)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s: retrying %v %q, file %s attempts %d last error %q next %v", what, st.Retrying, st.Reason, f.State, f.Attempts, f.LastError, f.NextAttemptAt)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("retry of the 503 in place", func(st *delivery.Status, f *db.DeliveryFile) bool {
		return st.Retrying && strings.Contains(f.LastError, "503")
	})
	waitFor("River retry", func(st *delivery.Status, f *db.DeliveryFile) bool { return st.Retrying && f.Attempts >= 2 })
	down.Store(false)
	st := e.settled(h, conn.ID)
	f := st.Files[0]
	if st.Delivery.State != db.DeliveryDelivered || st.Retrying || st.Reason != "" || f.NextAttemptAt != nil || f.Retrying() {
		t.Fatalf("after iconik took the create: %s retrying %v %q, file next attempt %v", st.Delivery.State, st.Retrying, st.Reason, f.NextAttemptAt)
	}
	if f.LastError == "" {
		t.Fatal("the delivered file forgot the last error it recovered from")
	}
}
