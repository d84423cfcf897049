package emulator_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// TestEmulatorAnswersAChangeOnlyOnceItIsOnDisk: when a create is answered,
// the state file on disk already holds the object, so a kill -9 right after
// the answer loses nothing (the process-level proof is
// crashtest.TestServeDemoIconikKeepsWhatItAnsweredAcrossSIGKILL). Changes
// made together share snapshots; every one of them is on disk when answered.
func TestEmulatorAnswersAChangeOnlyOnceItIsOnDisk(t *testing.T) {
	dir := t.TempDir()
	e := emulatortest.Start(t, emulator.Options{DataDir: dir})
	c := newClient(t, e, "admin")
	type created struct {
		id  string
		err string
	}
	out := make(chan created)
	for i := range 8 {
		go func() {
			r := c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "durable " + string(rune('a'+i))})
			id := r.str("id")
			if r.Status != http.StatusCreated {
				out <- created{err: http.StatusText(r.Status)}
				return
			}
			// Read the disk the moment the answer arrived.
			raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
			if err != nil {
				out <- created{err: err.Error()}
				return
			}
			if !strings.Contains(string(raw), id) {
				out <- created{id: id, err: "answered but not on disk"}
				return
			}
			out <- created{id: id}
		}()
	}
	for range 8 {
		if got := <-out; got.err != "" {
			t.Errorf("collection %s: %s", got.id, got.err)
		}
	}
}
