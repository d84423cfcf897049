package pglocker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/pglocker"
	"github.com/ferryhq/ferry/internal/testbed"
)

// replicas opens n Lockers on one fresh database, as n ferry processes would.
func replicas(t *testing.T, n int) []*pglocker.Locker {
	t.Helper()
	dsn := testbed.Postgres(t).CreateDatabase(t)
	var out []*pglocker.Locker
	for range n {
		l, err := pglocker.New(t.Context(), dsn, pglocker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		out = append(out, l)
	}
	return out
}

func lock(t *testing.T, l *pglocker.Locker, id string, within time.Duration, onRelease func()) (handler.Lock, error) {
	t.Helper()
	lk, err := l.NewLock(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	return lk, lk.Lock(ctx, onRelease)
}

// TestAnUploadIsLockedAcrossReplicasAndTheHolderIsAskedToRelease: while
// replica A holds an upload's lock, replica B cannot take it (B's attempt
// ends with tusd's ErrLockTimeout) and A is asked to release it, as tusd
// asks within one process; once A unlocks, B takes it. Another upload's
// lock is free all along.
func TestAnUploadIsLockedAcrossReplicasAndTheHolderIsAskedToRelease(t *testing.T) {
	rs := replicas(t, 2)
	a, b := rs[0], rs[1]
	asked := make(chan struct{}, 100)
	held, err := lock(t, a, "upload-1", 10*time.Second, func() { asked <- struct{}{} })
	if err != nil {
		t.Fatalf("A locking a free upload: %v", err)
	}
	if _, err := lock(t, b, "upload-1", 500*time.Millisecond, func() {}); !errors.Is(err, handler.ErrLockTimeout) {
		t.Fatalf("B locking the upload A holds: %v, want ErrLockTimeout", err)
	}
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("A was never asked to release the upload B waited for")
	}
	other, err := lock(t, b, "upload-2", 10*time.Second, func() {})
	if err != nil {
		t.Fatalf("B locking another upload: %v", err)
	}
	if err := other.Unlock(); err != nil {
		t.Fatal(err)
	}

	// B waits; A lets go when asked, as tusd's handler does by ending its
	// request: then B has it.
	for len(asked) > 0 {
		<-asked
	}
	var released atomic.Bool
	go func() {
		<-asked
		released.Store(true)
		_ = held.Unlock()
	}()
	got, err := lock(t, b, "upload-1", 30*time.Second, func() {})
	if err != nil {
		t.Fatalf("B locking the upload after A was asked to release it: %v", err)
	}
	if !released.Load() {
		t.Fatal("B got the lock while A still held it")
	}
	if err := got.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestALockDiesWithItsReplica: a replica that stops (a crash closes its
// connections) holds nothing; another takes the upload at once.
func TestALockDiesWithItsReplica(t *testing.T) {
	rs := replicas(t, 2)
	if _, err := lock(t, rs[0], "upload-1", 10*time.Second, func() {}); err != nil {
		t.Fatal(err)
	}
	rs[0].Close()
	lk, err := lock(t, rs[1], "upload-1", 30*time.Second, func() {})
	if err != nil {
		t.Fatalf("locking an upload whose holder is gone: %v", err)
	}
	if err := lk.Unlock(); err != nil {
		t.Fatal(err)
	}
}
