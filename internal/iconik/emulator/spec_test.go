package emulator

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator/internal/specgen"
	"github.com/ferryhq/ferry/internal/iconik/ispec"
)

var update = flag.Bool("update", false, "rewrite spec_gen.go from iconik's OpenAPI files")

// specDir is where ispec reads iconik's official specs.
func specDir(t *testing.T) string {
	t.Helper()
	dir, err := ispec.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
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
