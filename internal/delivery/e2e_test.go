package delivery_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

// TestDeliveryMirrorsThePackageIntoIconik runs the whole delivery for each
// storage method on the emulator, on each database engine (River and
// ferry's tables on SQLite, and on a real PostgreSQL: the scale-out
// database): a portal package delivered while it uploads, a Send to Cloud
// into the MASV root, and a second package of the same name getting "(2)".
func TestDeliveryMirrorsThePackageIntoIconik(t *testing.T) {
	for _, engine := range engines {
		for _, method := range []string{"S3", "GCS", "AZURE", "B2"} {
			t.Run(engine.name+"/"+method, func(t *testing.T) {
				testMirror(t, newEnv(t, envOptions{dsn: engine.dsn(t), services: func(o *delivery.Options) {
					o.MaxAttempts = 3
					// Parts of 5 MiB, so the 12 MiB file goes in parts on every
					// provider (S3 multipart, GCS chunks, Azure blocks, B2 large file).
					po := transfer.Options{PartSize: 5 << 20}
					o.Uploaders = map[string]transfer.Uploader{"S3": s3.New(po), "GCS": gcs.New(po), "AZURE": azure.New(po), "B2": b2.New(po)}
				}}), method)
			})
		}
	}
}

// engines are the databases the end-to-end tests run on; dsn "" is SQLite
// in the test's temp dir.
var engines = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"SQLite", func(*testing.T) string { return "" }},
	{"PostgreSQL", func(t *testing.T) string { return testbed.Postgres(t).CreateDatabase(t) }},
}

func testMirror(t *testing.T, e *env, method string) {
	conn := e.connect("conn-"+method, strings.ToLower(method))
	e.createPortal("Demo Portal", conn.ID)

	files := map[string][]byte{
		"top.txt":                  []byte("top level\n"),
		"cam A/readme.md":          []byte("# readme\n"),
		"cam A/day 1/clip.png":     pngBytes(),
		"cam A/day 1/notes.txt":    bytes.Repeat([]byte("n"), 3000),
		"cam A/day 1/deep/x.bin":   bytes.Repeat([]byte{7}, 70_000),
		"cam B/only/one more.json": []byte(`{"a":1}`),
		"cam B/only/big.bin":       bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16),
	}
	want := []string{"cam A/", "cam A/day 1/", "cam A/day 1/clip.png", "cam A/day 1/deep/", "cam A/day 1/deep/x.bin",
		"cam A/day 1/notes.txt", "cam A/readme.md", "cam B/", "cam B/only/", "cam B/only/big.bin", "cam B/only/one more.json", "top.txt"}
	if clip := videoBytes(t); clip != nil {
		files["cam A/day 1/take.mp4"] = clip
		want = append(want, "cam A/day 1/take.mp4")
		sort.Strings(want)
	}
	h := e.newPackage("demo-portal", "Shoot 1", "sender@example.com")
	for p, b := range files {
		e.put(h, p, b) // pipelined: each file's job starts as it completes
	}
	e.finalize(h)
	st := e.settled(h, conn.ID)
	checkDelivered(t, e, st, h, conn, "Portal Downloads/Demo Portal/Shoot 1", "Package: Shoot 1\nUploader: sender@example.com\nPortal: Demo Portal")

	root := e.rootCollection("Portal Downloads")
	if len(root) != 1 {
		t.Fatalf("%d top-level Portal Downloads collections, want 1", len(root))
	}
	pkgCol := e.child(e.child(root[0].ID, "Demo Portal"), "Shoot 1")
	if pkgCol != st.Delivery.CollectionID {
		t.Fatalf("package collection %s, delivery recorded %s", pkgCol, st.Delivery.CollectionID)
	}
	if got := e.tree(pkgCol, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("collection tree\n got %q\nwant %q", got, want)
	}

	// The same name again on the same connection: "(2)", never merged.
	h2 := e.newPackage("demo-portal", "Shoot 1", "other@example.com")
	e.put(h2, "cam A/readme.md", []byte("another readme\n"))
	e.finalize(h2)
	st2 := e.settled(h2, conn.ID)
	checkDelivered(t, e, st2, h2, conn, "Portal Downloads/Demo Portal/Shoot 1 (2)", "Package: Shoot 1\nUploader: other@example.com\nPortal: Demo Portal")
	if st2.Delivery.PackageTitle != "Shoot 1 (2)" {
		t.Fatalf("second package titled %q, want %q", st2.Delivery.PackageTitle, "Shoot 1 (2)")
	}
	if got := e.tree(pkgCol, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("the first package's tree changed after the second: %q", got)
	}

	// Send to Cloud of a package without portal: into MASV/<name>.
	h3 := e.newPackage("", "Shoot 1", "")
	e.put(h3, "a/b.txt", []byte("sent to cloud\n"))
	e.finalize(h3)
	d3, err := e.svc.SendToCloud(e.ctx, h3.pkg.ID, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	st3 := e.settled(h3, conn.ID)
	if st3.Delivery.ID != d3.ID {
		t.Fatalf("settled delivery %s, send to cloud made %s", st3.Delivery.ID, d3.ID)
	}
	u, err := e.store.UserGetByID(e.ctx, &db.UserGetByIDParams{ID: h3.pkg.CreatedByUserID})
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, e, st3, h3, conn, "MASV/Shoot 1", "Package: Shoot 1\nUploader: "+u.Email)
	masv := e.rootCollection("MASV")
	if len(masv) != 1 {
		t.Fatalf("%d MASV roots, want 1", len(masv))
	}
	if got := e.tree(e.child(masv[0].ID, "Shoot 1"), ""); !reflect.DeepEqual(got, []string{"a/", "a/b.txt"}) {
		t.Fatalf("MASV tree %q", got)
	}

	// Every settled delivery emitted its event, once.
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.events) != 3 || e.events[st.Delivery.ID] != 1 || e.events[st2.Delivery.ID] != 1 || e.events[d3.ID] != 1 {
		t.Fatalf("events per delivery %v, want one for each of the 3", e.events)
	}
}

