package send_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/send/sendtest"
	"github.com/ferryhq/ferry/internal/send/tus"
)

func writeFile(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func portal(t *testing.T, srv *sendtest.TestServer) send.Target {
	t.Helper()
	tg, err := send.ParseTarget(srv.URL+"/p/demo", "")
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func fastRetry(int) time.Duration { return 10 * time.Millisecond }

// assertPackage checks that the server holds exactly want (path -> bytes), finalized.
func assertPackage(t *testing.T, srv *sendtest.TestServer, id string, want map[string][]byte) {
	t.Helper()
	state, files := srv.PackageState(id)
	if state != "finalized" {
		t.Errorf("package %s state = %q, want finalized", id, state)
	}
	var got []string
	for p := range files {
		got = append(got, p)
	}
	sort.Strings(got)
	var wantPaths []string
	for p := range want {
		wantPaths = append(wantPaths, p)
	}
	sort.Strings(wantPaths)
	if strings.Join(got, ",") != strings.Join(wantPaths, ",") {
		t.Fatalf("package paths = %v, want %v", got, wantPaths)
	}
	for p, b := range want {
		data, err := files[p].Bytes()
		if err != nil {
			t.Fatalf("read %s back: %v", p, err)
		}
		if !bytes.Equal(data, b) {
			t.Errorf("%s: server holds %d bytes that differ from the %d sent", p, len(data), len(b))
		}
	}
}

func TestWalkSkipsJunkAndKeepsFolderNames(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"shoot/a.mov", "shoot/day 2/b.wav", "shoot/.DS_Store", "shoot/sub/Thumbs.db", "shoot/sub/desktop.ini", "shoot/sub/DESKTOP.INI", "loose.txt"} {
		writeFile(t, filepath.Join(dir, p), 3)
	}
	files, err := send.Walk([]string{filepath.Join(dir, "shoot"), filepath.Join(dir, "loose.txt")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Rel)
	}
	if want := "loose.txt,shoot/a.mov,shoot/day 2/b.wav"; strings.Join(got, ",") != want {
		t.Errorf("walk = %v, want %s", got, want)
	}
}

func TestWalkRefusesTwoFilesWithTheSamePackagePath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x/a.txt"), 1)
	writeFile(t, filepath.Join(dir, "y/a.txt"), 1)
	_, err := send.Walk([]string{filepath.Join(dir, "x/a.txt"), filepath.Join(dir, "y/a.txt")})
	if err == nil || !strings.Contains(err.Error(), `"a.txt"`) {
		t.Errorf("walk of two a.txt = %v, want a duplicate-path error", err)
	}
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		raw, token         string
		wantBase, wantSlug string
		wantErr            string
	}{
		{raw: "https://h.example/p/acme", wantBase: "https://h.example", wantSlug: "acme"},
		{raw: "https://h.example/ferry/p/acme/", wantBase: "https://h.example/ferry", wantSlug: "acme"},
		{raw: "http://127.0.0.1:8080", token: "T", wantBase: "http://127.0.0.1:8080"},
		{raw: "https://h.example", wantErr: "needs --token"},
		{raw: "ftp://h.example/p/acme", wantErr: "http(s) URL"},
		{raw: "h.example/p/acme", wantErr: "http(s) URL"},
		{raw: "https://h.example/p/", wantErr: "expected https://host/p/slug"},
		{raw: "https://h.example/p/a/b", wantErr: "expected https://host/p/slug"},
		{raw: "https://u:pw@h.example/p/a", wantErr: "no query"},
	}
	for _, c := range cases {
		tg, err := send.ParseTarget(c.raw, c.token)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseTarget(%q) error = %v, want %q", c.raw, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.raw, err)
			continue
		}
		if tg.Base.String() != c.wantBase || tg.Slug != c.wantSlug {
			t.Errorf("ParseTarget(%q) = %s slug %q, want %s slug %q", c.raw, tg.Base, tg.Slug, c.wantBase, c.wantSlug)
		}
	}
}

func TestSendNestedFolderSkipsJunkAndDeliversExactBytes(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	want := map[string][]byte{}
	for p, size := range map[string]int{"shoot/a.mov": 300 << 10, "shoot/day 2/b.wav": 1, "shoot/day 2/deep/c.txt": 70 << 10, "shoot/empty.txt": 0} {
		want[p] = writeFile(t, filepath.Join(dir, p), size)
	}
	writeFile(t, filepath.Join(dir, "shoot/.DS_Store"), 10)
	writeFile(t, filepath.Join(dir, "shoot/day 2/Thumbs.db"), 10)

	res, err := send.Send(context.Background(), send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "shoot")},
		Info: send.PackageInfo{Name: "rushes", Email: "a@example.com"}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 4 {
		t.Errorf("files = %d, want 4", res.Files)
	}
	assertPackage(t, srv, res.PackageID, want)
}

