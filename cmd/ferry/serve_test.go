package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
)

func TestAdminCommands(t *testing.T) {
	data := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"create a user", []string{"admin", "--data", data, "create-user", "--email", "Ops@Example.com", "--password-file", pw}, 0, "created user ops@example.com"},
		{"the same user twice", []string{"admin", "--data", data, "create-user", "--email", "ops@example.com", "--password-file", pw}, 1, ""},
		{"email is required", []string{"admin", "--data", data, "create-user", "--password-file", pw}, 2, ""},
		{"not an email", []string{"admin", "--data", data, "create-user", "--email", "ops", "--password-file", pw}, 1, ""},
		{"token for a known user", []string{"admin", "--data", data, "create-token", "--email", "ops@example.com"}, 0, ""},
		{"token for an unknown user", []string{"admin", "--data", data, "create-token", "--email", "nobody@example.com"}, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCaptured(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.wantCode, out, errOut)
			}
		})
	}
}

// TestSendToARealServer runs `ferry send` against the real server wiring:
// the folder arrives complete and the package is finalized.
func TestSendToARealServer(t *testing.T) {
	// ferry send remembers finished sends in the user cache dir: keep the test's out of the real one.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	data := t.TempDir()
	tok := adminToken(t, data)
	cfg := config.Default("")
	cfg.DataDir = data
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	call := func(method, path, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
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
	call("POST", "/api/v1/portals", `{"name":"Dailies","slug":"dailies","password":"letmein"}`, nil)

	dir, files := sendFixture(t)
	code, out, errOut := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", srv.URL+"/p/dailies", "--password", "letmein",
		"--email", "dop@example.com", "--name", "Day 1", "--quiet")
	if code != 0 {
		t.Fatalf("ferry send: exit %d: %s %s", code, out, errOut)
	}
	var got struct {
		Package struct {
			State string
			Files []struct {
				Path, State, SHA256 string
				Size                int64
			}
		}
	}
	call("GET", "/api/v1/packages/"+strings.TrimSpace(out), "", &got)
	if got.Package.State != "finalized" || len(got.Package.Files) != len(files) {
		t.Fatalf("package after ferry send: %+v", got.Package)
	}
	for _, f := range got.Package.Files {
		if f.State != "complete" || f.Size != int64(len(files[f.Path])) {
			t.Fatalf("file %+v does not match what was sent", f)
		}
	}

	// Without --quiet the sender is told where its receipt is, and it lists
	// what was sent.
	code, _, errOut = runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", srv.URL+"/p/dailies", "--password", "letmein",
		"--email", "dop@example.com", "--name", "Day 2")
	_, receipt, found := strings.Cut(errOut, "receipt (files, and whether they are delivered): ")
	receipt, _, _ = strings.Cut(receipt, "\n")
	if code != 0 || !found || !strings.HasPrefix(receipt, srv.URL+"/r/") {
		t.Fatalf("ferry send printed no receipt: exit %d: %s", code, errOut)
	}
	resp, err := http.Get(receipt)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Day 2") {
		t.Fatalf("the receipt %s: %d %s", receipt, resp.StatusCode, page)
	}
}
