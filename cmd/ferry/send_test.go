package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send/sendtest"
)

// runCaptured runs ferry with args and returns its exit code, stdout and stderr.
func runCaptured(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	os.Stdout, os.Stderr = wo, we
	outc, errc := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outc <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	code := run(args)
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outc, <-errc
}

func sendFixture(t *testing.T) (dir string, data map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	data = map[string][]byte{}
	for p, n := range map[string]int{"proj/a.mov": 200 << 10, "proj/sub/b.txt": 17} {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		data[p] = b
	}
	if err := os.WriteFile(filepath.Join(dir, "proj/.DS_Store"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func TestSendCommandBadUsageExits2(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, _ := sendFixture(t)
	proj := filepath.Join(dir, "proj")
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no path", []string{"send", "--to", "https://h.example/p/x"}, "at least one file or folder"},
		{"no --to", []string{"send", proj}, "--to is required"},
		{"bad URL", []string{"send", proj, "--to", "ftp://h.example/p/x"}, "must be an http(s) URL"},
		{"server URL without token", []string{"send", proj, "--to", "https://h.example"}, "needs --token"},
		{"missing path", []string{"send", filepath.Join(dir, "nope"), "--to", "https://h.example/p/x"}, "cannot read"},
		{"zero streams", []string{"send", proj, "--to", "https://h.example/p/x", "--streams", "0"}, "--streams must be between"},
		{"unknown flag", []string{"send", proj, "--to", "https://h.example/p/x", "--bogus"}, "unknown flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCaptured(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, c.wantErr)
			}
		})
	}
}

func TestSendCommandUploadsFolderAndPrintsPackageID(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	dir, data := sendFixture(t)
	code, stdout, stderr := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", srv.URL+"/p/demo",
		"--name", "Rushes", "--email", "me@example.com", "--message", "hello")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	state, files := srv.PackageState(id)
	if state != "finalized" || len(files) != len(data) {
		t.Fatalf("stdout %q: package state %q with %d files, want finalized with %d", stdout, state, len(files), len(data))
	}
	for p, want := range data {
		got, err := files[p].Bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: bytes differ on the server (err %v)", p, err)
		}
	}
	if stdout != id+"\n" {
		t.Errorf("stdout %q, want the package id alone", stdout)
	}
	if want := `sent "Rushes" as package ` + id + `: 2 files, 200.0 KiB`; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say what was sent (%q):\n%s", want, stderr)
	}
	if !strings.Contains(stderr, "done: proj/a.mov") {
		t.Errorf("stderr lacks plain progress lines when not a terminal:\n%s", stderr)
	}
}

func TestSendCommandWithTokenUsesAdminAPI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	dir, _ := sendFixture(t)
	code, stdout, stderr := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", srv.URL, "--token", sendtest.APIToken, "-q")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if state, _ := srv.PackageState(strings.TrimSpace(stdout)); state != "finalized" {
		t.Errorf("package %q state %q, want finalized", stdout, state)
	}
}

func TestSendCommandShowsServerRefusalAndExits1(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	srv.AddPortal("locked", "s3cret")
	dir, _ := sendFixture(t)
	cases := []struct {
		name, to, password, want string
	}{
		{"wrong password", srv.URL + "/p/locked", "nope", "The upload password is wrong."},
		{"unknown portal", srv.URL + "/p/missing", "", `There is no portal "missing".`},
		{"wrong API token", srv.URL, "", "The API token is missing or wrong."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"send", filepath.Join(dir, "proj"), "--to", c.to, "--password", c.password}
			if c.name == "wrong API token" {
				args = append(args, "--token", "bad")
			}
			code, stdout, stderr := runCaptured(t, args...)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, stderr, c.want)
			}
			if strings.Contains(stderr, "nope") || strings.Contains(stdout, "nope") {
				t.Errorf("the password was printed: %q", stderr)
			}
		})
	}
}

func TestSendCommandResumesAfterCtrlC(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	srv.Throttle(2 << 20) // 2 MiB/s: the upload is still running when Ctrl-C comes
	// Our own subscription keeps a late SIGINT from killing the test binary.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	dir := t.TempDir()
	data := make([]byte, 6<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "clip.mov"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"send", filepath.Join(dir, "clip.mov"), "--to", srv.URL + "/p/demo", "--email", "me@example.com"}

	go func() {
		for srv.Received() < 1<<20 {
			time.Sleep(10 * time.Millisecond)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT) // caught by ferry send's signal handler
	}()
	code, _, stderr := runCaptured(t, args...)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	const want = "ferry: send interrupted: run the same command again to resume"
	if code != 1 || lines[len(lines)-1] != want {
		t.Fatalf("interrupted run: exit %d, stderr %q; want exit 1 and last line %q", code, stderr, want)
	}
	first := srv.Received()
	if first >= int64(len(data)) {
		t.Fatalf("the first run delivered all %d bytes; the test needs an interrupted upload", first)
	}

	srv.Throttle(0)
	code, stdout, stderr := runCaptured(t, args...)
	if code != 0 {
		t.Fatalf("re-run: exit %d, stderr:\n%s", code, stderr)
	}
	if got := srv.Received(); got != int64(len(data)) {
		t.Errorf("server received %d bytes over both runs, want exactly %d (first run %d)", got, len(data), first)
	}
	_, files := srv.PackageState(strings.TrimSpace(stdout))
	if got, err := files["clip.mov"].Bytes(); err != nil || !bytes.Equal(got, data) {
		t.Errorf("server bytes differ after resume (err %v)", err)
	}
}

