package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// notFinishedUntil is a tus handler whose concatenations are refused as
// unfinished for the first n calls, then created.
func notFinishedUntil(n int32, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"upload_not_finished","message":"one of the partial uploads is not finished"}}`))
			return
		}
		w.Header().Set("Location", "http://example.com/uploads/final")
		w.WriteHeader(http.StatusCreated)
	})
}

func TestAConcatenationWaitsForPartialsStillArriving(t *testing.T) {
	var calls atomic.Int32
	s := &Server{uploads: notFinishedUntil(3, &calls)}
	r := httptest.NewRequest("POST", "/p/x/packages/y/finalize", nil)
	if err := s.concatWhenReady(r, "tok", http.Header{"Upload-Concat": {"final;/uploads/a"}}); err != nil {
		t.Fatalf("concatWhenReady: %v", err)
	}
	if calls.Load() != 4 {
		t.Errorf("%d tries, want 4 (three refused as unfinished, then created)", calls.Load())
	}
}

func TestNoMoreThanMaxConcatWaitersWait(t *testing.T) {
	for range maxConcatWaiters {
		concatWaiters <- struct{}{}
	}
	t.Cleanup(func() {
		for range maxConcatWaiters {
			<-concatWaiters
		}
	})
	var calls atomic.Int32
	s := &Server{uploads: notFinishedUntil(1000, &calls)}
	r := httptest.NewRequest("POST", "/p/x/packages/y/finalize", nil)
	start := time.Now()
	err := s.concatWhenReady(r, "tok", http.Header{"Upload-Concat": {"final;/uploads/a"}})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "upload_not_finished" {
		t.Fatalf("err %v, want the tus refusal at once", err)
	}
	if calls.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("%d tries in %v: a finalize past the bound waited", calls.Load(), time.Since(start))
	}
}
