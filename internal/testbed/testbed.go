package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is the part of testing.TB the package needs; benchmarks pass a *testing.B.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// CI reports whether the suite runs under CI=true, where a missing peer is a failure.
func CI() bool { return os.Getenv("CI") == "true" }

// CacheDir is where scripts/peers installs the peers.
func CacheDir() string {
	if d := os.Getenv("FERRY_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ferry")
}

// Missing skips (or, under CI, fails) the test because a peer is absent.
func Missing(t TB, what, why string) {
	t.Helper()
	msg := fmt.Sprintf("PEER MISSING: %s: %s (install with scripts/peers)", what, why)
	if CI() {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
}

// Binary finds a peer's executable on PATH or in the peers cache.
func Binary(t TB, name string) string {
	t.Helper()
	if p, err := LookBinary(name); err == nil {
		return p
	}
	Missing(t, name, "not on PATH nor in "+filepath.Join(CacheDir(), "bin"))
	return ""
}

// LookBinary is Binary without a test: for benchmark programs.
func LookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(CacheDir(), "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	// Debian's postgresql package puts its server tools (initdb, pg_ctl,
	// postgres) under /usr/lib/postgresql/<version>/bin, off every PATH:
	// take the newest version there.
	if found, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name)); len(found) > 0 {
		slices.SortFunc(found, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
		return found[0], nil
	}
	return "", fmt.Errorf("%s: not found on PATH nor in %s", name, filepath.Dir(p))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbed: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a peer server started by the package.
type Process struct {
	Name string
	Dir  string // its private temporary directory
	cmd  *exec.Cmd
	log  *os.File
}

// LogTail returns the end of the peer's combined output, for failure messages.
func (p *Process) LogTail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop kills the peer and removes its directory.
func (p *Process) Stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_, _ = p.cmd.Process.Wait()
	}
	p.log.Close()
	_ = os.RemoveAll(p.Dir)
}

// spawner starts every peer from one goroutine locked to its OS thread, so that
// Pdeathsig (which fires when the *thread* that forked dies) kills the peers
// when, and only when, the test binary exits: no peer outlives its tests.
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread()
		for f := range ch {
			f()
		}
	}()
	return ch
})

// StartOpts describe one peer process.
type StartOpts struct {
	Name string
	Bin  string
	Args []string
	Env  []string
	Dir  string              // working directory (default: the private dir)
	As   *syscall.Credential // run as another user (PostgreSQL refuses root)
}

// Start runs a peer in the background in a fresh temporary directory.
// dirFn, when given, computes the arguments from that directory.
func Start(opts StartOpts) (*Process, error) {
	dir, err := peerDir(opts.Name)
	if err != nil {
		return nil, err
	}
	return StartIn(dir, opts)
}

// StartIn is Start with a directory the caller made.
func StartIn(dir string, opts StartOpts) (*Process, error) {
	logf, err := os.Create(filepath.Join(dir, "peer.log"))
	if err != nil {
		return nil, err
	}
	args := make([]string, len(opts.Args))
	for i, a := range opts.Args {
		args[i] = strings.ReplaceAll(a, "{dir}", dir)
	}
	cmd := exec.Command(opts.Bin, args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = dir
	if opts.Dir != "" {
		cmd.Dir = opts.Dir
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: opts.As}
	errc := make(chan error, 1)
	spawner() <- func() { errc <- cmd.Start() }
	if err := <-errc; err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", opts.Name, err)
	}
	return &Process{Name: opts.Name, Dir: dir, cmd: cmd, log: logf}, nil
}

// WaitHTTP polls url until it answers with a status below 500 or the deadline passes.
func WaitHTTP(p *Process, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if p != nil && p.cmd.ProcessState != nil {
			return fmt.Errorf("%s exited: %s", p.Name, p.LogTail())
		}
		select {
		case <-ctx.Done():
			tail := ""
			if p != nil {
				tail = p.LogTail()
			}
			return fmt.Errorf("%s not ready at %s after %v: %v\n%s", nameOf(p), url, within, errors.Join(err, ctx.Err()), tail)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitTCP polls addr until it accepts a connection.
func WaitTCP(p *Process, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			tail := ""
			if p != nil {
				tail = p.LogTail()
			}
			return fmt.Errorf("%s not listening on %s after %v: %v\n%s", nameOf(p), addr, within, err, tail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nameOf(p *Process) string {
	if p == nil {
		return "peer"
	}
	return p.Name
}

// shared keeps one instance of each peer per test binary.
type shared[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (s *shared[T]) get(t TB, start func() (T, error)) T {
	t.Helper()
	s.once.Do(func() { s.v, s.err = start() })
	if s.err != nil {
		t.Fatalf("testbed: %v", s.err)
	}
	return s.v
}

// peerDir makes a peer's private directory, named after this process so that
// directories left by test binaries that died are swept on the next run.
func peerDir(name string) (string, error) {
	sweepOnce()
	return os.MkdirTemp("", fmt.Sprintf("ferry-peer-%d-%s-", os.Getpid(), name))
}

var sweepOnce = sync.OnceFunc(func() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "ferry-peer-*"))
	for _, m := range matches {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(m), "ferry-peer-%d-", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(m)
		}
	}
})

// pgVersion is the major version in a /usr/lib/postgresql/<version>/bin path (0 if none).
func pgVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}
