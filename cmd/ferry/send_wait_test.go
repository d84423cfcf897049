package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/server"
)

// TestSendWaitFollowsDeliveriesIntoIconik sends to the portal of a real
// `ferry serve --demo` (its own process: the real server, delivery jobs and
// the iconik emulator with its S3 data plane) with --wait: a line per
// delivery as it moves, and exit 0 once every file is delivered.
func TestSendWaitFollowsDeliveriesIntoIconik(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	old := waitPoll
	waitPoll = 200 * time.Millisecond
	defer func() { waitPoll = old }()
	_, out := startFerry(t, "serve", "--demo", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	portalURL := ""
	for portalURL == "" {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("ferry serve --demo ended before printing its portal: %v", err)
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "portal:" {
			portalURL = f[1]
		}
	}
	dir, data := sendFixture(t)
	code, stdout, stderr := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", portalURL, "--email", "me@example.com", "--name", "Day 1", "--wait")
	if code != 0 {
		t.Fatalf("send --wait: exit %d, stderr:\n%s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(id) {
		t.Errorf("stdout %q is not the package id alone", stdout)
	}
	want := regexp.MustCompile(`(?m)^delivery \S+: delivered, (\d+) of (\d+) files delivered$`)
	m := want.FindStringSubmatch(stderr)
	if m == nil || m[1] != m[2] || m[2] != "2" || len(data) != 2 {
		t.Errorf("stderr has no \"delivery ...: delivered, 2 of 2 files delivered\" line:\n%s", stderr)
	}

	// The same command again answers with that package and follows it too.
	code, stdout, stderr = runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", portalURL, "--email", "me@example.com", "--name", "Day 1", "--wait")
	if code != 0 || strings.TrimSpace(stdout) != id || !strings.Contains(stderr, "already sent as package "+id) || !want.MatchString(stderr) {
		t.Errorf("the same send --wait again: exit %d, stdout %q, stderr:\n%s\nwant exit 0, %s, already sent and the delivered line", code, stdout, stderr, id)
	}

	// --quiet keeps the per-delivery lines off too; the exit code still tells.
	code, stdout, stderr = runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", portalURL, "--email", "me@example.com", "--name", "Day 1", "--wait", "-q")
	if code != 0 || strings.TrimSpace(stdout) != id || strings.Contains(stderr, "delivery ") {
		t.Errorf("send --wait -q: exit %d, stdout %q, stderr %q; want exit 0, the id and no delivery lines", code, stdout, stderr)
	}
}

// TestSendWaitExitsOneNamingTheFilesNotDelivered: a real server delivering
// (jobs running, as `ferry serve` runs them) into an iconik emulator that
// refuses to create the asset of one file. send --wait reports that file
// with the reason and exits 1; stdout still holds the package id.
func TestSendWaitExitsOneNamingTheFilesNotDelivered(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	old := waitPoll
	waitPoll = 200 * time.Millisecond
	defer func() { waitPoll = old }()
	emu := emulatortest.Start(t, emulator.Options{}, emulatortest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/API/assets/v1/assets") {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				if bytes.Contains(b, []byte(`"bad.mov"`)) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					w.Write([]byte(`{"errors": ["title refused by the test"]}`))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}))
	data := t.TempDir()
	srv := &realServer{Token: adminToken(t, data), Data: data}
	cfg := config.Default("")
	cfg.DataDir, cfg.Addr = data, "127.0.0.1:0"
	// Give up on a file after two quick tries (the default is ten, spaced
	// by doubling seconds; iconik's 400 counts as maybe-created, so retried).
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true, Delivery: func(o *delivery.Options) {
		o.MaxAttempts = 2
		o.RetryBackoff = func(int) time.Duration { return 10 * time.Millisecond }
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	bound := make(chan string, 1)
	go func() { served <- app.Serve(ctx, func(addr string) { bound <- addr }) }()
	t.Cleanup(func() { stop(); <-served })
	select {
	case addr := <-bound:
		srv.URL = "http://" + addr
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}

	cred := emu.Cred("admin")
	creds := fmt.Sprintf(`"base_url":%q,"app_id":%q,"token":%q`, emu.URL, cred.AppID, cred.Token)
	var v struct {
		Verification struct {
			Storages []struct{ ID, Name string }
		}
	}
	srv.call(t, "POST", "/api/v1/connections/verify", "{"+creds+"}", &v)
	storage := ""
	for _, s := range v.Verification.Storages {
		if s.Name == "s3" {
			storage = s.ID
		}
	}
	var c struct{ Connection struct{ ID string } }
	srv.call(t, "POST", "/api/v1/connections", fmt.Sprintf(`{"name":"Tenant","storage_id":%q,%s}`, storage, creds), &c)
	srv.call(t, "POST", "/api/v1/portals", fmt.Sprintf(`{"name":"Dailies","slug":"dailies","connection_ids":[%q]}`, c.Connection.ID), nil)

	dir := t.TempDir()
	for _, name := range []string{"good.mov", "bad.mov"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("content of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCaptured(t, "send", filepath.Join(dir, "good.mov"), filepath.Join(dir, "bad.mov"),
		"--to", srv.URL+"/p/dailies", "--email", "me@example.com", "--wait")
	if code != 1 {
		t.Fatalf("send --wait with a file iconik refuses: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if strings.TrimSpace(stdout) == "" {
		t.Errorf("stdout is empty; the package was sent and its id belongs there")
	}
	last := strings.Split(strings.TrimSpace(stderr), "\n")
	// The reason is the delivery's last error for the file (after a 400 it
	// is delivery's own wait for iconik's index, not iconik's message).
	if l := last[len(last)-1]; !regexp.MustCompile(`not delivered into iconik: bad\.mov \(.+\)$`).MatchString(l) {
		t.Errorf("last stderr line %q does not name bad.mov (alone) with a reason; stderr:\n%s", l, stderr)
	}
	if !regexp.MustCompile(`(?m)^delivery \S+: partially failed, 1 of 2 files delivered$`).MatchString(stderr) {
		t.Errorf("no progress line saying the delivery partially failed; stderr:\n%s", stderr)
	}
}
