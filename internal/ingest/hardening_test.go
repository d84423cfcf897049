package ingest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// issue 9 item 4: the largest upload is advertised and every way of stating
// a length past it is refused with 413 before anything is stored.
func TestTusMaxSizeIsAdvertisedAndEnforced(t *testing.T) {
	rg := newRig(t, func(c *Config) { c.MaxSize = 100 })
	if res := rg.do(tusReq{Method: "OPTIONS"}); res.Header.Get("Tus-Max-Size") != "100" {
		t.Fatalf("OPTIONS advertises Tus-Max-Size %q, want 100", res.Header.Get("Tus-Max-Size"))
	}
	meta := fileMeta(nil, false)
	tooLarge := func(what string, res *tusResp) {
		t.Helper()
		if res.Status != http.StatusRequestEntityTooLarge || res.errCode() != "upload_too_large" || !strings.Contains(string(res.Body), "100 bytes") {
			t.Fatalf("%s: %d %s, want 413 upload_too_large naming the limit", what, res.Status, res.Body)
		}
	}
	tooLarge("a length past the maximum", rg.do(tusReq{Method: "POST", Token: testToken, Meta: meta,
		Header: map[string]string{"Upload-Length": "101"}}))
	tooLarge("the largest int64", rg.do(tusReq{Method: "POST", Token: testToken, Meta: meta,
		Header: map[string]string{"Upload-Length": "9223372036854775807"}}))
	deferred := rg.do(tusReq{Method: "POST", Token: testToken, Meta: meta, Header: map[string]string{"Upload-Defer-Length": "1"}})
	if deferred.Status != http.StatusCreated {
		t.Fatalf("deferred create: %d %s", deferred.Status, deferred.Body)
	}
	tooLarge("a deferred length declared past the maximum", rg.do(tusReq{Method: "PATCH", URL: deferred.Header.Get("Location"), Token: testToken,
		HasBody: true, Header: map[string]string{"Upload-Offset": "0", "Upload-Length": "101"}}))
	var parts []string
	for range 2 {
		u := rg.create(60, partialMeta(0, make([]byte, 60)), map[string]string{"Upload-Concat": "partial"})
		if res := rg.patch(u, 0, make([]byte, 60)); res.Status != http.StatusNoContent {
			t.Fatalf("partial: %d %s", res.Status, res.Body)
		}
		parts = append(parts, u)
	}
	tooLarge("a final of partials past the maximum together", rg.do(tusReq{Method: "POST", Token: testToken, Meta: meta,
		Header: map[string]string{"Upload-Concat": "final;" + strings.Join(parts, " ")}}))
	if n := len(rg.gate.completions()); n != 0 {
		t.Fatalf("%d uploads completed", n)
	}
}

// issue 9 item 3: a final lists each partial once; the store refuses a
// repeated partial too, whoever asks.
func TestAFinalListsEachPartialOnce(t *testing.T) {
	rg := newRig(t)
	u := rg.create(3, partialMeta(0, []byte("abc")), map[string]string{"Upload-Concat": "partial"})
	if res := rg.patch(u, 0, []byte("abc")); res.Status != http.StatusNoContent {
		t.Fatalf("partial: %d %s", res.Status, res.Body)
	}
	res := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(nil, false),
		Header: map[string]string{"Upload-Concat": "final;" + u + " " + u + " " + u}})
	if res.Status != http.StatusBadRequest || res.errCode() != "partial_repeated" {
		t.Fatalf("final repeating a partial: %d %s", res.Status, res.Body)
	}
	if n := len(rg.gate.admitted); n != 1 {
		t.Fatalf("the gate was asked %d times; the repeated final must be refused before admission", n)
	}
	res = rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(nil, false), Header: map[string]string{"Upload-Concat": "final;" + u}})
	if res.Status != http.StatusCreated || string(rg.readBack(idOf(res.Header.Get("Location")))) != "abc" {
		t.Fatalf("final listing the partial once: %d %s", res.Status, res.Body)
	}
}

// issue 9 item 1: a completion the gate refuses for good is never retried:
// the upload is abandoned (every later request hears why), Reconcile skips
// it, and the sweeper removes its bytes. A completion that fails for a
// passing reason, or an unreadable upload, never makes Reconcile fail.
func TestRefusedCompletionsAreAbandonedAndReconcileNeverFailsForOne(t *testing.T) {
	rg := newRig(t)
	rg.gate.setCompleteErr(&Rejection{Status: http.StatusGone, Code: "upload_replaced", Message: "a newer upload replaced this one"})
	data := randBytes(t, 1000)
	refused := rg.create(len(data), fileMeta(data, true), nil)
	if res := rg.patch(refused, 0, data); res.Status != http.StatusGone || res.errCode() != "upload_replaced" {
		t.Fatalf("PATCH whose completion is refused: %d %s", res.Status, res.Body)
	}
	if res := rg.do(tusReq{Method: "HEAD", URL: refused, Token: testToken}); res.Status != http.StatusGone {
		t.Fatalf("HEAD of an abandoned upload: %d", res.Status)
	}
	rg.gate.setCompleteErr(errors.New("database is down"))
	passing := rg.create(len(data), fileMeta(data, true), nil)
	if res := rg.patch(passing, 0, data); res.Status != http.StatusInternalServerError {
		t.Fatalf("PATCH whose completion fails: %d %s", res.Status, res.Body)
	}
	broken := rg.create(len(data), fileMeta(data, true), nil)
	if err := os.WriteFile(filepath.Join(rg.dir, idOf(broken)+".info"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rg.ing.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile with the database still down: %v", err)
	}
	rg.gate.setCompleteErr(nil)
	if err := rg.ing.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	cs := rg.gate.completions()
	if len(cs) != 1 || cs[0].U.ID != idOf(passing) {
		t.Fatalf("completions %+v, want only the one that failed for a passing reason", cs)
	}
	if _, err := rg.ing.Cleanup(context.Background(), -time.Hour); err != nil {
		t.Logf("Cleanup: %v", err) // the unreadable record is reported, not fatal
	}
	if _, err := os.Stat(filepath.Join(rg.dir, idOf(refused)+".bin")); !os.IsNotExist(err) {
		t.Fatalf("the abandoned upload's bytes outlived the sweep: %v", err)
	}
	if _, err := rg.ing.Open(context.Background(), idOf(passing)); err != nil {
		t.Fatalf("the completed upload: %v", err)
	}
}
