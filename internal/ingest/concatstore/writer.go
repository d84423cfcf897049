package concatstore

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

// align is the offset, length and memory alignment direct I/O needs: 4 KiB
// covers every logical block size in use (512 B and 4 KiB sectors).
const align = 4096

// dataWriter appends an upload's bytes to its data file. Aligned runs go
// through a second descriptor opened with O_DIRECT when the file system
// allows it: received bytes then go from our buffer straight to the disk
// instead of into the page cache. A media server receives hundreds of GB that
// nobody reads back soon; through the page cache each byte costs a page
// allocation and a later writeback, and those dirty pages are what the fsync
// before completion waits for. Measured on the CI machine writing 2 GiB:
// 0.2 s of kernel CPU with O_DIRECT against 1.4-4.9 s buffered (the spread is
// the cost of fresh pages on a VM). Unaligned heads and tails (a resumed
// PATCH starting mid-block, the last bytes of a file) go through the page
// cache; Linux keeps the two views coherent.
type dataWriter struct {
	buffered *os.File
	direct   *os.File // nil: buffered only
	pos      int64
	noDirect *atomic.Bool // set once O_DIRECT proves unusable here
}

func openDataWriter(path string, pos int64, noDirect *atomic.Bool) (*dataWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	w := &dataWriter{buffered: f, pos: pos, noDirect: noDirect}
	if !noDirect.Load() {
		if d, err := openDirect(path); err == nil {
			w.direct = d
		} else {
			// tmpfs and some network file systems refuse O_DIRECT: write
			// through the page cache there.
			noDirect.Store(true)
		}
	}
	return w, nil
}

// write writes b at the current position. b must start at an aligned address
// (alignedBuf) for the direct path.
func (w *dataWriter) write(b []byte) (int, error) {
	written := 0
	if w.direct != nil && w.pos%align == 0 {
		if m := len(b) &^ (align - 1); m > 0 {
			n, err := w.direct.WriteAt(b[:m], w.pos)
			w.pos += int64(n)
			written += n
			if err != nil && n == 0 && errors.Is(err, errInvalid) {
				// Opened fine but refuses the write (an alignment rule we do
				// not meet): give direct I/O up and write buffered.
				w.noDirect.Store(true)
				w.direct.Close()
				w.direct = nil
			} else if err != nil {
				return written, err
			}
			b = b[n:]
		}
	}
	if len(b) > 0 {
		n, err := w.buffered.WriteAt(b, w.pos)
		w.pos += int64(n)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// isDirect reports whether aligned writes bypass the page cache.
func (w *dataWriter) isDirect() bool { return w.direct != nil }

func (w *dataWriter) Close() error {
	var derr error
	if w.direct != nil {
		derr = w.direct.Close()
	}
	if err := w.buffered.Close(); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("closing direct descriptor: %w", derr)
	}
	return nil
}

// alignedBuf returns n bytes starting at an align boundary. Go gives no
// alignment guarantee for make, so it over-allocates and slices; the slice
// keeps the whole allocation alive.
func alignedBuf(n int) []byte {
	b := make([]byte, n+align)
	off := int(uintptrOf(b) & (align - 1))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n : off+n]
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
