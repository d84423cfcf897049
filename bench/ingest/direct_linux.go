package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// copyDirect copies src to out the way ferry serve stores an upload: 1 MiB O_DIRECT writes from
// a 2 MiB-aligned buffer marked for huge pages, then fsync. A tail shorter than a block goes
// through the page cache. The bench's disk-alone row.
func copyDirect(src, out string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_DIRECT, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	const huge, size = 2 << 20, 1 << 20
	m, err := unix.Mmap(-1, 0, 2*huge, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(m)
	off := 0
	if r := int(uintptrOfBuf(m) & (huge - 1)); r != 0 {
		off = huge - r
	}
	buf := m[off : off+size]
	_ = unix.Madvise(m[off:off+huge], unix.MADV_HUGEPAGE)
	var pos int64
	for {
		n, rerr := io.ReadFull(in, buf)
		aligned := n &^ 4095
		if aligned > 0 {
			if _, err := f.WriteAt(buf[:aligned], pos); err != nil {
				return fmt.Errorf("direct write at %d: %w", pos, err)
			}
			pos += int64(aligned)
		}
		if aligned < n { // the unaligned tail, once, through the page cache
			g, err := os.OpenFile(out, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, werr := g.WriteAt(buf[aligned:n], pos)
			if cerr := g.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return werr
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return f.Sync()
}

func uintptrOfBuf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
