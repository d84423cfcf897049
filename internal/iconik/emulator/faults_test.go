package emulator_test

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/testbed"
)

func TestFaultLatencyDelaysEveryCall(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{Latency: 80 * time.Millisecond}})
	c := newClient(t, e, "admin")
	start := time.Now()
	c.must(200, c.do("GET", "/API/users/v1/users/current/", nil), "current")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("call took %v, less than the injected 80ms", d)
	}
}

func TestFaultRateLimitPerAppID(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{RateLimit: 0.5}})
	c := newClient(t, e, "admin")
	first := c.must(200, c.do("GET", "/API/users/v1/users/current/", nil), "first")
	if first.Header.Get("RateLimit-Remaining") == "" {
		t.Fatal("no RateLimit-Remaining header")
	}
	second := c.raw("GET", "/API/users/v1/users/current/", "", nil)
	if second.Status != 429 {
		t.Fatalf("second call: %d, want 429", second.Status)
	}
	if n, err := strconv.Atoi(second.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q", second.Header.Get("Retry-After"))
	}
	if second.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("RateLimit-Remaining %q on 429", second.Header.Get("RateLimit-Remaining"))
	}
	other := c.as("power")
	other.must(200, other.do("GET", "/API/users/v1/users/current/", nil), "another app id has its own budget")
}

func TestFaultFailRateAnswers500(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{FailRate: 1}})
	c := newClient(t, e, "admin")
	if r := c.raw("GET", "/API/users/v1/users/current/", "", nil); r.Status != 500 {
		t.Fatalf("status %d, want 500", r.Status)
	}
}

func TestFaultIndexLagHidesNewObjectsFromContentsAndSearch(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{IndexLag: time.Hour}})
	c := newClient(t, e, "admin")
	root := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "root"}), "root").str("id")
	kid := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "kid", "parent_id": root}), "kid").str("id")
	if r := c.must(200, c.do("GET", "/API/assets/v1/collections/"+root+"/contents/", nil), "contents"); len(r.objects()) != 0 {
		t.Fatalf("contents show an object inside the index lag: %s", r.Raw)
	}
	if r := c.must(200, c.do("POST", "/API/search/v1/search/", map[string]any{"query": "kid"}), "search"); len(r.objects()) != 0 {
		t.Fatalf("search shows an object inside the index lag: %s", r.Raw)
	}
	c.must(200, c.do("GET", "/API/assets/v1/collections/"+kid+"/", nil), "get by id is not index-backed")
}

// uploadFile creates a file on storage and PUTs data to its upload_url.
func uploadFile(t *testing.T, c *client, storage, name string, data []byte) (assetID, fileID string, put *http.Response) {
	t.Helper()
	assetID, f := c.newFile(storage, "in", name, len(data))
	if f.str("upload_url") == "" {
		t.Fatalf("file without upload_url: %s", f.Raw)
	}
	return assetID, f.str("id"), putS3(t, f.str("upload_url"), data)
}

func TestFaultProviderFailRateAnswers503OnUpload(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{ProviderFailRate: 1}})
	c := newClient(t, e, "admin")
	if _, _, resp := uploadFile(t, c, "s3", "a.bin", []byte("abc")); resp.StatusCode != 503 {
		t.Fatalf("upload status %d, want 503", resp.StatusCode)
	}
}

