package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryEnvironmentVariableFerryReadsIsDescribed scans ferry's own
// sources (not tests, test harnesses or benchmarks) for environment
// variables read by name and fails when one is neither a setting nor in
// OtherEnv: docs/config.md is generated from those two lists.
func TestEveryEnvironmentVariableFerryReadsIsDescribed(t *testing.T) {
	known := map[string]bool{}
	for _, d := range Describe() {
		known[d.Env] = true
	}
	for _, e := range OtherEnv {
		known[e.Name] = true
	}
	reads := regexp.MustCompile(`(?:Getenv|LookupEnv)\("([A-Za-z0-9_]+)"\)|(?m)^\s*(?:const\s+)?\w*Env\w*\s*=\s*"(FERRY_[A-Z0-9_]+)"`)
	root := filepath.Join("..", "..")
	found := 0
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				// Test harnesses read their own variables (CI, FERRY_CACHE); a
				// deployment never sets those.
				if name := d.Name(); name == "testbed" || name == "testdata" || strings.HasSuffix(name, "test") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range reads.FindAllStringSubmatch(string(src), -1) {
				name := m[1] + m[2]
				found++
				if !known[name] {
					t.Errorf("%s reads %s, which neither config.Describe nor config.OtherEnv lists: add it to OtherEnv and run `go generate ./cmd/ferry`", path, name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found < 3 {
		t.Fatalf("found only %d environment reads: the scan no longer sees ferry's sources", found)
	}
}

// TestDescribeListsEverySettingWithItsOutOfTheBoxDefault keeps the generated
// reference independent of the environment it is generated in.
func TestDescribeListsEverySettingWithItsOutOfTheBoxDefault(t *testing.T) {
	t.Setenv("FERRY_ADDR", "0.0.0.0:1")
	t.Setenv("XDG_DATA_HOME", "/elsewhere")
	got := map[string]Described{}
	for _, d := range Describe() {
		got[d.Flag] = d
	}
	c := Default("")
	if len(got) != len(c.settings()) {
		t.Fatalf("Describe lists %d settings, Config has %d", len(got), len(c.settings()))
	}
	for flag, want := range map[string]string{"addr": "127.0.0.1:8080", "disk-reserve": "1GiB", "delivery-workers": "8", "secure-cookies": "false"} {
		if got[flag].Default != want {
			t.Errorf("--%s: default %q, want %q", flag, got[flag].Default, want)
		}
	}
	if !got["secret-key"].EnvOnly || got["secret-key"].Env != "FERRY_SECRET_KEY" {
		t.Errorf("the secret key must be described as environment only: %+v", got["secret-key"])
	}
}
