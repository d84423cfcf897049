package send

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/internal/send/sendtest"
	"github.com/ferryhq/ferry/internal/send/tus"
)

type cancelOnBytes struct {
	nopProgress
	mu     sync.Mutex
	n      int64
	cancel context.CancelFunc
}

func (c *cancelOnBytes) Add(_ string, d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n -= d; c.n <= 0 {
		c.cancel()
	}
}

func TestRerunDoesNotRehashWhatTheStateCaches(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	for name, size := range map[string]int{"a.bin": 3 << 20, "b.bin": 3 << 20, "c.bin": 3 << 20} {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var hashed atomic.Int64
	hashRangeFn = func(path string, off, n int64) (string, error) {
		hashed.Add(1)
		return hashRange(path, off, n)
	}
	hashSplitFn = func(ctx context.Context, path string, size int64, parts []Part, onPart func(int, string)) (string, []string, error) {
		hashed.Add(1)
		return hashSplit(ctx, path, size, parts, onPart)
	}
	t.Cleanup(func() { hashRangeFn, hashSplitFn = hashRange, hashSplit })
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	stateDir := t.TempDir()
	opts := Options{Target: target, Paths: []string{dir}, Streams: 2, Large: 1 << 20, StateDir: stateDir}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelOnBytes{n: 2 << 20, cancel: cancel}
	if _, err := Send(ctx, opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first run: %v, want ErrInterrupted", err)
	}
	entries, _ := os.ReadDir(stateDir)
	if len(entries) != 1 {
		t.Fatalf("state files = %d, want 1", len(entries))
	}
	b, err := os.ReadFile(filepath.Join(stateDir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	// Each file is split in two and hashed in one pass for its parts and
	// the whole: the state caches all three digests or none.
	cached, parts := 0, 0
	for _, fs := range st.Files {
		parts += len(fs.Parts)
		all := fs.SHA256 != ""
		for _, p := range fs.Parts {
			all = all && p.SHA256 != ""
		}
		if all {
			cached++
		}
	}
	if cached == 0 || parts != 6 {
		t.Fatalf("state caches the hashes of %d files (%d parts); the test needs some cached", cached, parts)
	}

	hashed.Store(0)
	opts.Progress = nil
	if _, err := Send(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got, want := hashed.Load(), int64(len(st.Files)-cached); got != want {
		t.Errorf("re-run hashed %d files, want %d (only those the state did not cache)", got, want)
	}
}

func TestSplitFileIsHashedInOnePassAndItsFinalDeclaresTheWholeSHA256(t *testing.T) {
	srv := sendtest.Start(t)
	srv.VerifyHashes = true
	dir := t.TempDir()
	data := make([]byte, 5<<20+3)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, "clip.mov")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var ranges, splits atomic.Int64
	hashRangeFn = func(path string, off, n int64) (string, error) {
		ranges.Add(1)
		return hashRange(path, off, n)
	}
	hashSplitFn = func(ctx context.Context, path string, size int64, parts []Part, onPart func(int, string)) (string, []string, error) {
		splits.Add(1)
		return hashSplit(ctx, path, size, parts, onPart)
	}
	t.Cleanup(func() { hashRangeFn, hashSplitFn = hashRange, hashSplit })
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	res, err := Send(context.Background(), Options{Target: target, Paths: []string{path}, Streams: 4, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if ranges.Load() != 0 || splits.Load() != 1 {
		t.Errorf("hashing read %d ranges and %d whole files, want one whole-file pass", ranges.Load(), splits.Load())
	}
	_, files := srv.PackageState(res.PackageID)
	want := sha256.Sum256(data)
	if got := files["clip.mov"].SHA256; got != hex.EncodeToString(want[:]) {
		t.Errorf("the final declared sha256 %q, want the whole file's %x", got, want)
	}
}

func TestHashSplitMatchesSeparateHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 3<<20+5)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	parts := splitParts(int64(len(data)), 3)
	// Each part's digest is published, in order, as soon as its range is read.
	var published []string
	whole, sums, err := hashSplit(context.Background(), path, int64(len(data)), parts, func(i int, sum string) {
		if i != len(published) {
			t.Errorf("part %d published after %d others", i, len(published))
		}
		published = append(published, sum)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(published, sums) {
		t.Errorf("published %q, returned %q", published, sums)
	}
	if w := sha256.Sum256(data); whole != hex.EncodeToString(w[:]) {
		t.Errorf("whole = %s, want %x", whole, w)
	}
	for i, p := range parts {
		if w := sha256.Sum256(data[p.Offset : p.Offset+p.Size]); sums[i] != hex.EncodeToString(w[:]) {
			t.Errorf("part %d = %s, want %x", i, sums[i], w)
		}
	}
	if _, _, err := hashSplit(context.Background(), path, int64(len(data))+1, splitParts(int64(len(data))+1, 3), nil); err == nil {
		t.Error("a file shorter than its parts hashed without error")
	}
}

func TestRerunResendsAFinishedPartTheServerLost(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, "clip.mov")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	stateDir := t.TempDir()
	opts := Options{Target: target, Paths: []string{path}, Streams: 1, Large: 1 << 20, MaxPart: 1 << 20, StateDir: stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelOnBytes{n: 5 << 19, cancel: cancel} // 2.5 MiB: two parts done
	if _, err := Send(ctx, opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first run: %v, want ErrInterrupted", err)
	}
	entries, _ := os.ReadDir(stateDir)
	b, err := os.ReadFile(filepath.Join(stateDir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	first := st.Files["clip.mov"].Parts[0]
	if !first.Done {
		t.Fatalf("part 0 not finished after the first run: %+v", st.Files["clip.mov"].Parts)
	}
	c := &tus.Client{HTTP: http.DefaultClient}
	if err := c.Terminate(context.Background(), first.URL); err != nil {
		t.Fatal(err)
	}

	opts.Progress = nil
	res, err := Send(context.Background(), opts)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	_, files := srv.PackageState(res.PackageID)
	got, err := files["clip.mov"].Bytes()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("server holds different bytes after the re-run (err %v)", err)
	}
}
