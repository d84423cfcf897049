package child

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik"
)

// Emulator is an iconik emulator in its own process (`ferry iconik-emulator`),
// which the kills and signals aimed at ferry never touch.
type Emulator struct {
	Proc *Proc
	URL  string // http://host:port
	Dir  string // its --data directory
	// AppID and Token are its seeded "admin" credential; Client speaks as it.
	AppID, Token string
	Client       *iconik.Client
	// S3Storage is the id of its FILES storage on S3, the one the tests deliver to.
	S3Storage string
}

// StartEmulator starts the emulator from bin with its data under dir and the
// extra flags given (latency, --check-spec, ...), waits until it answers, and
// reads its admin credential and S3 storage.
func StartEmulator(t *testing.T, bin, logPath, dir string, args ...string) *Emulator {
	t.Helper()
	addr := FreeAddr(t)
	e := &Emulator{URL: "http://" + addr, Dir: dir}
	e.Proc = Start(t, bin, logPath, append([]string{"iconik-emulator", "--addr", addr, "--data", dir}, args...)...)
	WaitHTTP(t, e.URL+"/", e.Proc)
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds []struct {
		Name  string `json:"name"`
		AppID string `json:"app_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.Name == "admin" {
			e.AppID, e.Token = c.AppID, c.Token
		}
	}
	if e.AppID == "" {
		t.Fatalf("the emulator's credentials.json has no admin: %s", b)
	}
	if e.Client, err = iconik.New(iconik.Options{BaseURL: e.URL, AppID: e.AppID, Token: e.Token, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	for st, err := range e.Client.StorageList(t.Context(), iconik.StorageListParams{Purpose: "FILES", Method: "S3"}) {
		if err != nil {
			t.Fatal(err)
		}
		e.S3Storage = st.ID
	}
	if e.S3Storage == "" {
		t.Fatal("the emulator lists no S3 FILES storage")
	}
	return e
}

// AdminToken makes an admin with `ferry admin create-user` and returns a new
// API token of theirs from `ferry admin create-token`; args say where ferry's
// state is (--data, and --database-url for PostgreSQL).
func AdminToken(t *testing.T, bin, email string, args ...string) string {
	t.Helper()
	run := func(sub ...string) []byte {
		cmd := exec.Command(bin, append(append([]string{"admin"}, sub...), args...)...)
		cmd.Stdin = strings.NewReader("child-test-password\n")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("ferry admin %s: %v: %s", sub[0], err, stderr)
		}
		return out
	}
	run("create-user", "--email", email, "--password-file", "-")
	return strings.TrimSpace(string(run("create-token", "--email", email)))
}
