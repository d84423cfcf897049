package transfer

import (
	"bytes"
	"fmt"
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

// Size is the file's size when it was opened.
func (f *FileSource) Size() int64 { return f.size }

// BytesSource is a Source over memory (tests, small payloads).
type BytesSource struct{ *bytes.Reader }

// Bytes returns b as a Source.
func Bytes(b []byte) BytesSource { return BytesSource{bytes.NewReader(b)} }
