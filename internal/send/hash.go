package send

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// hashBufs recycles read buffers: a package of many small files would
// otherwise allocate one per file.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashRange returns the lowercase hex SHA-256 of bytes [off, off+n) of the
// file at path, giving up when ctx ends (a whole-file pass of a huge file
// must not outlive a cancelled send).
func hashRange(ctx context.Context, path string, off, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	got, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, off, n)}, *buf)
	if err != nil {
		return "", fmt.Errorf("hash %s [%d,+%d): %w", path, off, n, err)
	}
	if got != n {
		return "", fmt.Errorf("hash %s: file shrank while reading (%d of %d bytes at %d)", path, got, n, off)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
