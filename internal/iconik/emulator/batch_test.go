package emulator_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// descriptionView makes the description field and a view holding it.
func descriptionView(c *client) string {
	c.t.Helper()
	c.must(201, c.do("POST", "/API/metadata/v1/fields/", map[string]any{"name": "description", "label": "Description", "field_type": "text"}), "field")
	return c.must(201, c.do("POST", "/API/metadata/v1/views/", map[string]any{"name": "v", "view_fields": []any{map[string]any{"name": "description"}}}), "view").str("id")
}

func descriptionOf(c *client, asset, view string) string {
	c.t.Helper()
	r := c.must(200, c.do("GET", "/API/metadata/v1/assets/"+asset+"/views/"+view+"/", nil), "values")
	mv, _ := r.Body["metadata_values"].(map[string]any)
	d, _ := mv["description"].(map[string]any)
	fv, _ := d["field_values"].([]any)
	if len(fv) == 0 {
		return ""
	}
	v, _ := fv[0].(map[string]any)
	s, _ := v["value"].(string)
	return s
}

func batchBody(ids []string, text string) map[string]any {
	return map[string]any{"object_ids": ids, "metadata_values": map[string]any{
		"description": map[string]any{"field_values": []any{map[string]any{"value": text}}}}}
}

// TestBatchMetadataIsAcceptedThenAppliedToEveryAsset: the batch PUT answers
// 202 at once and the values land on every asset only after the batch
// delay, as iconik schedules the update.
func TestBatchMetadataIsAcceptedThenAppliedToEveryAsset(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{BatchDelay: 300 * time.Millisecond})
	c := newClient(t, e, "admin")
	view := descriptionView(c)
	var ids []string
	for i := range 3 {
		ids = append(ids, c.must(201, c.do("POST", "/API/assets/v1/assets/", map[string]any{"title": fmt.Sprint("a", i)}), "asset").str("id"))
	}
	r := c.must(202, c.do("PUT", "/API/metadata/v1/assets/views/"+view+"/", batchBody(ids, "Package: P")), "batch")
	if len(strings.TrimSpace(string(r.Raw))) != 0 {
		t.Errorf("202 with a body: %s", r.Raw)
	}
	if got := descriptionOf(c, ids[0], view); got != "" {
		t.Fatalf("applied before the batch delay: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for descriptionOf(c, id, view) != "Package: P" {
			if time.Now().After(deadline) {
				t.Fatalf("asset %s never got the batch's description", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, id := range ids {
		if n := e.MetadataWrites("assets", id); n != 1 {
			t.Errorf("asset %s written %d times by one batch", id, n)
		}
	}
	c.must(202, c.do("PUT", "/API/metadata/v1/assets/views/"+view+"/", batchBody(ids[:1], "Package: P")), "batch again")
	for e.MetadataWrites("assets", ids[0]) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("a second batch was not applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBatchMetadataAcceptedBeforeAStopIsAppliedAfterRestart: a 202 is a
// promise kept across a restart.
func TestBatchMetadataAcceptedBeforeAStopIsAppliedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e := emulatortest.Start(t, emulator.Options{DataDir: dir, BatchDelay: time.Hour})
	c := newClient(t, e, "admin")
	view := descriptionView(c)
	id := c.must(201, c.do("POST", "/API/assets/v1/assets/", map[string]any{"title": "a"}), "asset").str("id")
	c.must(202, c.do("PUT", "/API/metadata/v1/assets/views/"+view+"/", batchBody([]string{id}, "kept")), "batch")
	e.Close()
	e2 := emulatortest.Start(t, emulator.Options{DataDir: dir, BatchDelay: -1})
	c2 := newClient(t, e2, "admin")
	deadline := time.Now().Add(10 * time.Second)
	for descriptionOf(c2, id, view) != "kept" {
		if time.Now().After(deadline) {
			t.Fatal("the accepted batch was lost in the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBulkKeyframesMakeOneJobForManyAssets: one transcode job covers every
// asset, each asset gets its keyframe, the job is found from any of its
// assets, and a file the storage's pattern ignores is left out.
func TestBulkKeyframesMakeOneJobForManyAssets(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Storages[0].Settings = map[string]any{"transcode_ignore": []any{"*.txt"}}
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "admin")
	var assets []string
	for i := range 3 {
		a, f, put := uploadFile(t, c, "s3", fmt.Sprintf("p%d.png", i), pngBytes(t, 20, 10))
		if put.StatusCode != 200 {
			t.Fatalf("upload: %d", put.StatusCode)
		}
		c.must(200, c.do("PATCH", "/API/files/v1/assets/"+a+"/files/"+f+"/", map[string]any{"status": "CLOSED"}), "close")
		assets = append(assets, a)
	}
	ignored, f := c.newFile("s3", "in", "notes.txt", 1)
	c.must(200, c.do("PATCH", "/API/files/v1/assets/"+ignored+"/files/"+f.str("id")+"/", map[string]any{"status": "CLOSED"}), "close")

	r := c.must(200, c.do("POST", "/API/files/v1/assets/bulk/keyframes/", map[string]any{"object_type": "assets", "object_ids": append(assets, ignored)}), "bulk")
	job := c.waitJob(r.str("job_id"))
	if job.str("status") != "FINISHED" || job.str("type") != "TRANSCODE" || job.Body["progress"] != float64(100) {
		t.Fatalf("job: %s", job.Raw)
	}
	if ro, _ := job.Body["related_objects"].([]any); len(ro) != len(assets) {
		t.Fatalf("related_objects %s, want the %d transcoded assets", mustJSON(ro), len(assets))
	}
	for _, a := range assets {
		if kfs := c.must(200, c.do("GET", "/API/files/v1/assets/"+a+"/keyframes/", nil), "keyframes").objects(); len(kfs) != 1 {
			t.Errorf("asset %s: %d keyframes, want 1", a, len(kfs))
		}
		jobs := c.must(200, c.do("GET", "/API/jobs/v1/jobs/?type=TRANSCODE&object_id="+a, nil), "jobs").objects()
		if len(jobs) != 1 || jobs[0]["id"] != r.str("job_id") {
			t.Errorf("asset %s: jobs %s, want the bulk job", a, mustJSON(jobs))
		}
	}
	if kfs := c.must(200, c.do("GET", "/API/files/v1/assets/"+ignored+"/keyframes/", nil), "keyframes").objects(); len(kfs) != 0 {
		t.Errorf("ignored asset got %d keyframes", len(kfs))
	}
	if d := e.Duplicates(); len(d) != 0 {
		t.Fatalf("duplicates: %v", d)
	}
}

// TestBatchCallsRefuseBadInputAndMissingRoles: the spec's roles and body
// rules hold for both batch calls.
func TestBatchCallsRefuseBadInputAndMissingRoles(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	admin := newClient(t, e, "admin")
	view := descriptionView(admin)
	asset, f := admin.newFile("s3", "in", "a.bin", 1)
	open := asset // its only file is still OPEN
	_ = f
	values := `{"metadata_values": {"description": {"field_values": [{"value": "x"}]}}, "object_ids": ["` + asset + `"]}`
	cases := []struct {
		name, cred, method, path, body string
		status                         int
	}{
		{"batch metadata needs can_write_metadata_values", "power", "PUT", "/API/metadata/v1/assets/views/" + view + "/", values, 403},
		{"batch metadata needs object_ids", "admin", "PUT", "/API/metadata/v1/assets/views/" + view + "/", `{"metadata_values": {}}`, 400},
		{"batch metadata of an unknown view", "admin", "PUT", "/API/metadata/v1/assets/views/00000000-0000-0000-0000-000000000000/", values, 404},
		{"batch metadata of an unknown asset", "admin", "PUT", "/API/metadata/v1/assets/views/" + view + "/", `{"metadata_values": {}, "object_ids": ["00000000-0000-0000-0000-000000000000"]}`, 400},
		{"bulk keyframes need can_create_transcode_jobs", "readonly", "POST", "/API/files/v1/assets/bulk/keyframes/", `{"object_type": "assets", "object_ids": ["` + asset + `"]}`, 403},
		{"bulk keyframes need object_type", "admin", "POST", "/API/files/v1/assets/bulk/keyframes/", `{"object_ids": ["` + asset + `"]}`, 400},
		{"bulk keyframes need a CLOSED file", "admin", "POST", "/API/files/v1/assets/bulk/keyframes/", `{"object_type": "assets", "object_ids": ["` + open + `"]}`, 400},
		{"bulk keyframes take at most 500 assets", "admin", "POST", "/API/files/v1/assets/bulk/keyframes/", `{"object_type": "assets", "object_ids": [` + strings.TrimSuffix(strings.Repeat(`"`+asset+`",`, 501), ",") + `]}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newClient(t, e, tc.cred).raw(tc.method, tc.path, tc.body, nil)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
