package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry/internal/config"
)

// TestConfigDocIsUpToDate fails when docs/config.md no longer matches the
// flags: someone added or changed a flag, an environment variable or a
// default without regenerating the reference.
func TestConfigDocIsUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "config.md")
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (create it with `%s`)", path, err, configDocRegen)
	}
	want := configDoc(newRootCmd())
	if string(have) != want {
		t.Fatalf("docs/config.md is stale: run `%s` and commit the result\n%s", configDocRegen, firstDifference(string(have), want))
	}
}

// firstDifference shows the first line where the committed file and the
// generated one part.
func firstDifference(have, want string) string {
	h, w := strings.Split(have, "\n"), strings.Split(want, "\n")
	for i := range max(len(h), len(w)) {
		var hl, wl string
		if i < len(h) {
			hl = h[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if hl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + hl + "\n  generated: " + wl
		}
	}
	return ""
}

// TestDeployGuideNamesOnlyRealSettings fails when docs/deploy.md names a
// FERRY_* variable or a flag on a `ferry ...` command line that ferry does
// not have: a renamed flag must not leave the guide pointing at nothing.
func TestDeployGuideNamesOnlyRealSettings(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	flags, envs := map[string]bool{}, map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { flags[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for _, d := range config.Describe() {
		flags[d.Flag], envs[d.Env] = true, true
	}
	for _, e := range config.OtherEnv {
		envs[e.Name] = true
	}
	for _, env := range regexp.MustCompile(`\bFERRY_[A-Z0-9_]+`).FindAllString(string(guide), -1) {
		if !envs[env] && env != "FERRY_SITE" && env != "FERRY_UPSTREAMS" { // the Caddyfile's own placeholders
			t.Errorf("docs/deploy.md names %s, which ferry does not read", env)
		}
	}
	// Flags written as `--name` anywhere, and on lines running ferry itself.
	for _, m := range regexp.MustCompile("`--([a-z0-9-]+)").FindAllStringSubmatch(string(guide), -1) {
		if !flags[m[1]] {
			t.Errorf("docs/deploy.md names --%s, which no ferry command has", m[1])
		}
	}
	for line := range strings.SplitSeq(string(guide), "\n") {
		_, cmdline, ok := strings.Cut(line, "ferry ")
		if !ok || !regexp.MustCompile(`^(serve|admin|send|healthcheck|version|iconik-emulator)\b`).MatchString(cmdline) {
			continue
		}
		for _, m := range regexp.MustCompile(`\s--([a-z0-9-]+)`).FindAllStringSubmatch(cmdline, -1) {
			if !flags[m[1]] {
				t.Errorf("docs/deploy.md runs ferry with --%s, which no ferry command has: %s", m[1], line)
			}
		}
	}
}
