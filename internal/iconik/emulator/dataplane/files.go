package dataplane

import (
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// copyBufs lends 1 MiB buffers: bigger than io.Copy's 32 KiB so a hashed copy makes fewer syscalls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// receive streams body into a new temporary file in dir, feeding every byte to hs on the way, and
// returns the temporary file's path and the byte count. The caller renames or removes it.
// Bytes go straight to disk: nothing of a part is held in memory beyond one copy buffer.
func receive(dir string, body io.Reader, hs ...hash.Hash) (string, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("create staging directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".recv-*")
	if err != nil {
		return "", 0, fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	var w io.Writer = f
	if len(hs) > 0 {
		ws := []io.Writer{f}
		for _, h := range hs {
			ws = append(ws, h)
		}
		w = io.MultiWriter(ws...)
	}
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(w, body, *bp)
	copyBufs.Put(bp)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", n, fmt.Errorf("receive body into %s: %w", f.Name(), err)
	}
	return f.Name(), n, nil
}

// publish moves a finished temporary file to dst, creating dst's parent directories.
func publish(tmp, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create directory for %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("publish %s: %w", dst, err)
	}
	return nil
}

// span is a byte range of a file that becomes part of an assembled object.
type span struct {
	path      string
	off, size int64 // size < 0: the whole file from off
}

// assemble concatenates spans into a temporary file in tmpDir and publishes it as dst.
// Cost: every byte is copied once more (S3 and B2 completion, Azure block commit); on Linux
// io.Copy between files uses copy_file_range, so the copy stays in the kernel, but it still
// reads and writes the whole object. Real providers do the same server-side; a zero-copy
// variant (keeping parts and serving them as one object) is not worth it for an emulator.
func assemble(tmpDir, dst string, spans []span) (int64, error) {
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return 0, fmt.Errorf("create staging directory %s: %w", tmpDir, err)
	}
	out, err := os.CreateTemp(tmpDir, ".assemble-*")
	if err != nil {
		return 0, fmt.Errorf("create temporary file in %s: %w", tmpDir, err)
	}
	var total int64
	fail := func(err error) (int64, error) {
		out.Close()
		os.Remove(out.Name())
		return 0, err
	}
	for _, s := range spans {
		in, err := os.Open(s.path)
		if err != nil {
			return fail(fmt.Errorf("open part %s: %w", s.path, err))
		}
		var src io.Reader = in
		if s.off != 0 {
			if _, err := in.Seek(s.off, io.SeekStart); err != nil {
				in.Close()
				return fail(fmt.Errorf("seek part %s: %w", s.path, err))
			}
		}
		if s.size >= 0 {
			// A LimitedReader over an *os.File keeps the copy_file_range fast path.
			src = &io.LimitedReader{R: in, N: s.size}
		}
		n, err := io.Copy(out, src)
		in.Close()
		if err != nil {
			return fail(fmt.Errorf("copy part %s: %w", s.path, err))
		}
		if s.size >= 0 && n != s.size {
			return fail(fmt.Errorf("copy part %s: got %d bytes, want %d", s.path, n, s.size))
		}
		total += n
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return 0, fmt.Errorf("close assembled file %s: %w", out.Name(), err)
	}
	if err := publish(out.Name(), dst); err != nil {
		return 0, err
	}
	return total, nil
}
