package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/tus/tusd/v2/pkg/handler"
)

// Uploads resumed at offsets that are not block-aligned, in chunks of odd
// sizes and short reads, must land byte for byte and hash exactly, whether
// aligned runs bypass the page cache (O_DIRECT) or not.
func TestWriteChunkAtUnalignedOffsetsDirectAndBuffered(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := "buffered"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			s, err := New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s.noDirect.Store(!direct)
			data := make([]byte, 3*bufSize+5*align+777)
			rand.Read(data)
			ctx := context.Background()
			u, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			// PATCH bodies ending mid-block, one of them a single byte, one
			// ending exactly on a block, the last one the long rest.
			cuts := []int{1, 1000, align + 3, 2*align - 1 + 3, bufSize + 12345, bufSize + 2*align + 12345}
			off := 0
			for i, end := range append(cuts, len(data)) {
				var src io.Reader = bytes.NewReader(data[off:end])
				if i%2 == 1 {
					src = iotest.HalfReader(src) // short reads
				}
				n, err := u.WriteChunk(ctx, int64(off), src)
				if err != nil {
					t.Fatalf("chunk %d at %d: %v", i, off, err)
				}
				if int(n) != end-off {
					t.Fatalf("chunk %d: wrote %d of %d", i, n, end-off)
				}
				off = end
				if u, err = s.GetUpload(ctx, u.(*upload).id()); err != nil { // as a new PATCH would
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(s.path(u.(*upload).id(), ".bin"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("stored bytes differ from the sent ones")
			}
			sum, err := s.SHA256(u.(*upload).id())
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); !bytes.Equal(sum, want[:]) {
				t.Errorf("hash on arrival %x, want %x", sum, want)
			}
			if direct && s.noDirect.Load() {
				t.Logf("O_DIRECT is refused by this file system; only the buffered path ran")
			}
		})
	}
}

func TestAlignedBufStartsOnABlock(t *testing.T) {
	for range 20 {
		b := alignedBuf(bufSize)
		if len(b) != bufSize || cap(b) != bufSize {
			t.Fatalf("len %d cap %d", len(b), cap(b))
		}
		if p := uintptrOf(b); p%align != 0 {
			t.Fatalf("buffer at %#x is not %d-aligned", p, align)
		}
	}
}

// A direct write the kernel refuses (EINVAL: here a buffer that is not
// block-aligned in memory; elsewhere a file system with other alignment
// rules) falls back to the page cache for good, and the bytes land intact.
func TestDirectWriteRefusedFallsBackToThePageCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var noDirect atomic.Bool
	w, err := openDataWriter(path, 0, &noDirect)
	if err != nil {
		t.Fatal(err)
	}
	if !w.isDirect() {
		t.Skip("this file system refuses O_DIRECT at open: only the buffered path exists here")
	}
	data := alignedBuf(4*align + 1)[1:] // aligned length, misaligned address
	rand.Read(data)
	if n, err := w.write(data); err != nil || n != len(data) {
		t.Fatalf("write = %d, %v", n, err)
	}
	if w.isDirect() || !noDirect.Load() {
		t.Fatalf("direct I/O still in use after the kernel refused a write")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ (err %v)", err)
	}
}