func TestLargeFilesAreSplitIntoPartsAndConcatenated(t *testing.T) {
	cases := []struct {
		name      string
		streams   int
		maxPart   int64
		wantParts int64
	}{
		{"four streams, one part each", 4, 0, 4},
		// One stream sends a file whole: its whole SHA-256 is then verified on arrival.
		{"one stream, never split", 1, 2 << 20, 1},
		{"two streams, parts capped at 1 MiB", 2, 1 << 20, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := sendtest.Start(t)
			dir := t.TempDir()
			big := writeFile(t, filepath.Join(dir, "big.mxf"), 5<<20+7)
			small := writeFile(t, filepath.Join(dir, "small.txt"), 1000)
			res, err := send.Send(context.Background(), send.Options{Target: portal(t, srv),
				Paths:   []string{filepath.Join(dir, "big.mxf"), filepath.Join(dir, "small.txt")},
				Streams: c.streams, Large: 1 << 20, MaxPart: c.maxPart, StateDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			assertPackage(t, srv, res.PackageID, map[string][]byte{"big.mxf": big, "small.txt": small})
			if got, want := srv.Patches(), c.wantParts+1; got != want {
				t.Errorf("PATCH requests = %d, want %d (%d partials of big.mxf + small.txt)", got, want, c.wantParts)
			}
			if got, want := srv.Received(), int64(len(big)+len(small)); got != want {
				t.Errorf("server received %d body bytes, want %d", got, want)
			}
		})
	}
}

// cancelAfter is a Progress that cancels the run once n bytes were sent.
type cancelAfter struct {
	mu     sync.Mutex
	sent   int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Total(int64, int64)      {}
func (c *cancelAfter) FileStart(string, int64) {}
func (c *cancelAfter) Resumed(string, int64)   {}
func (c *cancelAfter) FileDone(string)         {}
func (c *cancelAfter) Close()                  {}
func (c *cancelAfter) Add(_ string, d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent += d
	if c.sent >= c.n {
		c.cancel()
	}
}

func TestCancelledRunResumesWithoutResendingBytes(t *testing.T) {
	cases := []struct {
		name    string
		streams int
	}{
		{"one stream", 1},
		{"four streams", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := sendtest.Start(t)
			dir := t.TempDir()
			want := map[string][]byte{
				"set/big.mov":   writeFile(t, filepath.Join(dir, "set/big.mov"), 24<<20),
				"set/a.txt":     writeFile(t, filepath.Join(dir, "set/a.txt"), 4096),
				"set/sub/b.bin": writeFile(t, filepath.Join(dir, "set/sub/b.bin"), 2<<20),
			}
			var total int64
			for _, b := range want {
				total += int64(len(b))
			}
			stateDir := t.TempDir()
			opts := send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "set")}, Info: send.PackageInfo{Name: "pkg"},
				Streams: c.streams, Large: 4 << 20, StateDir: stateDir}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts.Progress = &cancelAfter{n: 6 << 20, cancel: cancel}
			_, err := send.Send(ctx, opts)
			if !errors.Is(err, send.ErrInterrupted) {
				t.Fatalf("first run error = %v, want ErrInterrupted", err)
			}
			first := srv.Received()
			if first <= 0 || first >= total {
				t.Fatalf("first run delivered %d of %d bytes; the test needs a partial upload", first, total)
			}
			if entries, _ := os.ReadDir(stateDir); len(entries) != 1 {
				t.Fatalf("state dir holds %d entries after the interrupted run, want 1", len(entries))
			}

			opts.Progress = nil
			res, err := send.Send(context.Background(), opts)
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if got := srv.Received(); got != total {
				t.Errorf("server received %d body bytes over both runs, want exactly %d (first run %d)", got, total, first)
			}
			if ids := srv.Packages(); len(ids) != 1 {
				t.Errorf("server has %d packages, want the one package resumed", len(ids))
			}
			assertPackage(t, srv, res.PackageID, want)
			// The resume state is gone; what stays is the record of the
			// finished send (so the same command does not send it twice).
			if entries, _ := os.ReadDir(stateDir); len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".sent.json") {
				t.Errorf("state dir holds %v after success, want only the record of the finished send", entries)
			}
		})
	}
}