func TestFaultURLTTLExpiresSignedURLs(t *testing.T) {
	// S3 presigned URLs live at least a second (X-Amz-Expires is in seconds).
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{URLTTL: time.Second}})
	c := newClient(t, e, "admin")
	asset, f := c.newFile("s3", "in", "a.bin", 3)
	time.Sleep(2100 * time.Millisecond)
	if resp := putS3(t, f.str("upload_url"), []byte("abc")); resp.StatusCode != 403 {
		t.Fatalf("upload with an expired URL: %d, want 403", resp.StatusCode)
	}
	fresh := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/?generate_signed_post_url=true", nil), "fresh URL")
	if resp := putS3(t, fresh.str("upload_url"), []byte("abc")); resp.StatusCode != 200 {
		t.Fatalf("upload with a fresh URL: %d, want 200", resp.StatusCode)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e1, err := emulator.New(emulator.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c1 := serveAs(t, e1, nil)
	coll := c1.must(201, c1.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "kept"}), "create").str("id")
	e2 := reopen(t, e1, dir)
	if got := e2.Credentials(); got[0].Token != c1.cred.Token || got[0].AppID != c1.cred.AppID {
		t.Fatal("credentials changed across a restart")
	}
	c2 := serveAs(t, e2, c1)
	if r := c2.must(200, c2.do("GET", "/API/assets/v1/collections/"+coll+"/", nil), "get after restart"); r.str("title") != "kept" {
		t.Fatalf("after restart: %s", r.Raw)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []emulator.Credential
	if err := json.Unmarshal(raw, &onDisk); err != nil || len(onDisk) != 3 {
		t.Fatalf("credentials.json: %v %s", err, raw)
	}
	if st, _ := os.Stat(filepath.Join(dir, "credentials.json")); st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials.json mode %v, want 0600", st.Mode().Perm())
	}
}

// keyframeOf runs POST .../keyframes/ and waits for the job.
func keyframeOf(t *testing.T, c *client, assetID, fileID string) reply {
	t.Helper()
	r := c.must(200, c.do("POST", "/API/files/v1/assets/"+assetID+"/files/"+fileID+"/keyframes/", map[string]any{}), "keyframes")
	return c.waitJob(r.str("job_id"))
}

func TestKeyframesFromImages(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	var jpg bytes.Buffer
	img, _ := decodePNG(pngBytes(t, 40, 30))
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		w, h float64
	}{
		{"small.png", pngBytes(t, 40, 30), 40, 30},
		{"photo.jpg", jpg.Bytes(), 40, 30},
		{"wide.png", pngBytes(t, 1280, 720), 640, 360},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asset, file, put := uploadFile(t, c, "s3", tc.name, tc.data)
			if put.StatusCode != 200 {
				t.Fatalf("upload: %d", put.StatusCode)
			}
			if job := keyframeOf(t, c, asset, file); job.str("status") != "FINISHED" || job.Body["progress"] != float64(100) {
				t.Fatalf("job: %s", job.Raw)
			}
			kfs := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/keyframes/", nil), "keyframes list").objects()
			if len(kfs) != 1 {
				t.Fatalf("%d keyframes", len(kfs))
			}
			res, _ := kfs[0]["resolution"].(map[string]any)
			if res["width"] != tc.w || res["height"] != tc.h {
				t.Fatalf("resolution %v, want %vx%v", res, tc.w, tc.h)
			}
			checkJPEG(t, kfs[0]["url"].(string), int(tc.w), int(tc.h))
		})
	}
}

func checkJPEG(t *testing.T, url string, w, h int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("keyframe url: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := jpeg.Decode(resp.Body)
	if err != nil {
		t.Fatalf("keyframe is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("keyframe is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}

func TestKeyframeFromVideoWithFFmpeg(t *testing.T) {
	ffmpeg := testbed.Binary(t, "ffmpeg")
	video := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
		"-t", "1", "-pix_fmt", "yuv420p", video).CombinedOutput()
	if err != nil {
		t.Fatalf("making a test video: %v: %s", err, out)
	}
	data, err := os.ReadFile(video)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(ffmpeg)+string(os.PathListSeparator)+os.Getenv("PATH"))
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	asset, file, put := uploadFile(t, c, "s3", "clip.mp4", data)
	if put.StatusCode != 200 {
		t.Fatalf("upload: %d", put.StatusCode)
	}
	if job := keyframeOf(t, c, asset, file); job.str("status") != "FINISHED" {
		t.Fatalf("job: %s", job.Raw)
	}
	kfs := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/keyframes/", nil), "keyframes").objects()
	if len(kfs) != 1 {
		t.Fatalf("%d keyframes", len(kfs))
	}
	checkJPEG(t, kfs[0]["url"].(string), 320, 240)
}

func TestKeyframeJobFailsWithReasonWhenNothingCanDecode(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no ffmpeg
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	asset, file, put := uploadFile(t, c, "s3", "notes.mov", []byte("not a video at all"))
	if put.StatusCode != 200 {
		t.Fatalf("upload: %d", put.StatusCode)
	}
	job := keyframeOf(t, c, asset, file)
	if job.str("status") != "FAILED" || !strings.Contains(job.str("error_message"), "ffmpeg is not on PATH") {
		t.Fatalf("job: %s", job.Raw)
	}
	if kfs := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/keyframes/", nil), "keyframes").objects(); len(kfs) != 0 {
		t.Fatalf("a failed job left %d keyframes", len(kfs))
	}
}

