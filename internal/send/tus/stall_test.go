package tus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send/tus"
)

// TestAPatchTheServerStopsReadingIsDroppedAndResumed: a server that takes a
// PATCH's connection and then reads nothing (a stalled proxy, a wedged
// server) keeps its TCP window shut, and TCP alone would wait forever. The
// client drops the connection once a write made no progress for WriteIdle,
// asks the real tusd behind for its offset, and sends the rest.
func TestAPatchTheServerStopsReadingIsDroppedAndResumed(t *testing.T) {
	defer func(old time.Duration) { tus.WriteIdle = old }(tus.WriteIdle)
	tus.WriteIdle = 500 * time.Millisecond
	for _, zeroCopy := range []bool{false, true} {
		t.Run(map[bool]string{false: "read body", true: "sendfile body"}[zeroCopy], func(t *testing.T) {
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			var patches atomic.Int32
			endpoint, dir := stockTusdBehind(t, func(tusd http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPatch && patches.Add(1) == 1 {
						c, _, err := http.NewResponseController(w).Hijack()
						if err != nil {
							t.Error(err)
							return
						}
						go func() { <-release; c.Close() }()
						return
					}
					tusd.ServeHTTP(w, r)
				})
			})

			// Far more than the socket buffers on both sides take in, so the
			// writer meets the shut window.
			data := make([]byte, 48<<20)
			if _, err := rand.Read(data); err != nil {
				t.Fatal(err)
			}
			f := sourceFile(t, data)
			c := &tus.Client{HTTP: &http.Client{Transport: tus.NewTransport(2)}, ZeroCopy: zeroCopy, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
			// Far beyond WriteIdle and the retries: only a client that waits
			// on the stalled connection forever reaches it.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			u, err := c.Create(ctx, endpoint, int64(len(data)), tus.CreateOpts{})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Upload(ctx, u, f, 0, int64(len(data)), -1, nil); err != nil {
				t.Fatalf("upload through a stalled PATCH: %v", err)
			}
			if n := patches.Load(); n < 2 {
				t.Fatalf("%d PATCHes reached the server; the stalled one must have been followed by another", n)
			}
			got, err := os.ReadFile(filepath.Join(dir, filepath.Base(u)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the stored upload differs from the file (err %v)", err)
			}
		})
	}
}
