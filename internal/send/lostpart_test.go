package send

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
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

func TestRerunResendsAFinishedPartTheServerLost(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, "clip.mov")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, _ := ParseTarget(srv.URL+"/p/demo", "")
	stateDir := t.TempDir()
	opts := Options{Target: target, Paths: []string{path}, Streams: 2, Large: 1 << 20, MaxPart: 1 << 20, StateDir: stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelOnBytes{n: 5 << 20, cancel: cancel} // 5 of 8 parts sent: the first ones done
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
