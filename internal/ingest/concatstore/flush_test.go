package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/testbed"
)

// Bytes written directly (O_DIRECT, on ext4) are flushed from the device's
// cache while the upload goes on, not all at once by the fsync at its end.
func TestDirectWritesAreFlushedAsTheyGo(t *testing.T) {
	s, err := New(filepath.Join(testbed.SmallExt4Disk(t, 64<<20), "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	old := flushEvery
	flushEvery = 2 * bufSize
	t.Cleanup(func() { flushEvery = old })
	data := make([]byte, 16*bufSize)
	rand.Read(data)
	ctx := context.Background()
	up, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := up.WriteChunk(ctx, 0, bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("WriteChunk: %d, %v", n, err)
	}
	if s.noDirect.Load() {
		t.Fatal("ext4 refused O_DIRECT: the direct path was not tested")
	}
	if s.Stats().Flushes == 0 {
		t.Error("16 MiB written directly with a flush every 2 MiB, and no flush started")
	}
	if err := up.FinishUpload(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.path(up.(*upload).id(), ".bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data file differs from what was sent (%d bytes, %v)", len(got), err)
	}
}

// However many PATCHes arrive while the disk holds their writes, they hold no
// more than maxBufs buffers between them; once the disk moves, every one of
// them finishes (a reader waiting for a buffer never blocks a writer).
func TestPatchesShareABoundedNumberOfBuffers(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const patches = maxBufs/(writeQueue+4) + 2 // more than the budget can queue for
	release := make(chan struct{})
	beforeWrite = func() { <-release }
	t.Cleanup(func() { beforeWrite = func() {} })

	block := make([]byte, bufSize)
	rand.Read(block)
	size := int64(writeQueue+4) * bufSize // what one PATCH can hold while its writes are held
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, patches)
	ids := make([]string, patches)
	for i := range patches {
		up, err := s.NewUpload(ctx, handler.FileInfo{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = up.(*upload).id()
		wg.Go(func() {
			if n, err := up.WriteChunk(ctx, 0, io.LimitReader(repeat(block), size)); err != nil || n != size {
				errs <- err
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); len(bufTokens) < maxBufs; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // a deadlock guard, not a timing assertion
			t.Fatalf("%d buffers taken while every write is held; want the whole budget, %d", len(bufTokens), maxBufs)
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a PATCH did not finish whole: %v", err)
	}
	for _, id := range ids {
		if info, err := s.Info(id); err != nil || info.Offset != size {
			t.Fatalf("upload %s holds %d bytes (%v); want %d", id, info.Offset, err, size)
		}
	}
}
