package child

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Main is a TestMain for a package of child-process tests: it builds ferry
// once into *bin, runs the tests, removes the build and exits with their code.
func Main(m *testing.M, bin *string) {
	b, cleanup, err := buildFerry()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// buildFerry builds cmd/ferry into a temporary directory, for Main;
// cleanup removes it.
func buildFerry() (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "ferry-child-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "github.com/ferryhq/ferry/cmd/ferry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building ferry: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// FreeAddr is a free 127.0.0.1 address.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is one child process.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args, its output appended to logPath; the process is
// killed when the test ends.
func Start(t *testing.T, bin, logPath string, args ...string) *Proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.Kill)
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill is SIGKILL: no shutdown code runs.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop ends the process gracefully (SIGTERM) and waits for it.
func (p *Proc) Stop(t *testing.T) {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", p.Cmd.Path)
	}
}

// WaitHTTP waits (a minute at most) until url answers 200, failing at once
// if p exits first.
func WaitHTTP(t *testing.T, url string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before answering %s", p.Cmd.Path, url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

// API calls ferry's JSON API with an API token.
type API struct {
	T     *testing.T
	Base  string
	Token string
}

// Do sends in as JSON (nil: no body) with bearer (or the API token), fails
// the test on a status of 300 or more, and decodes the answer into out.
func (a *API) Do(method, p, bearer string, in, out any) int {
	a.T.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.Base+p, body)
	req.Header.Set("Content-Type", "application/json")
	if bearer == "" {
		bearer = a.Token
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		a.T.Fatalf("%s %s: %d %s", method, p, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.T.Fatalf("%s %s: %v: %s", method, p, err, b)
		}
	}
	return resp.StatusCode
}

// Get returns the body of a GET that must answer 200 (a page or a file).
func (a *API) Get(p string) []byte {
	a.T.Helper()
	req, _ := http.NewRequest("GET", a.Base+p, nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.T.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
	}
	return b
}

// TusUpload sends one whole file with creation-with-upload, declaring its
// SHA-256.
func TusUpload(t *testing.T, base, token, relPath string, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	meta := []string{}
	for k, v := range map[string]string{"package_token": token, "filename": path.Base(relPath), "relativePath": relPath, "sha256": hex.EncodeToString(sum[:])} {
		meta = append(meta, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req, _ := http.NewRequest("POST", base+"/uploads/", bytes.NewReader(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Upload-Metadata", strings.Join(meta, ","))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("uploading %s: %v", relPath, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("uploading %s: %d offset %q: %s", relPath, resp.StatusCode, resp.Header.Get("Upload-Offset"), b)
	}
}

// StartDemo runs `ferry serve --demo` on dir at a free address, its output
// in dir/demo.log, waits until it serves and has written dir/demo.json, and
// decodes that file into info.
func StartDemo(t *testing.T, bin, dir string, info any) *Proc {
	t.Helper()
	addr := FreeAddr(t)
	p := Start(t, bin, filepath.Join(dir, "demo.log"), "serve", "--demo", "--data", dir, "--addr", addr, "--log-level", "warn")
	WaitHTTP(t, "http://"+addr+"/healthz", p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		var probe struct {
			FerryURL string `json:"ferry_url"`
		}
		if err == nil && json.Unmarshal(b, &probe) == nil && probe.FerryURL != "" {
			if err := json.Unmarshal(b, info); err != nil {
				t.Fatalf("demo.json: %v", err)
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo.json: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