func TestKeyframesIgnoredByStoragePatternAnswer204(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Storages[0].Settings = map[string]any{"transcode_ignore": []any{"*.txt"}}
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "admin")
	asset, f := c.newFile("s3", "", "readme.TXT", 1)
	if r := c.do("POST", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/keyframes/", map[string]any{}); r.Status != 204 {
		t.Fatalf("status %d, want 204", r.Status)
	}
	if r := c.do("POST", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/keyframes/", map[string]any{"use_storage_transcode_ignore_pattern": false}); r.Status != 200 {
		t.Fatalf("status %d with the pattern switched off, want 200", r.Status)
	}
}

func TestBrowsePageShowsTreeAssetsKeyframesAndJobs(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	root := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "Portal Downloads"}), "root").str("id")
	sub := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "Package <One>", "parent_id": root}), "sub").str("id")
	asset, file, _ := uploadFile(t, c, "s3", "pic.png", pngBytes(t, 20, 20))
	c.must(201, c.do("POST", "/API/assets/v1/collections/"+sub+"/contents/", map[string]any{"object_id": asset, "object_type": "assets"}), "add")
	keyframeOf(t, c, asset, file)
	c.must(201, c.do("POST", "/API/metadata/v1/fields/", map[string]any{"name": "description", "label": "D", "field_type": "text"}), "field")
	view := c.must(201, c.do("POST", "/API/metadata/v1/views/", map[string]any{"name": "v", "view_fields": []any{map[string]any{"name": "description"}}}), "view").str("id")
	c.must(200, c.do("PUT", "/API/metadata/v1/assets/"+asset+"/views/"+view+"/", map[string]any{"metadata_values": map[string]any{"description": map[string]any{"field_values": []any{map[string]any{"value": "Uploader: a@b.example"}}}}}), "values")

	resp, err := http.Get(e.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"Portal Downloads", "Package &lt;One&gt;", "pic.png", "/_keyframes/", "Uploader: a@b.example", "ferry/in/pic.png", "FINISHED", "TRANSCODE"} {
		if !strings.Contains(page, want) {
			t.Errorf("browse page lacks %q", want)
		}
	}
	if strings.Index(page, "Portal Downloads") > strings.Index(page, "Package &lt;One&gt;") {
		t.Error("child collection rendered before its parent")
	}
}

func TestSeedFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.yaml")
	yaml := `users:
  - email: ops@example.com
    first_name: Ops
    type: POWER
tokens:
  - name: ops
    user: ops@example.com
    app_id: 11111111-2222-1333-8444-555555555555
    token: secret-token
    roles: [flow, -can_search]
storages:
  - name: archive
    method: S3
    purpose: FILES
    status: INACTIVE
    write: false
    path: deep/prefix
    settings: {bucket: media, transcode_ignore: ["*.xml"]}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	seed, err := emulator.LoadSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "ops")
	if c.cred.Token != "secret-token" || c.cred.AppID != "11111111-2222-1333-8444-555555555555" {
		t.Fatalf("credential %+v", c.cred)
	}
	st := c.must(200, c.do("GET", "/API/files/v1/storages/", nil), "storages").objects()
	if len(st) != 1 || st[0]["status"] != "INACTIVE" {
		t.Fatalf("storages %v", st)
	}
	set := st[0]["settings"].(map[string]any)
	if set["write"] != false || set["read"] != true || set["path"] != "deep/prefix" || set["bucket"] != "media" {
		t.Fatalf("settings %v", set)
	}
	if r := c.raw("POST", "/API/search/v1/search/", `{}`, nil); r.Status != 403 {
		t.Fatalf("removed role still granted: %d", r.Status)
	}

	bad := []string{
		"users: [{email: a@b, type: ROBOT}]",
		"tokens: [{name: t, user: nobody@x}]",
		"users: [{email: a@b}]\ntokens: [{name: t, user: a@b, app_id: not-a-uuid}]",
		"storages: [{name: s, method: FTPS, purpose: FILES}]",
		"unknown_key: 1",
		"metadata_views: [{name: v, fields: [nope]}]",
		"metadata_fields: [{name: n, label: N, field_type: blob}]",
	}
	for _, b := range bad {
		if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := emulator.LoadSeed(path); err == nil {
			t.Errorf("seed %q accepted", b)
		}
	}
}

func TestExampleSeedLoads(t *testing.T) {
	seed, err := emulator.LoadSeed(filepath.Join("testdata", "seed.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "delivery")
	if c.cred.Token != "delivery-token-for-demos" {
		t.Fatalf("token %q", c.cred.Token)
	}
	if n := len(c.must(200, c.do("GET", "/API/files/v1/storages/?purpose=FILES", nil), "storages").objects()); n != 3 {
		t.Fatalf("%d FILES storages, want 3", n)
	}
	c.must(200, c.do("GET", "/API/metadata/v1/fields/description/", nil), "seeded field")
	views := c.must(200, c.do("GET", "/API/metadata/v1/views/", nil), "views").objects()
	if len(views) != 1 || views[0]["name"] != "Ferry delivery" {
		t.Fatalf("seeded views: %v", views)
	}
}

// TestVolatileStateIsWrittenOnlyOnClose: a volatile emulator answers without
// saving the tenant after each change (benchmarks), and still keeps what
// changed across a clean Close and restart.
func TestVolatileStateIsWrittenOnlyOnClose(t *testing.T) {
	dir := t.TempDir()
	e1, err := emulator.New(emulator.Options{DataDir: dir, Volatile: true})
	if err != nil {
		t.Fatal(err)
	}
	c1 := serveAs(t, e1, nil)
	coll := c1.must(201, c1.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "volatile"}), "create").str("id")
	if raw, err := os.ReadFile(filepath.Join(dir, "state.json")); err != nil || bytes.Contains(raw, []byte(coll)) {
		t.Fatalf("state.json after an answered change: err %v, holds the collection %v (want not yet saved)", err, bytes.Contains(raw, []byte(coll)))
	}
	e2 := reopen(t, e1, dir)
	c2 := serveAs(t, e2, c1)
	if r := c2.must(200, c2.do("GET", "/API/assets/v1/collections/"+coll+"/", nil), "get after restart"); r.str("title") != "volatile" {
		t.Fatalf("after restart: %s", r.Raw)
	}
}

// serveAs serves e over HTTP and returns a client acting as its first
// credential; like, when given, lends its HTTP client and spec checker.
func serveAs(t *testing.T, e *emulator.Server, like *client) *client {
	c := &client{t: t, cred: e.Credentials()[0], e: &emulatortest.Emulator{Server: e, URL: httptestServer(t, e)}}
	if like != nil {
		c.http, c.spec = like.http, like.spec
	} else {
		c.http, c.spec = newClient2(t)
	}
	return c
}

// reopen closes e and starts a new emulator on its data directory dir.
func reopen(t *testing.T, e *emulator.Server, dir string) *emulator.Server {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2, err := emulator.New(emulator.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2.Close() })
	return e2
}