func TestSendCommandRunAgainSaysAlreadySentAndAgainSendsANewPackage(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	dir, _ := sendFixture(t)
	args := []string{"send", filepath.Join(dir, "proj"), "--to", srv.URL + "/p/demo", "--name", "Rushes", "-q"}
	code, stdout, stderr := runCaptured(t, args...)
	if code != 0 {
		t.Fatalf("first run: exit %d, stderr:\n%s", code, stderr)
	}
	first := strings.TrimSpace(stdout)

	code, stdout, stderr = runCaptured(t, args...)
	if code != 0 || strings.TrimSpace(stdout) != first || !strings.Contains(stderr, "already sent as package "+first+" on ") {
		t.Errorf("second run: exit %d, stdout %q, stderr %q; want exit 0, %s on stdout and \"already sent as package %s on <date>\"", code, stdout, stderr, first, first)
	}
	if n := len(srv.Packages()); n != 1 {
		t.Errorf("server has %d packages after the second run, want 1", n)
	}

	code, stdout, stderr = runCaptured(t, append(args, "--again")...)
	if code != 0 || strings.TrimSpace(stdout) == first || strings.Contains(stderr, "already sent") {
		t.Errorf("run with --again: exit %d, stdout %q, stderr %q; want exit 0 and a new package id", code, stdout, stderr)
	}
	if state, _ := srv.PackageState(strings.TrimSpace(stdout)); state != "finalized" || len(srv.Packages()) != 2 {
		t.Errorf("after --again the server has %d packages, the new one %q; want 2, the new one finalized", len(srv.Packages()), state)
	}

	_, helpOut, helpErr := runCaptured(t, "send", "--help")
	if !strings.Contains(helpOut+helpErr, "--again") {
		t.Errorf("ferry send --help does not document --again")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil || !strings.Contains(string(readme), "--again") {
		t.Errorf("README.md's command table does not mention --again (err %v)", err)
	}
}

// TestSendInATerminalWithoutASizeShowsPlainProgress runs ferry send on a
// real pseudo-terminal that reports no size (what `script -qc "ferry send
// ..." /dev/null` gives, and some CI runners): the bars cannot be drawn
// there, so the plain progress lines must be.
func TestSendInATerminalWithoutASizeShowsPlainProgress(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed: no way to get a pseudo-terminal")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	dir, _ := sendFixture(t)
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	line := strings.Join([]string{quote(os.Args[0]), "-test.run=^TestHelperFerryProcess$", "--",
		"send", quote(filepath.Join(dir, "proj")), "--to", quote(srv.URL + "/p/demo")}, " ")
	cmd := exec.Command(scriptBin, "-qc", line, "/dev/null")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stdin = nil // not a terminal: script's pty gets no size
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ferry send under script: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "done: proj/a.mov") || !strings.Contains(string(out), "sent ") {
		t.Errorf("no progress lines on a terminal without a size; it showed:\n%q", out)
	}
}

// TestResumedSendSaysHowMuchIsDoneFirst interrupts a send of two files after
// the first is on the server, then checks that the next run's first line says
// it resumes, with what is done and what is left.
func TestResumedSendSaysHowMuchIsDoneFirst(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := sendtest.Start(t)
	srv.Throttle(2 << 20)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	dir := t.TempDir()
	for name, n := range map[string]int{"a.txt": 17, "b.mov": 6 << 20} {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"send", filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.mov"), "--to", srv.URL + "/p/demo", "--streams", "1"}
	go func() {
		for srv.Received() < 1<<20 {
			time.Sleep(10 * time.Millisecond)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	if code, _, stderr := runCaptured(t, args...); code != 1 {
		t.Fatalf("interrupted run: exit %d, stderr %q", code, stderr)
	}
	srv.Throttle(0)
	code, _, stderr := runCaptured(t, args...)
	if code != 0 {
		t.Fatalf("re-run: exit %d, stderr:\n%s", code, stderr)
	}
	first, _, _ := strings.Cut(stderr, "\n")
	if want := "resuming: 1 of 2 files done, 6.0 MiB left"; first != want {
		t.Errorf("the re-run's first line is %q, want %q (stderr:\n%s)", first, want, stderr)
	}
	code, _, stderr = runCaptured(t, append(args, "--again")...)
	if code != 0 || strings.Contains(stderr, "resuming") {
		t.Errorf("a fresh send (--again after a finished one): exit %d, stderr %q; want no resuming line", code, stderr)
	}
}
