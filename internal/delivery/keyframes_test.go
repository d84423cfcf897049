package delivery_test

import (
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
)

// TestKeyframesAreAskedForEveryFile: ferry asks iconik for keyframes of
// every file whatever its extension (iconik decides what it can
// transcode); iconik's 200 records the keyframe job, its 204 (the storage's
// transcode-ignore pattern matched) records the file as skipped.
func TestKeyframesAreAskedForEveryFile(t *testing.T) {
	seed := emulator.DefaultSeed()
	for i := range seed.Storages {
		if seed.Storages[i].Name == "s3" {
			seed.Storages[i].Settings = map[string]any{"transcode_ignore": []any{"*.json"}}
		}
	}
	e := newEnv(t, envOptions{seed: seed})
	conn := e.connect("c", "s3")
	e.createPortal("Frames", conn.ID)
	h := e.newPackage("frames", "Pkg", "k@example.com")
	cases := []struct {
		path    string
		skipped bool
	}{
		{"clip.mp4", false},
		{"camera.mxf", false},
		{"take.MOV", false},
		{"notes.txt", false},
		{"data.bin", false},
		{"sidecar.json", true}, // iconik answers 204
	}
	for _, c := range cases {
		e.put(h, c.path, []byte("bytes of "+c.path))
	}
	e.finalize(h)
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	got := map[string]*db.DeliveryFile{}
	for _, f := range st.Files {
		got[f.Path] = f
	}
	for _, c := range cases {
		f := got[c.path]
		if f == nil {
			t.Fatalf("%s not delivered", c.path)
		}
		if f.KeyframesSkipped != c.skipped || (f.KeyframeJobID == "") != c.skipped {
			t.Errorf("%s: keyframe job %q, skipped %v; want skipped %v", c.path, f.KeyframeJobID, f.KeyframesSkipped, c.skipped)
		}
	}
}
