package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"
)

// makeFinal stores parts as partial uploads of a concatenated final and returns the final's ID.
func makeFinal(t *testing.T, s *Store, parts [][]byte) string {
	t.Helper()
	ctx := context.Background()
	var ups []handler.Upload
	var size int64
	for _, p := range parts {
		u, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(p)), IsPartial: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.WriteChunk(ctx, 0, bytes.NewReader(p)); err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
		size += int64(len(p))
	}
	f, err := s.NewUpload(ctx, handler.FileInfo{Size: size, IsFinal: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AsConcatableUpload(f).ConcatUploads(ctx, ups); err != nil {
		t.Fatal(err)
	}
	info, _ := f.GetInfo(ctx)
	return info.ID
}

func TestBlobReadsPartsAsOneStream(t *testing.T) {
	rnd := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	cases := []struct {
		name  string
		sizes []int
	}{
		{"one part", []int{1000}},
		{"equal parts", []int{300, 300, 300, 300}},
		{"uneven parts", []int{1, 777, 64, 2049}},
		{"empty part in the middle", []int{100, 0, 100}},
		{"empty part at the end", []int{100, 100, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var parts [][]byte
			var whole []byte
			for _, n := range tc.sizes {
				p := rnd(n)
				parts = append(parts, p)
				whole = append(whole, p...)
			}
			b, err := s.Open(makeFinal(t, s, parts))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Size() != int64(len(whole)) {
				t.Fatalf("Size = %d, want %d", b.Size(), len(whole))
			}
			// Every window, including ones straddling part boundaries and running past the end.
			for off := 0; off < len(whole); off += 37 {
				for _, n := range []int{1, 99, 301, len(whole)} {
					buf := make([]byte, n)
					got, err := b.ReadAt(buf, int64(off))
					want := whole[off:min(off+n, len(whole))]
					if got != len(want) || !bytes.Equal(buf[:got], want) {
						t.Fatalf("ReadAt(%d, %d) = %d bytes, want %d equal bytes", n, off, got, len(want))
					}
					if (off+n > len(whole)) != errors.Is(err, io.EOF) {
						t.Fatalf("ReadAt(%d, %d) err = %v", n, off, err)
					}
				}
			}
			got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			if err != nil || !bytes.Equal(got, whole) {
				t.Fatalf("sequential read: %v, equal=%v", err, bytes.Equal(got, whole))
			}
		})
	}
}

func TestUnknownOrMalformedIDsNeverReachTheDisk(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../etc/passwd", "0123456789abcdef0123456789abcdef/../x", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef"} {
		if _, err := s.GetUpload(context.Background(), id); !errors.Is(err, handler.ErrNotFound) {
			t.Errorf("GetUpload(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// TestOpenRangeOpensTheOnePartHoldingARange: a range inside one part file
// comes back as that file positioned at the range's offset in it (for
// sendfile); a range across parts or out of bounds is refused, and reading
// every range either way gives the blob's bytes.
func TestOpenRangeOpensTheOnePartHoldingARange(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{100, 0, 250, 50} // parts start at 0, 100, 100, 350
	var parts [][]byte
	var whole []byte
	for _, n := range sizes {
		p := make([]byte, n)
		_, _ = rand.Read(p)
		parts = append(parts, p)
		whole = append(whole, p...)
	}
	opened, err := s.Open(makeFinal(t, s, parts))
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	b := opened.(*Blob)
	cases := []struct {
		name    string
		off, n  int64
		wantPos int64 // -1: refused
	}{
		{"start of the first part", 0, 10, 0},
		{"the whole first part", 0, 100, 0},
		{"start of the part after an empty one", 100, 250, 0},
		{"inside the third part", 120, 30, 20},
		{"end of the third part", 340, 10, 240},
		{"across the first boundary", 90, 20, -1},
		{"the whole last part", 350, 50, 0},
		{"across the last boundary", 349, 2, -1},
		{"the whole blob", 0, 400, -1},
		{"past the end", 395, 10, -1},
		{"negative offset", -1, 5, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, pos, err := b.OpenRange(tc.off, tc.n)
			if tc.wantPos < 0 {
				if err == nil {
					f.Close()
					t.Fatalf("OpenRange(%d, %d) opened a file, want it refused", tc.off, tc.n)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenRange(%d, %d): %v", tc.off, tc.n, err)
			}
			defer f.Close()
			got := make([]byte, tc.n)
			if _, err := io.ReadFull(f, got); err != nil || pos != tc.wantPos || !bytes.Equal(got, whole[tc.off:tc.off+tc.n]) {
				t.Fatalf("OpenRange(%d, %d): pos %d (want %d), read err %v, bytes equal %v", tc.off, tc.n, pos, tc.wantPos, err, bytes.Equal(got, whole[tc.off:tc.off+tc.n]))
			}
		})
	}
	if _, _, err := b.OpenRange(90, 20); !errors.Is(err, ErrRangeSpansParts) {
		t.Fatalf("a range across parts: %v, want ErrRangeSpansParts", err)
	}
	// What a sender does: each range from its own descriptor when one part
	// holds it, through ReadAt otherwise; the concatenation is the blob.
	var sent []byte
	zeroCopy := 0
	for off := int64(0); off < b.Size(); off += 30 {
		n := min(30, b.Size()-off)
		buf := make([]byte, n)
		if f, _, err := b.OpenRange(off, n); err == nil {
			_, err = io.ReadFull(f, buf)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			zeroCopy++
		} else if _, err := b.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, buf...)
	}
	if !bytes.Equal(sent, whole) || zeroCopy == 0 || zeroCopy == (len(whole)+29)/30 {
		t.Fatalf("ranges gave equal bytes %v with %d of %d from their own descriptor (want some, not all)", bytes.Equal(sent, whole), zeroCopy, (len(whole)+29)/30)
	}
}

// A final that lists a partial twice would hold its bytes twice while every
// limit counted them once (issue 9 item 3): the store refuses it too.
func TestConcatRefusesARepeatedPartial(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.NewUpload(ctx, handler.FileInfo{Size: 3, IsPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteChunk(ctx, 0, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	f, err := s.NewUpload(ctx, handler.FileInfo{Size: 6, IsFinal: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AsConcatableUpload(f).ConcatUploads(ctx, []handler.Upload{p, p}); !errors.Is(err, ErrPartialRepeated) {
		t.Fatalf("ConcatUploads(p, p) = %v, want ErrPartialRepeated", err)
	}
}

func TestAbandonedUploadsSayWhyUntilRemoved(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.NewUpload(ctx, handler.FileInfo{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := u.GetInfo(ctx)
	if _, ok := s.Abandoned(info.ID); ok {
		t.Fatal("a fresh upload reads as abandoned")
	}
	why := Abandonment{Code: "upload_replaced", Message: "replaced"}
	if err := s.Abandon(info.ID, why); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Abandoned(info.ID); !ok || got != why {
		t.Fatalf("Abandoned = %+v, %v", got, ok)
	}
	if err := s.Remove(info.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Abandoned(info.ID); ok {
		t.Fatal("Remove left the abandonment behind")
	}
	if err := s.Abandon(NewID(), why); err != nil {
		t.Fatalf("abandoning a missing upload: %v", err)
	}
}
