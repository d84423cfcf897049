package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// askedPast is a request body that reports when it is first asked for a byte
// beyond the first mark bytes.
type askedPast struct {
	r     io.Reader
	read  int64
	mark  int64
	asked chan struct{}
	once  sync.Once
}

func (a *askedPast) Read(p []byte) (int, error) {
	if a.read >= a.mark {
		a.once.Do(func() { close(a.asked) })
	}
	n, err := a.r.Read(p)
	a.read += int64(n)
	return n, err
}

// While the disk holds a write (a cache flush holds every write for as long as
// the device takes to empty its cache), the body is still read and hashed:
// up to writeQueue buffers wait for the disk, hashed, instead of the sender
// waiting behind the disk.
func TestTheBodyIsReadAndHashedWhileTheDiskHoldsAWrite(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, (writeQueue+4)*bufSize)
	rand.Read(data)
	ctx := context.Background()
	up, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	// Asked past writeQueue+1 buffers while the first is still held: the reader got that far
	// only because the hasher took each buffer and queued it for the writer.
	src := &askedPast{r: bytes.NewReader(data), mark: (writeQueue + 1) * bufSize, asked: make(chan struct{})}
	var first sync.Once
	readAhead := true
	beforeWrite = func() {
		first.Do(func() {
			select {
			case <-src.asked:
			case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
				readAhead = false
			}
		})
	}
	t.Cleanup(func() { beforeWrite = func() {} })

	n, err := up.WriteChunk(ctx, 0, src)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteChunk: %d, %v", n, err)
	}
	if !readAhead {
		t.Fatalf("while the first buffer was held, the body was not read past %d bytes", src.mark)
	}
	id := up.(*upload).id()
	// Hashed first and written after, every buffer still lands in order.
	if got, err := os.ReadFile(s.path(id, ".bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data file differs from what was sent (%d bytes, %v)", len(got), err)
	}
	if sum, err := s.SHA256(id); err != nil || !bytes.Equal(sum, sha256Of(data)) {
		t.Fatalf("digest %x, %v; want the data's", sum, err)
	}
	if st := s.Stats(); st.GapBytesHashed != 0 {
		t.Errorf("%d bytes hashed again from disk; the saved state should cover every written byte", st.GapBytesHashed)
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// Memory a PATCH takes does not grow with its size: the pipeline reuses a
// few pooled buffers, whatever the number of bytes that pass through it.
func TestAPatchAllocatesTheSameWhateverItsSize(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, bufSize)
	rand.Read(block)
	ctx := context.Background()
	patch := func(size int64) uint64 {
		up, err := s.NewUpload(ctx, handler.FileInfo{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if n, err := up.WriteChunk(ctx, 0, io.LimitReader(repeat(block), size)); err != nil || n != size {
			t.Fatalf("WriteChunk: %d, %v", n, err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	patch(8 << 20) // fills the buffer pool
	small, large := patch(8<<20), patch(128<<20)
	// The pool may be emptied by a collection mid-way; a few fresh buffers are
	// allowed for that, one per MiB received is not.
	if large > small+8*bufSize {
		t.Errorf("a 128 MiB PATCH allocated %d bytes, an 8 MiB one %d: memory grows with the bytes received", large, small)
	}
}

type repeatReader struct{ b []byte }

func (r repeatReader) Read(p []byte) (int, error) { return copy(p, r.b), nil }

func repeat(b []byte) io.Reader { return repeatReader{b} }
