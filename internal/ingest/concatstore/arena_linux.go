package concatstore

import "golang.org/x/sys/unix"

const hugePage = 2 << 20

// mapBuffers maps n bytes of anonymous memory starting on a huge-page boundary and asks for
// transparent huge pages there. The hint is refused where they are turned off, and the buffers
// are then ordinary pages, which work the same, only slower. Should the mapping fail, the arena
// falls back to the Go heap (nil).
func mapBuffers(n int) (mapping, mem []byte) {
	m, err := unix.Mmap(-1, 0, n+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil
	}
	off := 0
	if r := int(uintptrOf(m) & (hugePage - 1)); r != 0 {
		off = hugePage - r
	}
	mem = m[off : off+n : off+n]
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	return m, mem
}

func unmapBuffers(m []byte) { _ = unix.Munmap(m) }
