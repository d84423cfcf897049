package web

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func memEntry(path string, data []byte) ZipEntry {
	return ZipEntry{Path: path, Size: int64(len(data)), Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Open: func(context.Context) (io.ReaderAt, io.Closer, error) { return bytes.NewReader(data), nopCloser{}, nil }}
}

func TestWriteZipKeepsTheFolderTreeByteForByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	files := map[string][]byte{
		"top.txt":                  []byte("hello"),
		"Day 1/Cam A/clip 001.mov": randBytes(rng, 3<<20+17),
		"Day 1/Cam B/clip 002.mov": randBytes(rng, 1<<20),
		"Day 2/empty.bin":          {},
		"Día 3/Übersicht/ファイル.wav": randBytes(rng, 4096),
	}
	order := []string{"top.txt", "Day 1/Cam A/clip 001.mov", "Day 1/Cam B/clip 002.mov", "Day 2/empty.bin", "Día 3/Übersicht/ファイル.wav"}
	var entries []ZipEntry
	for _, p := range order {
		entries = append(entries, memEntry(p, files[p]))
	}
	var out bytes.Buffer
	if err := WriteZip(context.Background(), &out, entries); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatalf("reading the streamed zip: %v", err)
	}
	if len(zr.File) != len(files) {
		t.Fatalf("zip has %d entries, want %d", len(zr.File), len(files))
	}
	for _, f := range zr.File {
		want, ok := files[f.Name]
		if !ok {
			t.Fatalf("unexpected entry %q", f.Name)
		}
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want Store (no recompression)", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v (CRC or size mismatch)", f.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", f.Name)
		}
	}
}

func TestWriteZipStopsOnAShortBlob(t *testing.T) {
	e := memEntry("a.bin", []byte("abc"))
	e.Size = 10
	if err := WriteZip(context.Background(), io.Discard, []ZipEntry{e}); err == nil {
		t.Fatal("a blob shorter than its recorded size produced a zip")
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}
