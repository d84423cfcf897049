package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
)

// realServer is the real server wiring on a loopback socket, with an admin
// user and API token made the way an operator makes them.
type realServer struct {
	URL, Token, Data string
	app              *server.App
}

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	data := t.TempDir()
	tok := adminToken(t, data)
	cfg := config.Default("")
	cfg.DataDir = data
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	return &realServer{URL: srv.URL, Token: tok, Data: data, app: app}
}

// adminToken makes an admin user and an API token in the data directory
// the way an operator does, and returns the token.
func adminToken(t *testing.T, data string) string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCaptured(t, "admin", "--data", data, "create-user", "--email", "ops@example.com", "--password-file", pw); code != 0 {
		t.Fatalf("create-user: %d %s %s", code, out, errOut)
	}
	code, tok, errOut := runCaptured(t, "admin", "--data", data, "create-token", "--email", "ops@example.com")
	if code != 0 {
		t.Fatalf("create-token: %d %s", code, errOut)
	}
	return strings.TrimSpace(tok)
}

// call makes an admin API call and decodes its answer into out (if not nil).
func (s *realServer) call(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendExitCodes: 2 only for the caller's own mistakes on the command
// line; every refusal by a real server is 1 with the server's own message.
func TestSendExitCodes(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := startRealServer(t)
	portals := map[string]string{
		"open":     `{"name":"Open","slug":"open"}`,
		"movonly":  `{"name":"Mov only","slug":"movonly","limits":{"allowed_extensions":["mov"]}}`,
		"noexe":    `{"name":"No exe","slug":"noexe","limits":{"denied_extensions":["exe"]}}`,
		"small":    `{"name":"Small files","slug":"small","limits":{"max_file_size":1000}}`,
		"smallpkg": `{"name":"Small package","slug":"smallpkg","limits":{"max_package_size":1000}}`,
		"onefile":  `{"name":"One file","slug":"onefile","limits":{"max_file_count":1}}`,
		"locked":   `{"name":"Locked","slug":"locked","password":"letmein"}`,
		"closed":   `{"name":"Closed","slug":"closed","active":false}`,
	}
	for _, body := range portals {
		srv.call(t, "POST", "/api/v1/portals", body, nil)
	}
	dir := t.TempDir()
	mk := func(rel string, n int) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notes := mk("notes.txt", 10)
	clip := mk("clip.mov", 2000)
	tool := mk("tool.exe", 10)
	reserved := mk("names/CON.mov", 10)
	trailing := mk("names/take1.", 10)
	small := mk("small.mov", 10)
	to := func(slug string) string { return srv.URL + "/p/" + slug }
	cases := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"usage: no path", []string{"send", "--to", to("open")}, 2, "at least one file or folder"},
		{"usage: unknown flag", []string{"send", small, "--to", to("open"), "--bogus"}, 2, "unknown flag"},
		{"usage: missing file", []string{"send", filepath.Join(dir, "nope"), "--to", to("open")}, 2, "cannot read"},
		{"extension not allowed", []string{"send", notes, "--to", to("movonly")}, 1, "accepts only files ending in .mov"},
		{"extension denied", []string{"send", tool, "--to", to("noexe")}, 1, "files ending in .exe are not accepted"},
		{"reserved name", []string{"send", reserved, "--to", to("open")}, 1, "is reserved for a device"},
		{"name ending in a dot", []string{"send", trailing, "--to", to("open")}, 1, "ends with a dot or a space"},
		{"file too large", []string{"send", clip, "--to", to("small")}, 1, "accepts files of at most 1000 bytes"},
		{"package too large", []string{"send", clip, "--to", to("smallpkg")}, 1, "at most 1000 bytes per package"},
		{"too many files", []string{"send", small, notes, "--to", to("onefile")}, 1, "at most 1 files"},
		{"wrong password", []string{"send", small, "--to", to("locked"), "--password", "nope"}, 1, "The upload password is not correct."},
		{"no password", []string{"send", small, "--to", to("locked")}, 1, "needs the upload password"},
		{"unknown portal", []string{"send", small, "--to", to("missing")}, 1, "There is no portal at /p/missing"},
		{"inactive portal", []string{"send", small, "--to", to("closed")}, 1, "not accepting uploads"},
		{"wrong API token", []string{"send", small, "--to", srv.URL, "--token", "bad"}, 1, "credentials are unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCaptured(t, append(c.args, "--again", "--email", "me@example.com")...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
			// The server's sentence, not the client's chain of what it was doing.
			if c.code == 1 && strings.Contains(stderr, srv.URL) {
				t.Errorf("stderr %q carries internal detail (URLs); want the server's message", stderr)
			}
			if c.code != 0 && stdout != "" {
				t.Errorf("stdout %q on failure, want nothing", stdout)
			}
		})
	}
}
