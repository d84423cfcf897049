package concatstore

import (
	"testing"
	"time"
)

func TestBuffersAreAlignedDistinctAndReused(t *testing.T) {
	const n = 8
	got := make([]*[]byte, n)
	seen := map[uintptr]bool{}
	for i := range got {
		got[i] = getBuf()
		b := *got[i]
		if len(b) != bufSize || cap(b) != bufSize {
			t.Fatalf("buffer %d: len %d cap %d, want %d", i, len(b), cap(b), bufSize)
		}
		p := uintptrOf(b)
		if p%align != 0 {
			t.Fatalf("buffer %d starts at %#x, not on a %d-byte boundary", i, p, align)
		}
		for q := range seen {
			if p < q+bufSize && q < p+bufSize {
				t.Fatalf("buffer %d at %#x overlaps the one at %#x", i, p, q)
			}
		}
		seen[p] = true
		b[0], b[bufSize-1] = byte(i), byte(i) // the memory is writable end to end
	}
	held := bufs.resident()
	for _, b := range got {
		putBuf(b)
	}
	for range n {
		b := getBuf()
		if !seen[uintptrOf(*b)] {
			t.Errorf("a buffer at %#x was cut while %d were free", uintptrOf(*b), n)
		}
		defer putBuf(b)
	}
	if r := bufs.resident(); r != held {
		t.Errorf("%d buffers resident after reuse, want the %d already cut", r, held)
	}
}

func TestAnIdleArenaGivesItsMemoryBack(t *testing.T) {
	const idle = 20 * time.Millisecond
	old := bufs.setIdle(idle)
	t.Cleanup(func() { bufs.setIdle(old) })

	b := getBuf()
	(*b)[0] = 1
	if bufs.resident() == 0 {
		t.Fatal("no buffer resident while one is in use")
	}
	time.Sleep(3 * idle)
	if bufs.resident() == 0 {
		t.Fatal("the arena was released while a buffer was in use")
	}
	putBuf(b)
	for deadline := time.Now().Add(10 * time.Second); bufs.resident() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d buffers still resident long after the last one came back", bufs.resident())
		}
	}
	// And it serves again after a release.
	b = getBuf()
	defer putBuf(b)
	(*b)[bufSize-1] = 1
	if uintptrOf(*b)%align != 0 {
		t.Fatalf("buffer after a release starts at %#x, not aligned", uintptrOf(*b))
	}
}
