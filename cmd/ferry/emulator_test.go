package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
)

// helperEnv makes the test binary act as the ferry command (see TestHelperFerryProcess), so the
// emulator runs as its own process: it can be stopped with a real signal like a user would.
const helperEnv = "FERRY_TEST_HELPER_PROCESS"

// TestHelperFerryProcess is not a test: started as a subprocess with helperEnv set, it runs
// ferry with the arguments after "--" and exits with ferry's exit code.
func TestHelperFerryProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only runs as a subprocess of another test")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args))
}

// startFerry runs `ferry args...` as a subprocess; stdout is returned as a line reader.
func startFerry(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperFerryProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	// The emulator must not outlive this test binary if the test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ferry %v: %v", args, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out)
}

func TestEmulatorCommandServesAndStopsCleanly(t *testing.T) {
	data := filepath.Join(t.TempDir(), "emu")
	// Port 0: the kernel picks a free port; the command prints the URL it got.
	cmd, out := startFerry(t, "iconik-emulator", "--addr", "127.0.0.1:0", "--data", data)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the emulator's first line: %v (%q)", err, first)
	}
	go io.Copy(io.Discard, out) // keep the pipe drained
	base, _, ok := strings.Cut(strings.TrimPrefix(first, "iconik emulator at "), " ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q does not name the emulator's URL", first)
	}
	if err := testbed.WaitHTTP(nil, base+"/API/users/v1/users/current/", 30*time.Second); err != nil {
		t.Fatal(err)
	}

	credPath := filepath.Join(data, "credentials.json")
	fi, err := os.Stat(credPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("credentials.json mode %o, want 600: it holds tokens", mode)
	}
	raw, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	var creds []struct {
		Name  string `json:"name"`
		AppID string `json:"app_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatalf("credentials.json: %v", err)
	}
	names := map[string]bool{}
	var admin, readonly struct{ appID, token string }
	for _, c := range creds {
		if c.AppID == "" || c.Token == "" {
			t.Fatalf("credential %q lacks an app id or token", c.Name)
		}
		names[c.Name] = true
		switch c.Name {
		case "admin":
			admin.appID, admin.token = c.AppID, c.Token
		case "readonly":
			readonly.appID, readonly.token = c.AppID, c.Token
		}
	}
	if len(creds) != 3 || !names["admin"] || !names["power"] || !names["readonly"] {
		t.Fatalf("credentials %v, want admin, power and readonly", names)
	}

	for _, c := range []struct {
		name        string
		appID, tok  string
		wantStatus  int
		wantIsAdmin bool
	}{
		{"admin's token", admin.appID, admin.token, http.StatusOK, true},
		{"readonly's token", readonly.appID, readonly.token, http.StatusOK, false},
		{"a wrong token", admin.appID, "not-a-token", http.StatusUnauthorized, false},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/API/users/v1/users/current/", nil)
		req.Header.Set("App-ID", c.appID)
		req.Header.Set("Auth-Token", c.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Fatalf("%s: users/current answered %d, want %d", c.name, resp.StatusCode, c.wantStatus)
		}
		if c.wantStatus == http.StatusOK && body["is_admin"] != c.wantIsAdmin {
			t.Fatalf("%s: is_admin %v, want %v", c.name, body["is_admin"], c.wantIsAdmin)
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the emulator did not stop cleanly on SIGINT: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "state.json")); err != nil {
		t.Fatalf("no state written on stop: %v", err)
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Fatal("the emulator still answers after it stopped")
	}
}

func TestEmulatorCommandBadUsageExits2(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"an unknown flag", []string{"--no-such-flag"}},
		{"a flag without its value", []string{"--addr"}},
		{"a fail rate above 1", []string{"--fail-rate", "2"}},
		{"a negative latency", []string{"--latency", "-1s"}},
		{"a missing-role status that is not an error", []string{"--missing-role-status", "200"}},
		{"an argument", []string{"extra"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "emu")
			// Each case must be refused before anything listens or writes.
			args := append([]string{"iconik-emulator", "--addr", "127.0.0.1:0", "--data", data}, c.args...)
			if code := run(args); code != exitUsage {
				t.Fatalf("ferry %v exited %d, want %d", args, code, exitUsage)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused command created its data directory (%v)", err)
			}
		})
	}
}
