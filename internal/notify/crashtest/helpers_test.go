package crashtest

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

var ferryBin string

// TestMain builds the ferry binary once for every test of the package.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-notify-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, "github.com/ferryhq/ferry/cmd/ferry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t *testing.T, logPath string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ferryBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill is SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before answering %s", p.cmd.Path, url)
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

// api calls ferry's JSON API.
type api struct {
	t     *testing.T
	base  string
	token string
}

func (a *api) do(method, p, bearer string, in, out any) int {
	a.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+p, body)
	req.Header.Set("Content-Type", "application/json")
	if bearer == "" {
		bearer = a.token
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		a.t.Fatalf("%s %s: %d %s", method, p, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, p, err, b)
		}
	}
	return resp.StatusCode
}

func (a *api) get(p string) []byte {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.base+p, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
	}
	return b
}

// tusUpload sends one whole file with creation-with-upload.
func tusUpload(t *testing.T, base, token, relPath string, data []byte) {
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

type notification struct {
	Kind      string `json:"kind"`
	Recipient string `json:"recipient"`
	State     string `json:"state"`
	Transport string `json:"transport"`
	Subject   string `json:"subject"`
	Response  string `json:"response"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
}

// waitNotifications polls the package's notifications (bounded: a deadlock
// guard) until want of them left the queue.
func (a *api) waitNotifications(pkgID string, want int) []notification {
	a.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list struct {
			Notifications []notification `json:"notifications"`
		}
		a.do("GET", "/api/v1/packages/"+pkgID+"/notifications", "", nil, &list)
		done := len(list.Notifications) == want
		for _, n := range list.Notifications {
			done = done && n.State != "queued"
		}
		if done {
			return list.Notifications
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("notifications of %s: %+v, want %d settled", pkgID, list.Notifications, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
