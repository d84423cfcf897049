package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const childDirEnv = "FERRY_INGEST_CHILD_DIR"

// TestHelperServerProcess is the server half of TestKilledServerResumes...: it runs only as a
// child process of that test, serving ingest over a directory until it is killed.
func TestHelperServerProcess(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestKilledServerResumesAndRehashesOnlyTheGap")
	}
	ing, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}, printGate{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	if err := ing.Reconcile(context.Background()); err != nil { // what `ferry serve` does at start-up
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	gapOf = func() int64 { return gapHashed(ing) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("LISTEN http://%s\n", l.Addr())
	_ = http.Serve(l, ing.Handler())
}

var gapOf = func() int64 { return 0 }

// printGate reports completions on stdout for the parent test to read.
type printGate struct{}

func (printGate) Admit(context.Context, Upload) (Admission, error) { return Admission{}, nil }
func (printGate) Complete(_ context.Context, u Upload, s Checksums) error {
	fmt.Printf("COMPLETE %s %x %d\n", u.ID, s.SHA256, gapOf())
	return nil
}
func (printGate) Failed(_ context.Context, u Upload, reason string) error {
	fmt.Printf("FAILED %s %s\n", u.ID, reason)
	return nil
}
func (printGate) Removed(context.Context, Upload) error { return nil }

type child struct {
	cmd *exec.Cmd
	url string
	out *bufio.Scanner
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServerProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for c.out.Scan() {
		line := c.out.Text()
		if u, ok := strings.CutPrefix(line, "LISTEN "); ok {
			c.url = u
			return c
		}
		if strings.HasPrefix(line, "ERROR") {
			t.Fatalf("child: %s", line)
		}
	}
	t.Fatalf("child exited before listening: %v", c.out.Err())
	return nil
}

// next returns the child's next stdout line starting with prefix.
func (c *child) next(t *testing.T, prefix string) string {
	t.Helper()
	for c.out.Scan() {
		if strings.HasPrefix(c.out.Text(), prefix) {
			return c.out.Text()
		}
	}
	t.Fatalf("child ended without a %q line", prefix)
	return ""
}

// TestKilledServerResumesAndRehashesOnlyTheGap kills the server process (SIGKILL) in the middle of
// a PATCH, restarts it over the same directory and resumes: the digest is right and only the
// bytes written after the last saved hash state are read back from disk.
func TestKilledServerResumesAndRehashesOnlyTheGap(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns server processes")
	}
	dir := t.TempDir()
	srv := startChild(t, dir)
	data := randBytes(t, 40<<20)
	client := &http.Client{}
	do := func(base string, q tusReq) *tusResp {
		q.URL = strings.Replace(q.URL, "BASE", base, 1)
		return doTus(t, client, q)
	}

	res := do(srv.url, tusReq{Method: "POST", URL: "BASE/uploads/", Token: testToken, Meta: fileMeta(data, true),
		Header: map[string]string{"Upload-Length": strconv.Itoa(len(data))}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	id := idOf(res.Header.Get("Location"))
	path := "BASE/uploads/" + id
	first := 8 << 20
	if r := do(srv.url, tusReq{Method: "PATCH", URL: path, Token: testToken, HasBody: true, Body: data[:first],
		Header: map[string]string{"Upload-Offset": "0"}}); r.Status != http.StatusNoContent {
		t.Fatalf("first PATCH: %d %s", r.Status, r.Body)
	}

	// Second PATCH: stream the rest slowly enough to kill the server in its middle.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", srv.url+"/uploads/"+id, pr)
	req.ContentLength = int64(len(data) - first)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.Itoa(first))
	go func() {
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	go func() {
		for off := first; off < len(data); off += 1 << 20 {
			if _, err := pw.Write(data[off : off+1<<20]); err != nil {
				return
			}
		}
	}()
	bin := filepath.Join(dir, id+".bin")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if st, err := os.Stat(bin); err == nil && st.Size() >= int64(first+6<<20) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never stored the second PATCH's bytes")
		}
	}
	_ = srv.cmd.Process.Kill()
	_ = srv.cmd.Wait()
	pw.CloseWithError(io.ErrClosedPipe)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	stored := int(st.Size())
	if stored >= len(data) {
		t.Fatalf("the server stored everything before it was killed")
	}

	srv2 := startChild(t, dir)
	h := do(srv2.url, tusReq{Method: "HEAD", URL: path, Token: testToken})
	if off, _ := strconv.Atoi(h.Header.Get("Upload-Offset")); h.Status != http.StatusOK || off != stored {
		t.Fatalf("HEAD after restart: %d offset %q, want %d", h.Status, h.Header.Get("Upload-Offset"), stored)
	}
	if r := do(srv2.url, tusReq{Method: "PATCH", URL: path, Token: testToken, HasBody: true, Body: data[stored:],
		Header: map[string]string{"Upload-Offset": strconv.Itoa(stored)}}); r.Status != http.StatusNoContent {
		t.Fatalf("resuming PATCH: %d %s", r.Status, r.Body)
	}
	f := strings.Fields(srv2.next(t, "COMPLETE "))
	if f[1] != id || f[2] != sha(data) {
		t.Fatalf("completion %v, want %s with sha256 %s", f, id, sha(data))
	}
	if gap, _ := strconv.Atoi(f[3]); gap != stored-first {
		t.Errorf("re-hashed %d bytes from disk after the kill, want exactly the unsaved gap %d", gap, stored-first)
	}
}
