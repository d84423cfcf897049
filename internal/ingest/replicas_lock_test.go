package ingest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/pglocker"
	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestAPATCHOnAnotherReplicaWaitsForTheOneInFlight: while replica A
// receives a PATCH (its sender has sent 6 MiB and is still sending), a PATCH
// of the same upload at offset 0 reaches replica B. With the PostgreSQL
// locker both replicas use (as ferry serve does on PostgreSQL), B's request
// asks A to let go, A keeps what arrived, and B is told the upload is
// further along (409) instead of writing the same bytes' place a second
// time beside A.
func TestAPATCHOnAnotherReplicaWaitsForTheOneInFlight(t *testing.T) {
	cfg := versityStore(t)
	dsn := testbed.Postgres(t).CreateDatabase(t)
	replica := func() *rig {
		st, err := s3store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		l, err := pglocker.New(t.Context(), dsn, pglocker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		var locker handler.Locker = l
		return newRigIn(t, "", &recGate{}, func(c *Config) {
			c.Store = st
			c.Locker = locker
			c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		})
	}
	a, b := replica(), replica()
	data := randBytes(t, 12<<20)
	url := a.create(len(data), fileMeta(data, true), nil)

	// A's sender: 6 MiB written (read by A's handler), then it waits.
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PATCH", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", "0")
	req.ContentLength = int64(len(data))
	first := make(chan int, 1)
	go func() {
		res, err := a.srv.Client().Do(req)
		if err != nil {
			first <- -1
			return
		}
		res.Body.Close()
		first <- res.StatusCode
	}()
	if _, err := pw.Write(data[:6<<20]); err != nil {
		t.Fatal(err)
	}

	res := b.patch(on(b, url), 0, data)
	pw.CloseWithError(io.ErrUnexpectedEOF) // A's sender gives up; A already let go
	<-first
	if res.Status != http.StatusConflict {
		t.Fatalf("PATCH at offset 0 on replica B while A received the upload: %d %s; want 409 (A's bytes kept, B told the offset)", res.Status, res.Body)
	}
	off := b.offset(on(b, url))
	if off <= 0 || off > 6<<20 {
		t.Fatalf("after the overlap the upload is at %d; want what A received (up to %d)", off, 6<<20)
	}
	if r := b.patch(on(b, url), off, data[off:]); r.Status != http.StatusNoContent {
		t.Fatalf("resuming at %d on B: %d %s", off, r.Status, r.Body)
	}
	if got := b.readBack(idOf(url)); sha(got) != sha(data) {
		t.Fatalf("the upload reads back %d bytes with SHA-256 %s; sent %d with %s", len(got), sha(got), len(data), sha(data))
	}
}