// checkDelivered checks every file of one delivery in iconik and in the
// storage.
func checkDelivered(t *testing.T, e *env, st *delivery.Status, h *pkgHandle, conn delivery.Connection, dirRoot, description string) {
	t.Helper()
	if st.Delivery.State != db.DeliveryDelivered {
		for _, f := range st.Files {
			t.Logf("%s: %s %s", f.Path, f.State, f.Error)
		}
		t.Fatalf("delivery %s, want delivered", st.Delivery.State)
	}
	if len(st.Files) != len(h.files) || st.BytesDone != st.Bytes {
		t.Fatalf("%d files with %d/%d bytes, want %d files all done", len(st.Files), st.BytesDone, st.Bytes, len(h.files))
	}
	parent, err := e.cl.JobGet(e.ctx, st.Delivery.IconikJobID)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Status != "FINISHED" {
		t.Fatalf("package job %s", parent.Status)
	}
	for _, f := range st.Files {
		data := h.files[f.Path]
		if f.State != db.DeliveryFileDelivered || f.FileID != h.ids[f.Path] {
			t.Fatalf("%s: %+v", f.Path, f)
		}
		a, err := e.cl.AssetGet(e.ctx, f.AssetID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Title != path.Base(f.Path) || a.ExternalID != f.FileID {
			t.Fatalf("%s: asset title %q external id %q", f.Path, a.Title, a.ExternalID)
		}
		var icFiles []iconik.File
		for x, err := range e.cl.FileList(e.ctx, f.AssetID) {
			if err != nil {
				t.Fatal(err)
			}
			icFiles = append(icFiles, x)
		}
		dir := dirRoot
		if d := path.Dir(f.Path); d != "." {
			dir += "/" + d
		}
		sum := md5.Sum(data)
		if len(icFiles) != 1 || icFiles[0].DirectoryPath != dir || icFiles[0].Status != "CLOSED" || int64(icFiles[0].Size) != int64(len(data)) ||
			icFiles[0].Checksum != hex.EncodeToString(sum[:]) || icFiles[0].StorageID != conn.StorageID {
			t.Fatalf("%s: iconik files %+v, want one CLOSED in %q with md5 %x", f.Path, icFiles, dir, sum)
		}
		if got := e.object(conn.StorageID, "ferry/"+dir+"/"+path.Base(f.Path)); !bytes.Equal(got, data) {
			t.Fatalf("%s: storage holds %d bytes that differ from the %d sent", f.Path, len(got), len(data))
		}
		if f.DeliveredSHA256 != f.SHA256 || f.SHA256 == "" {
			t.Fatalf("%s: delivered sha256 %s, ingest %s", f.Path, f.DeliveredSHA256, f.SHA256)
		}
		var jobs []iconik.Job
		for j, err := range e.cl.JobList(e.ctx, iconik.JobListParams{ObjectID: f.AssetID}) {
			if err != nil {
				t.Fatal(err)
			}
			if j.Type == "TRANSFER" {
				jobs = append(jobs, j)
			}
		}
		if len(jobs) != 1 || jobs[0].Status != "FINISHED" || jobs[0].Progress != 100 || jobs[0].Title != f.Path || jobs[0].ParentID != st.Delivery.IconikJobID {
			t.Fatalf("%s: transfer jobs %+v, want one FINISHED at 100 under the package job", f.Path, jobs)
		}
		waitDescription(t, e, f.Path, f.AssetID, conn.MetadataViewID, description)
		// Keyframes are asked for every file; iconik decides.
		if f.KeyframeJobID == "" || f.KeyframesSkipped {
			t.Fatalf("%s: keyframe job %q, skipped %v; want a job", f.Path, f.KeyframeJobID, f.KeyframesSkipped)
		}
		if strings.HasSuffix(f.Path, ".png") || strings.HasSuffix(f.Path, ".mp4") {
			waitKeyframe(t, e, f.AssetID)
		}
	}
}

// waitDescription waits for an asset's description: a batch metadata update
// iconik answered 202 is applied after the answer, so a settled delivery may
// be a moment ahead of its descriptions.
func waitDescription(t *testing.T, e *env, name, assetID, viewID, description string) {
	t.Helper()
	var vals []iconik.MetadataValue
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mv, err := e.cl.MetadataValuesGet(e.ctx, assetID, viewID, iconik.MetadataValuesGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		vals = mv.MetadataValues["description"].FieldValues
		if len(vals) == 1 && fmt.Sprint(vals[0].Value) == description {
			return
		}
		if len(vals) > 1 || time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("%s: description %+v, want %q", name, vals, description)
}

func waitKeyframe(t *testing.T, e *env, assetID string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for k, err := range e.cl.KeyframeList(e.ctx, assetID, iconik.KeyframeListParams{}) {
			if err != nil {
				t.Fatal(err)
			}
			if k.Type == "KEYFRAME" || k.Type == "POSTER" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("asset %s got no keyframe", assetID)
}

var video struct {
	once sync.Once
	b    []byte
	err  error
}

// videoBytes is a one-second MP4 made by ffmpeg (testsrc), so the e2e test
// has a video whose keyframes the emulator makes with ffmpeg too. Without
// ffmpeg it is nil (the test then has no video), except under CI, where
// that fails the test.
func videoBytes(t *testing.T) []byte {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ffmpeg is needed for the e2e video: %v", err)
		}
		t.Logf("no ffmpeg: the e2e test runs without a video (%v)", err)
		return nil
	}
	video.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-e2e-video-")
		if err != nil {
			video.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "take.mp4")
		cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
			"-i", "testsrc=size=64x48:rate=5:duration=1", "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			video.err = fmt.Errorf("ffmpeg making a test video: %v: %s", err, msg)
			return
		}
		video.b, video.err = os.ReadFile(out)
	})
	if video.err != nil {
		t.Fatal(video.err)
	}
	return video.b
}
