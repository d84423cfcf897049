package send

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"hash"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send/sendtest"
	"github.com/ferryhq/ferry/internal/send/tus"
)

// onePassFiles writes a small file (one upload) and a large one (split into parts).
func onePassFiles(t *testing.T) (dir string, want map[string][]byte, total int64) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "set")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want = map[string][]byte{
		"set/small.txt": writeTestFile(t, filepath.Join(dir, "small.txt"), 300<<10),
		"set/big.mov":   writeTestFile(t, filepath.Join(dir, "big.mov"), 5<<20+7),
	}
	for _, b := range want {
		total += int64(len(b))
	}
	return dir, want, total
}

func checkPackage(t *testing.T, srv *sendtest.TestServer, id string, want map[string][]byte) {
	t.Helper()
	_, files := srv.PackageState(id)
	if len(files) != len(want) {
		t.Fatalf("package holds %d files, want %d", len(files), len(want))
	}
	for p, w := range want {
		f, ok := files[p]
		if !ok {
			t.Fatalf("package lacks %s (has %v)", p, files)
		}
		got, err := f.Bytes()
		if err != nil || !bytes.Equal(got, w) {
			t.Errorf("%s: server holds different bytes (err %v)", p, err)
		}
	}
}

func writeTestFile(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// countHashing counts the bytes the sender reads to hash besides those it sends.
func countHashing(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	rehashFn = func(ctx context.Context, h hash.Hash, path string, off, size int64) error {
		n.Add(size)
		return rehash(ctx, h, path, off, size)
	}
	t.Cleanup(func() { rehashFn = rehash })
	return &n
}

func TestFreshSendReadsEachByteOnce(t *testing.T) {
	srv := sendtest.Start(t)
	dir, want, total := onePassFiles(t)
	hashed := countHashing(t)
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	res, err := Send(context.Background(), Options{Target: target, Paths: []string{dir}, Streams: 2, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkPackage(t, srv, res.PackageID, want)
	if got := hashed.Load(); got != 0 {
		t.Errorf("the sender read %d bytes to hash them apart from sending them (%.1fx the %d bytes sent); want 0: it hashes what it sends",
			got, float64(got)/float64(total), total)
	}
	if got := srv.Received(); got != total {
		t.Errorf("server received %d bytes, want %d", got, total)
	}
}

func TestCorruptedUploadIsRefusedAndSentAgain(t *testing.T) {
	cases := []struct {
		name  string
		after int64 // body bytes before the flipped one
	}{
		{"in the small file or a part", 100 << 10},
		{"late in the stream", 4 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := sendtest.Start(t)
			dir, want, total := onePassFiles(t)
			srv.CorruptAfter(tc.after)
			target, _ := ParseTarget(srv.URL+"/p/demo", "")
			res, err := Send(context.Background(), Options{Target: target, Paths: []string{dir}, Streams: 1, Large: 1 << 20,
				StateDir: t.TempDir(), Backoff: func(int) time.Duration { return 0 }})
			if err != nil {
				t.Fatalf("send with one corrupted byte in transit: %v", err)
			}
			checkPackage(t, srv, res.PackageID, want)
			if got := srv.Received(); got <= total {
				t.Errorf("server received %d bytes for %d: the damaged upload was not sent again", got, total)
			}
		})
	}
}

func TestDroppedTrailersFallBackToADeclarationAfterTheBytes(t *testing.T) {
	srv := sendtest.Start(t)
	srv.DropTrailers()
	dir, want, total := onePassFiles(t)
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	res, err := Send(context.Background(), Options{Target: target, Paths: []string{dir}, Streams: 2, Large: 1 << 20, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("send behind a proxy dropping trailers: %v", err)
	}
	checkPackage(t, srv, res.PackageID, want)
	if got := srv.Received(); got != total {
		t.Errorf("server received %d bytes, want %d: declaring the digest late must not resend bytes", got, total)
	}
}

func TestResumeRehashesOnlyFromTheLastSavedDigest(t *testing.T) {
	srv := sendtest.Start(t)
	dir := filepath.Join(t.TempDir(), "set")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"set/big.mov": writeTestFile(t, filepath.Join(dir, "big.mov"), 24<<20+5)}
	hashed := countHashing(t)
	old := tus.CheckpointEvery
	tus.CheckpointEvery = 1 << 20
	t.Cleanup(func() { tus.CheckpointEvery = old })
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	stateDir := t.TempDir()
	opts := Options{Target: target, Paths: []string{dir}, Streams: 2, Large: 1 << 20, StateDir: stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelOnBytes{n: 16 << 20, cancel: cancel}
	if _, err := Send(ctx, opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first run: %v, want ErrInterrupted", err)
	}
	for srv.ActivePatches() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	// What re-hashing from the start would cost: every byte the server holds.
	entries, _ := os.ReadDir(stateDir)
	st, err := loadState(filepath.Join(stateDir, entries[0].Name()), target.String())
	if err != nil {
		t.Fatal(err)
	}
	c := &tus.Client{HTTP: http.DefaultClient, Header: http.Header{"Authorization": {"Bearer " + st.UploadToken}}}
	var held int64
	for _, p := range st.Files["set/big.mov"].Parts {
		if p.URL != "" {
			off, _, err := c.Offset(context.Background(), p.URL)
			if err != nil {
				t.Fatal(err)
			}
			held += off
		}
	}
	bound := 2 * tus.CheckpointEvery // each of the two parts re-reads less than one interval
	if held <= 2*bound {
		t.Fatalf("the server holds %d bytes after the first run; the test needs more than %d", held, 2*bound)
	}
	opts.Progress = nil
	res, err := Send(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPackage(t, srv, res.PackageID, want)
	if got := hashed.Load(); got > bound {
		t.Errorf("the re-run re-read %d bytes to resume the hashes, want at most %d (the server held %d)", got, bound, held)
	}
}
