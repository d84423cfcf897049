package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
