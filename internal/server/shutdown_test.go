package server

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownIsNotHeldByAnOpenLivePage: an admin's package page streams server-sent events
// for as long as it is open. A shutdown ends that stream (the browser reconnects) instead of
// waiting the whole grace period for it: with a ten-minute grace and such a page open, Serve
// returns as soon as nothing else runs.
func TestShutdownIsNotHeldByAnOpenLivePage(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	base, stop, served := h.serveForReal(10 * time.Minute)

	req, _ := http.NewRequest("GET", base+"/admin/packages/"+pkg.Package.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil { // the first event: the stream is live
		t.Fatal(err)
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(time.Minute): // a deadlock guard: the grace is ten minutes
		t.Fatal("the shutdown is held by the open live page")
	}
}