func TestInterruptedUploadsAreRetried(t *testing.T) {
	cases := []struct {
		name  string
		fault func(*sendtest.Server)
		plain bool // a caller's own http.Client: bodies are read, not sent with sendfile
	}{
		{"connection dropped mid-PATCH", func(s *sendtest.Server) { s.DropConnectionAfter(1 << 20) }, false},
		{"server answers 503", func(s *sendtest.Server) { s.FailPatches(2) }, false},
		{"package API answers 503", func(s *sendtest.Server) { s.FailAPI(2) }, false},
		{"connection dropped mid-PATCH, plain HTTP client", func(s *sendtest.Server) { s.DropConnectionAfter(1 << 20) }, true},
		{"server answers 503, plain HTTP client", func(s *sendtest.Server) { s.FailPatches(2) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := sendtest.Start(t)
			dir := t.TempDir()
			data := writeFile(t, filepath.Join(dir, "clip.mov"), 3<<20)
			c.fault(srv.Server)
			opts := send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "clip.mov")}, StateDir: t.TempDir(), Backoff: fastRetry}
			if c.plain {
				opts.HTTP = &http.Client{}
			}
			res, err := send.Send(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			assertPackage(t, srv, res.PackageID, map[string][]byte{"clip.mov": data})
			if srv.Patches() < 2 && !strings.Contains(c.name, "package API") {
				t.Errorf("PATCH requests = %d, want a retry", srv.Patches())
			}
			if got := srv.Received(); got != int64(len(data)) {
				t.Errorf("server received %d bytes, want %d (resumed from its offset, nothing twice)", got, len(data))
			}
		})
	}
}

func TestSendToAdminAPIWithToken(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	data := writeFile(t, filepath.Join(dir, "x.bin"), 1234)
	tg, err := send.ParseTarget(srv.URL, sendtest.APIToken)
	if err != nil {
		t.Fatal(err)
	}
	res, err := send.Send(context.Background(), send.Options{Target: tg, Paths: []string{filepath.Join(dir, "x.bin")}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	assertPackage(t, srv, res.PackageID, map[string][]byte{"x.bin": data})
}

func TestServerRefusalCarriesItsMessage(t *testing.T) {
	srv := sendtest.Start(t)
	srv.AddPortal("locked", "s3cret")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.bin"), 10)
	u, _ := url.Parse(srv.URL)
	tg := send.Target{Base: u, Slug: "locked"}
	_, err := send.Send(context.Background(), send.Options{Target: tg, Paths: []string{filepath.Join(dir, "x.bin")},
		Info: send.PackageInfo{Password: "wrong"}, StateDir: t.TempDir()})
	var ae *send.APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "wrong_password" || !strings.Contains(err.Error(), "The upload password is wrong.") {
		t.Errorf("error = %v, want the server's 403 wrong_password message", err)
	}
}

func TestFileChangedBetweenRunsIsSentAfresh(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "clip.mov")
	// Large against the 2 MiB after which the first run is cancelled: loopback
	// socket buffers can take several MiB, and with a small file the whole body
	// (and its digest) could reach the server before the cancel does.
	const size = 64 << 20
	writeFile(t, path, size)
	stateDir := t.TempDir()
	opts := send.Options{Target: portal(t, srv), Paths: []string{path}, Streams: 1, StateDir: stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelAfter{n: 2 << 20, cancel: cancel}
	if _, err := send.Send(ctx, opts); !errors.Is(err, send.ErrInterrupted) {
		t.Fatalf("first run: %v, want ErrInterrupted", err)
	}

	fresh := writeFile(t, path, size)
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	opts.Progress = nil
	res, err := send.Send(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	assertPackage(t, srv, res.PackageID, map[string][]byte{"clip.mov": fresh})
}

func TestProgressMovesDuringSendfileAndTLSUploads(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http with sendfile", true: "https"}[useTLS]
		t.Run(name, func(t *testing.T) {
			tr := tus.NewTransport(4)
			var srv *sendtest.TestServer
			if useTLS {
				srv = sendtest.StartTLS(t)
				tr.TLSClientConfig = &tls.Config{RootCAs: srv.RootCAs}
			} else {
				srv = sendtest.Start(t)
			}
			dir := t.TempDir()
			want := map[string][]byte{
				"reel/big.mov":  writeFile(t, filepath.Join(dir, "reel/big.mov"), 6<<20+5),
				"reel/note.txt": writeFile(t, filepath.Join(dir, "reel/note.txt"), 99),
			}
			var prog countingProgress
			res, err := send.Send(context.Background(), send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "reel")},
				Streams: 2, Large: 1 << 20, StateDir: t.TempDir(), HTTP: &http.Client{Transport: tr}, Progress: &prog})
			if err != nil {
				t.Fatal(err)
			}
			assertPackage(t, srv, res.PackageID, want)
			n, calls := prog.get()
			if total := int64(6<<20 + 5 + 99); n != total {
				t.Errorf("progress summed to %d bytes, want the package's %d", n, total)
			}
			if calls < 6 {
				t.Errorf("progress was reported %d times for 3 PATCHes of up to 3 MiB; want steps during each body", calls)
			}
		})
	}
}

// countingProgress sums what Progress was told and counts the reports.
type countingProgress struct {
	mu    sync.Mutex
	n     int64
	calls int
}

