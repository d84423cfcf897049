package delivery_test

import (
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
)

// TestKeyframesAreAskedForEveryFile: ferry asks iconik for keyframes of
// every file whatever its extension (iconik decides what it can
// transcode). A file asked for alone records iconik's answer: the keyframe
// job (200) or skipped (204, the storage's transcode-ignore pattern
// matched); files asked for together (one bulk call) record the bulk job,
// which leaves out what the pattern matches.
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
		{"sidecar.json", true}, // iconik answers 204, or leaves it out of a bulk job
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
		jobs, err := iconik.Collect(e.cl.JobList(e.ctx, iconik.JobListParams{ObjectID: f.AssetID, Type: "TRANSCODE"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.skipped {
			if len(jobs) != 0 || (f.KeyframeJobID == "") != f.KeyframesSkipped {
				t.Errorf("%s: %d transcode jobs in iconik, job %q recorded, skipped %v; want none in iconik", c.path, len(jobs), f.KeyframeJobID, f.KeyframesSkipped)
			}
			continue
		}
		if f.KeyframesSkipped || len(jobs) != 1 || jobs[0].ID != f.KeyframeJobID {
			t.Errorf("%s: keyframe job %q recorded, skipped %v, %d transcode jobs in iconik; want the one recorded", c.path, f.KeyframeJobID, f.KeyframesSkipped, len(jobs))
		}
	}
}
