package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/testbed"
)

// countingReader counts the bytes a store took from it.
type countingReader struct {
	r    io.Reader
	read int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

// A write that fails while the next buffer is already read (the disk filled
// up) is that PATCH's answer; the offset is what reached the file, the hash
// state covers exactly those bytes, and the body is not read much further.
func TestAWriteFailureBehindTheReaderEndsThePatchWithATruthfulOffset(t *testing.T) {
	for _, d := range []struct {
		name  string
		mount func(testing.TB, int64) string
	}{
		{"tmpfs", testbed.SmallDisk},    // page-cache writes
		{"ext4", testbed.SmallExt4Disk}, // O_DIRECT writes
	} {
		t.Run(d.name, func(t *testing.T) {
			s, err := New(filepath.Join(d.mount(t, 16<<20), "uploads"))
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 64<<20)
			rand.Read(data)
			ctx := context.Background()
			up, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			id := up.(*upload).id()
			src := &countingReader{r: bytes.NewReader(data)}
			n, err := up.WriteChunk(ctx, 0, src)
			if !IsNoSpace(err) {
				t.Fatalf("WriteChunk on a full disk: %d, %v; want a no-space error", n, err)
			}
			if n <= 0 || n >= int64(len(data)) {
				t.Fatalf("WriteChunk wrote %d bytes; want some, not all", n)
			}
			// Bytes read but never written are the buffers between the reader and the writer: one being
			// read, one waiting for the hasher, one being hashed, the writer's queue and one being written.
			if extra := src.read - n; extra > (writeQueue+4)*bufSize {
				t.Errorf("the body was read %d bytes past the last written byte; want at most %d", extra, (writeQueue+4)*bufSize)
			}
			info, err := s.Info(id)
			if err != nil || info.Offset != n {
				t.Fatalf("offset after the failed PATCH: %d, %v; want %d", info.Offset, err, n)
			}
			got, err := os.ReadFile(s.path(id, ".bin"))
			if err != nil || !bytes.Equal(got, data[:n]) {
				t.Fatalf("data file holds %d bytes (%v), not the first %d sent", len(got), err, n)
			}
			h, err := s.resumeHash(id, n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h.Sum(nil), sha256Of(data[:n])) || s.Stats().GapBytesHashed != 0 {
				t.Errorf("hash state does not cover exactly the %d written bytes (gap hashed: %d)", n, s.Stats().GapBytesHashed)
			}
		})
	}
}