func (c *countingProgress) Total(int64, int64)      {}
func (c *countingProgress) FileStart(string, int64) {}
func (c *countingProgress) Resumed(_ string, n int64) {
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
}
func (c *countingProgress) Add(_ string, n int64) {
	c.mu.Lock()
	c.n += n
	c.calls++
	c.mu.Unlock()
}
func (c *countingProgress) FileDone(string) {}
func (c *countingProgress) Close()          {}
func (c *countingProgress) get() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.calls
}

func TestRunningAFinishedSendAgainAnswersAlreadySentUnlessAgain(t *testing.T) {
	srv := sendtest.Start(t)
	srv.AddPortal("other", "")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "set/a.mov"), 64<<10)
	writeFile(t, filepath.Join(dir, "b.wav"), 10)
	stateDir := t.TempDir()
	base := send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "set")}, Info: send.PackageInfo{Name: "rushes"}, StateDir: stateDir}
	first, err := send.Send(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if !first.AlreadySent.IsZero() {
		t.Fatalf("the first send reports already sent on %v", first.AlreadySent)
	}
	other, _ := send.ParseTarget(srv.URL+"/p/other", "")

	cases := []struct {
		name        string
		change      func(*send.Options)
		wantAlready bool
	}{
		{"same server, portal, paths and name", func(*send.Options) {}, true},
		{"same paths given relative to the working directory", func(o *send.Options) { o.Paths = []string{relTo(t, filepath.Join(dir, "set"))} }, true},
		{"another package name", func(o *send.Options) { o.Info.Name = "rushes 2" }, false},
		{"another set of paths", func(o *send.Options) { o.Paths = append(o.Paths, filepath.Join(dir, "b.wav")) }, false},
		{"another portal", func(o *send.Options) { o.Target = other }, false},
		{"--again", func(o *send.Options) { o.Again = true }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := base
			c.change(&opts)
			before, received := len(srv.Packages()), srv.Received()
			res, err := send.Send(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			created := len(srv.Packages()) - before
			if c.wantAlready {
				if res.AlreadySent.IsZero() || res.PackageID != first.PackageID || created != 0 || srv.Received() != received {
					t.Errorf("got package %s (already sent %v), %d new packages, %d bytes sent; want the first package %s, already sent, nothing sent",
						res.PackageID, res.AlreadySent, created, srv.Received()-received, first.PackageID)
				}
				return
			}
			if !res.AlreadySent.IsZero() || res.PackageID == first.PackageID || created != 1 {
				t.Errorf("got package %s (already sent %v), %d new packages; want a new package", res.PackageID, res.AlreadySent, created)
			}
		})
	}

	// After --again, the same command remembers the newer package.
	again, err := send.Send(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if again.AlreadySent.IsZero() || again.PackageID == first.PackageID {
		t.Errorf("after --again: package %s, already sent %v; want the package --again sent", again.PackageID, again.AlreadySent)
	}
}

// relTo returns path relative to the working directory.
func relTo(t *testing.T, path string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// snapshotOnDone copies the resume state as it is when a file is done: what a
// sender killed after finalizing, before it could record that, leaves behind.
type snapshotOnDone struct {
	countingProgress
	stateDir string
	copied   map[string][]byte
}

func (s *snapshotOnDone) FileDone(string) {
	entries, _ := os.ReadDir(s.stateDir)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(s.stateDir, e.Name())); err == nil {
			s.copied[e.Name()] = b
		}
	}
}

func TestSenderKilledAfterFinalizingAnswersWithThatPackageAndRemembersIt(t *testing.T) {
	srv := sendtest.Start(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "clip.mov"), 64<<10)
	stateDir := t.TempDir()
	snap := &snapshotOnDone{stateDir: stateDir, copied: map[string][]byte{}}
	opts := send.Options{Target: portal(t, srv), Paths: []string{filepath.Join(dir, "clip.mov")}, StateDir: stateDir, Progress: snap}
	first, err := send.Send(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Put the directory back as the killed sender left it: resume state, no record.
	entries, _ := os.ReadDir(stateDir)
	for _, e := range entries {
		os.Remove(filepath.Join(stateDir, e.Name()))
	}
	if len(snap.copied) == 0 {
		t.Fatal("no resume state was seen while the file was sent")
	}
	for name, b := range snap.copied {
		if err := os.WriteFile(filepath.Join(stateDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	opts.Progress = nil
	for run := 2; run <= 3; run++ {
		res, err := send.Send(context.Background(), opts)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if res.PackageID != first.PackageID || len(srv.Packages()) != 1 {
			t.Errorf("run %d answered package %s, server has %d packages; want the finalized %s and no other", run, res.PackageID, len(srv.Packages()), first.PackageID)
		}
	}
}
