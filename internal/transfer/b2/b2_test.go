package b2_test

import (
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/transfertest"
)

// B2 has no emulator anywhere (TESTBED.md): the emulator's B2 fake, which
// checks Authorization, X-Bz-File-Name, X-Bz-Content-Sha1, part numbers and
// the SHA-1 list, is the server.
func TestConformanceEmulatorB2(t *testing.T) {
	dir := t.TempDir() // before the plane: cleanups run last-first, so the plane stops writing before dir goes
	p := transfertest.StartPlane(t, dataplane.Options{})
	st := dataplane.Storage{ID: "b2", Method: "B2", Dir: dir}
	transfertest.Run(t, p.Harness(st, func(o transfer.Options) transfer.Uploader { return b2.New(o) }, b2.MinPartSize))
}

func TestEncodeFileName(t *testing.T) {
	for in, want := range map[string]string{
		"a/b c.mov":       "a/b%20c.mov",
		"ü+&=?.txt":       "%C3%BC%2B%26%3D%3F.txt",
		"Folder/x_y-z~.1": "Folder/x_y-z~.1",
	} {
		if got := b2.EncodeFileName(in); got != want {
			t.Errorf("EncodeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
