package transfer

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// FileSource is a Source over an open file.
type FileSource struct {
	*os.File
	size int64
}

// OpenFile opens path as a Source. Close it when done.
func OpenFile(path string) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open transfer source: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat transfer source %s: %w", path, err)
	}
	return &FileSource{File: f, size: st.Size()}, nil
}

// OpenRange opens the file again, positioned at off, for a zero-copy send of
// one part (see RangeOpener); the file holds every range at its own offset.
func (f *FileSource) OpenRange(off, n int64) (*os.File, int64, error) {
	if off < 0 || n < 0 || off+n > f.size {
		return nil, 0, fmt.Errorf("open range [%d, %d) of %s: outside its %d bytes", off, off+n, f.Name(), f.size)
	}
	g, err := reopen(f.File, off)
	return g, off, err
}

// reopen opens f's path again on a new descriptor positioned at off (a
// descriptor's offset is shared, so each sendfile needs its own). It refuses
// a path that now names another file.
func reopen(f *os.File, off int64) (*os.File, error) {
	g, err := os.Open(f.Name())
	if err != nil {
		return nil, err
	}
	a, errA := f.Stat()
	b, errB := g.Stat()
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		g.Close()
		return nil, fmt.Errorf("reopen %s: no longer the same file", f.Name())
	}
	if _, err := g.Seek(off, io.SeekStart); err != nil {
		g.Close()
		return nil, fmt.Errorf("reopen %s at %d: %w", f.Name(), off, err)
	}
	return g, nil
}

// Size is the file's size when it was opened.
func (f *FileSource) Size() int64 { return f.size }

// BytesSource is a Source over memory (tests, small payloads).
type BytesSource struct{ *bytes.Reader }

// Bytes returns b as a Source.
func Bytes(b []byte) BytesSource { return BytesSource{bytes.NewReader(b)} }
