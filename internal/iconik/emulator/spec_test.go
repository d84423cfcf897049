package emulator

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator/internal/specgen"
)

var update = flag.Bool("update", false, "rewrite spec_gen.go from iconik's OpenAPI files")

// specDir finds ../shared/iconik/spec beside the repository (or
// FERRY_ICONIK_SPEC), where the official specs live.
func specDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FERRY_ICONIK_SPEC"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "iconik", "spec")
		if st, err := os.Stat(filepath.Join(cand, "assets.json")); err == nil && !st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("iconik spec files not found (set FERRY_ICONIK_SPEC): cannot check spec_gen.go")
		}
		dir = parent
	}
}

func TestSpecTablesMatchSpec(t *testing.T) {
	want, err := specgen.Generate(specDir(t), "emulator")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("spec_gen.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("spec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spec_gen.go is stale: run go generate ./internal/iconik/emulator")
	}
}
