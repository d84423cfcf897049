package tus

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"path/filepath"
	"testing"
)

type freshDigest struct{}

func (freshDigest) At(context.Context, int64) (hash.Hash, error) { return sha256.New(), nil }
func (freshDigest) Checkpoint(int64, hash.Hash)                  {}

// The sender runs on one core in production: a body's cost must not grow with
// allocations per chunk, only with the bytes it reads, hashes and writes.
func TestHashedBodyAllocatesNothingPerChunk(t *testing.T) {
	const size = 32 << 20 // 32 chunks
	path := filepath.Join(t.TempDir(), "src")
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := sha256.Sum256(b)
	var body *hashBody
	allocs := testing.AllocsPerRun(5, func() {
		body = &hashBody{f: f, n: size, h: sha256.New(), d: freshDigest{}, nextCP: 1 << 62, progress: func(int64) {}}
		if _, err := body.WriteTo(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
	if got := body.h.Sum(nil); string(got) != string(want[:]) {
		t.Fatalf("the body hashed something else than the file")
	}
	if allocs > 8 {
		t.Errorf("sending %d chunks allocated %.0f times, want a handful for the whole body", size/bufSize, allocs)
	}
}
