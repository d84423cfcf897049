package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
)

// TestAdminTokenCommands creates, lists and revokes API tokens with the CLI,
// and checks with a real server on the same data directory that a revoked
// token is refused at once.
func TestAdminTokenCommands(t *testing.T) {
	data := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCaptured(t, "admin", "--data", data, "create-user", "--email", "ops@example.com", "--password-file", pw); code != 0 {
		t.Fatalf("create-user: %d %s %s", code, out, errOut)
	}
	code, tok, errOut := runCaptured(t, "admin", "--data", data, "create-token", "--email", "ops@example.com", "--name", "nightly", "--expires", "720h")
	tok = strings.TrimSpace(tok)
	if code != 0 || tok == "" || !strings.Contains(errOut, "expires") {
		t.Fatalf("create-token: exit %d, stdout %q, stderr %q", code, tok, errOut)
	}
	if code, out, errOut := runCaptured(t, "admin", "--data", data, "create-token", "--email", "ops@example.com", "--name", "forever"); code != 0 {
		t.Fatalf("create-token without expiry: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// The table names both tokens, their user, and never shows a secret.
	code, table, errOut := runCaptured(t, "admin", "--data", data, "list-tokens")
	if code != 0 || strings.Contains(table, tok) {
		t.Fatalf("list-tokens: exit %d, stdout %q, stderr %q", code, table, errOut)
	}
	var nightlyID string
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == "nightly" {
			nightlyID = f[0]
			if !strings.Contains(line, "ops@example.com") || !strings.Contains(line, "active") || !strings.Contains(line, "never") {
				t.Fatalf("nightly's row: %q", line)
			}
		}
	}
	if nightlyID == "" || !regexp.MustCompile(`(?m)^ID\s+NAME\s+USER\s+CREATED\s+LAST USED\s+EXPIRES\s+STATE`).MatchString(table) ||
		!strings.Contains(table, "forever") {
		t.Fatalf("list-tokens table:\n%s", table)
	}

	// A real server on the same data directory takes the token, then refuses it once revoked.
	cfg := config.Default("")
	cfg.DataDir = data
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	get := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/portals", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("fresh token: %d", got)
	}
	if code, out, errOut := runCaptured(t, "admin", "--data", data, "revoke-token", nightlyID); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke-token: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := get(); got != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", got)
	}
	if _, table, _ := runCaptured(t, "admin", "--data", data, "list-tokens"); !regexp.MustCompile(`(?m)^` + nightlyID + `\s+nightly\s.*revoked`).MatchString(table) {
		t.Fatalf("list after revoke:\n%s", table)
	}

	// Bad input: a clear message and a non-zero exit.
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"expiry not a duration", []string{"create-token", "--email", "ops@example.com", "--expires", "soon"}, 2, "--expires"},
		{"expiry not positive", []string{"create-token", "--email", "ops@example.com", "--expires", "-1h"}, 2, "--expires"},
		{"empty name", []string{"create-token", "--email", "ops@example.com", "--name", ""}, 1, "name"},
		{"revoke needs an id", []string{"revoke-token"}, 2, ""},
		{"revoke an unknown id", []string{"revoke-token", "no-such-id"}, 1, "list-tokens"},
		{"list takes no argument", []string{"list-tokens", "x"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCaptured(t, append([]string{"admin", "--data", data}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) || strings.TrimSpace(out) != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want it to mention %q)", code, tc.wantCode, out, errOut, tc.wantErr)
			}
		})
	}
}
