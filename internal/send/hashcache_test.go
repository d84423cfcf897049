package send

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
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
	hashRangeFn = func(ctx context.Context, path string, off, n int64) (string, error) {
		hashed.Add(1)
		return hashRange(ctx, path, off, n)
	}
	t.Cleanup(func() { hashRangeFn = hashRange })
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
	// Each file is split in two; each part's digest and the whole file's
	// are cached as soon as they are known.
	cached, missing, parts := 0, 0, 0
	for _, fs := range st.Files {
		parts += len(fs.Parts)
		for _, sum := range append([]string{fs.SHA256}, partSums(fs)...) {
			if sum != "" {
				cached++
			} else {
				missing++
			}
		}
	}
	if cached == 0 || parts != 6 {
		t.Fatalf("state caches %d digests (%d parts); the test needs some cached", cached, parts)
	}

	hashed.Store(0)
	opts.Progress = nil
	if _, err := Send(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got := hashed.Load(); got != int64(missing) {
		t.Errorf("re-run hashed %d ranges, want %d (only the digests the state did not cache)", got, missing)
	}
}

func partSums(fs *FileState) []string {
	var sums []string
	for _, p := range fs.Parts {
		sums = append(sums, p.SHA256)
	}
	return sums
}

func TestSplitFileHashesEachPartAndTheWholeOnceAndItsFinalDeclaresTheWholeSHA256(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	data := make([]byte, 5<<20+3)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, "clip.mov")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ranges := map[[2]int64]int{}
	hashRangeFn = func(ctx context.Context, path string, off, n int64) (string, error) {
		mu.Lock()
		ranges[[2]int64{off, n}]++
		mu.Unlock()
		return hashRange(ctx, path, off, n)
	}
	t.Cleanup(func() { hashRangeFn = hashRange })
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	res, err := Send(context.Background(), Options{Target: target, Paths: []string{path}, Streams: 4, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int64]int{{0, int64(len(data))}: 1}
	for _, p := range splitParts(int64(len(data)), 4) {
		want[[2]int64{p.Offset, p.Size}] = 1
	}
	if !maps.Equal(ranges, want) {
		t.Errorf("hashed ranges %v, want each part and the whole file once: %v", ranges, want)
	}
	_, files := srv.PackageState(res.PackageID)
	whole := sha256.Sum256(data)
	if got := files["clip.mov"].SHA256; got != hex.EncodeToString(whole[:]) {
		t.Errorf("the final declared sha256 %q, want the whole file's %x", got, whole)
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
	c := &tus.Client{HTTP: http.DefaultClient, Header: http.Header{"Authorization": {"Bearer " + st.UploadToken}}}
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
