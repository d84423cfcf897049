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
