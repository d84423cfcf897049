package send_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/send/sendtest"
)

// childEnv carries a childSend to a re-executed test binary: the SIGKILL
// test needs a real process to kill, running the same Send the command runs.
const childEnv = "FERRY_SEND_TEST_CHILD"

// childSend is what a child process sends.
type childSend struct {
	To       string   `json:"to"`
	Paths    []string `json:"paths"`
	Name     string   `json:"name"`
	StateDir string   `json:"state_dir"`
	Streams  int      `json:"streams"`
	Large    int64    `json:"large"`
}

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(runChild(raw))
	}
	os.Exit(m.Run())
}

// runChild is the child's whole life: one Send, the package id on stdout.
func runChild(raw string) int {
	var c childSend
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	tg, err := send.ParseTarget(c.To, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	res, err := send.Send(context.Background(), send.Options{Target: tg, Paths: c.Paths, Info: send.PackageInfo{Name: c.Name},
		StateDir: c.StateDir, Streams: c.Streams, Large: c.Large,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println(res.PackageID)
	return 0
}

func childCmd(t *testing.T, ctx context.Context, c childSend) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	return cmd, &out, &errOut
}

// oneBuffer is the slack the issue allows the second run: at most one
// sendfile step (1 MiB) beyond the bytes the server was missing.
const oneBuffer = 1 << 20

func TestSIGKILLedSendResumesEveryUploadFromTheServersOffset(t *testing.T) {
	cases := []struct {
		name    string
		streams int
		large   int64 // split threshold
	}{
		{"one whole upload", 1, 0},
		{"two partial uploads", 2, 4 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := sendtest.Start(t)
			// 8 MiB/s per connection: the child is still in the middle of
			// the file when it is killed.
			srv.Throttle(8 << 20)
			dir := t.TempDir()
			data := writeFile(t, filepath.Join(dir, "clip.mov"), 40<<20)
			total := int64(len(data))
			cs := childSend{To: srv.URL + "/p/demo", Paths: []string{filepath.Join(dir, "clip.mov")}, Name: "rushes",
				StateDir: t.TempDir(), Streams: c.streams, Large: c.large}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd, _, stderr := childCmd(t, ctx, cs)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			for srv.Received() < 12<<20 {
				select {
				case err := <-exited:
					t.Fatalf("the sender exited (%v) before it was killed; stderr:\n%s", err, stderr)
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited
			// The server goes on reading what the kernel buffered for the
			// dead sender; what it stored is known once its PATCHes end.
			for srv.ActivePatches() > 0 {
				if ctx.Err() != nil {
					t.Fatal("the server's PATCHes did not end after the sender was killed")
				}
				time.Sleep(10 * time.Millisecond)
			}
			first := srv.Received()
			if first >= total {
				t.Fatalf("the server received all %d bytes before the kill; the test needs a file in flight", total)
			}
			missing := total - first

			srv.Throttle(0)
			cmd, stdout, stderr := childCmd(t, ctx, cs)
			if err := cmd.Run(); err != nil {
				t.Fatalf("second run: %v; stderr:\n%s", err, stderr)
			}
			second := srv.Received() - first
			t.Logf("first run stored %d of %d bytes; the second run sent %d (missing %d)", first, total, second, missing)
			if second > missing+oneBuffer {
				t.Errorf("the second run sent %d bytes; the server was missing %d (first run stored %d of %d): the file in flight was sent again",
					second, missing, first, total)
			}
			if ids := srv.Packages(); len(ids) != 1 {
				t.Errorf("server has %d packages, want the one package resumed", len(ids))
			}
			assertPackage(t, srv, strings.TrimSpace(stdout.String()), map[string][]byte{"clip.mov": data})
		})
	}
}
