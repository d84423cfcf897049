package send

import (
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

// hashRange returns the lowercase hex SHA-256 of bytes [off, off+n) of the file at path.
func hashRange(path string, off, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), *buf)
	if err != nil {
		return "", fmt.Errorf("hash %s [%d,+%d): %w", path, off, n, err)
	}
	if got != n {
		return "", fmt.Errorf("hash %s: file shrank while reading (%d of %d bytes at %d)", path, got, n, off)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
