package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
}
