package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/server"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestMigrateDBMovesASingleMachineOntoPostgres fills a single machine's
// SQLite database the way people do (an admin, a token, a portal, a package
// sent with ferry send), copies it with `ferry admin migrate-db` into a real
// PostgreSQL, and starts the server on PostgreSQL with the same data
// directory: the same token signs in and the package reads the same.
func TestMigrateDBMovesASingleMachineOntoPostgres(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dsn := testbed.Postgres(t).CreateDatabase(t)
	data := t.TempDir()
	tok := adminToken(t, data)

	get := func(base, path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	// The real serve path (Serve starts the job workers: the sender's
	// receipt must be sent before the move, or migrate-db refuses).
	serve := func(cfg config.Config) (string, func()) {
		t.Helper()
		cfg.Addr = "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
		ctx, cancel := context.WithCancel(t.Context())
		app, err := server.Open(ctx, cfg, server.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() { done <- app.Serve(ctx, func(a string) { ready <- a }) }()
		select {
		case a := <-ready:
			return "http://" + a, func() { cancel(); <-done; app.Close() }
		case err := <-done:
			t.Fatalf("serve: %v", err)
		}
		return "", nil
	}

	cfg := config.Default("")
	cfg.DataDir = data
	base, stop := serve(cfg)
	req, _ := http.NewRequest("POST", base+"/api/v1/portals", strings.NewReader(`{"name":"Dailies","slug":"dailies"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("creating a portal: %v %v", err, resp)
	}
	dir, _ := sendFixture(t)
	code, pkgID, errOut := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", base+"/p/dailies", "--name", "Day 1", "--email", "dop@example.com", "--quiet")
	if code != 0 {
		t.Fatalf("ferry send: %d %s", code, errOut)
	}
	pkgID = strings.TrimSpace(pkgID)
	before := get(base, "/api/v1/packages/"+pkgID)
	portalsBefore := get(base, "/api/v1/portals")
	sqlite, err := sql.Open("sqlite", db.SQLiteDSN(filepath.Join(data, "ferry.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer sqlite.Close()
	for n := 1; n > 0; {
		if n, err = pendingJobs(t.Context(), sqlite); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop()

	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     string // in stdout or stderr
	}{
		{"not a PostgreSQL URL", []string{"--to", "mysql://x"}, 2, "PostgreSQL URL"},
		{"the source must be SQLite", []string{"--to", dsn, "--database-url", dsn}, 2, "unset --database-url"},
		{"copies into the empty database", []string{"--to", dsn}, 0, "packages"},
		{"refuses a database that holds ferry data", []string{"--to", dsn}, 1, "already holds ferry data"},
	}
	for _, tc := range cases {
		args := append([]string{"admin", "--data", data, "migrate-db"}, tc.args...)
		code, out, errOut := runCaptured(t, args...)
		if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
			t.Fatalf("%s: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.name, code, tc.wantCode, out, errOut, tc.want)
		}
	}

	cfg.DatabaseURL = dsn
	base, stop = serve(cfg)
	defer stop()
	// The server answers byte for byte what it answered on SQLite: ids,
	// names, times, sizes, hashes, states (and the token, stored only
	// hashed, still signs in).
	if after := get(base, "/api/v1/packages/"+pkgID); after != before {
		t.Fatalf("after the move to PostgreSQL the package reads\n%s\nwhere it read\n%s", after, before)
	}
	if after := get(base, "/api/v1/portals"); after != portalsBefore {
		t.Fatalf("after the move to PostgreSQL the portals read\n%s\nwhere they read\n%s", after, portalsBefore)
	}
}
