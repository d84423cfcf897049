package iconik_test

// Contract tests: the client against the real iconik emulator, every request and response
// checked against iconik's official specs by ispec.Transport (newClient is the one place that
// installs it, so every test here gets it).

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
)

// counter counts round trips and the statuses seen.
type counter struct {
	base           http.RoundTripper
	calls, tooMany atomic.Int64
	serverErrors   atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if strings.HasPrefix(r.URL.Path, "/API/") {
		c.calls.Add(1)
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			c.tooMany.Add(1)
		}
		if resp != nil && resp.StatusCode >= 500 {
			c.serverErrors.Add(1)
		}
	}
	return resp, err
}

// newClient returns a client for a credential of e whose traffic is validated by ispec;
// allow lists statuses a test provokes on purpose that the spec does not declare.
func newClient(t testing.TB, e *emulatortest.Emulator, cred string, tweak func(*iconik.Options), allow ...int) (*iconik.Client, *counter) {
	t.Helper()
	cr := e.Cred(cred)
	cnt := &counter{base: ispectest.TransportAllowing(t, nil, allow...)}
	o := iconik.Options{
		BaseURL: e.URL, AppID: cr.AppID, Token: cr.Token, Transport: cnt,
		RateLimit: -1, Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&o)
	}
	c, err := iconik.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, cnt
}

func TestContractVerify(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	cases := []struct {
		cred          string
		qualifies     bool
		missing       []string // nil = none
		missingSubset []string // roles that must be among the missing ones
		selectable    []string
	}{
		{cred: "admin", qualifies: true, selectable: []string{"azure", "b2", "gcs", "s3"}},
		{cred: "power", qualifies: true, missing: []string{"can_write_metadata_values"}, selectable: []string{"azure", "b2", "gcs", "s3"}},
		{cred: "readonly", qualifies: false, missingSubset: []string{"can_create_assets", "can_write_files", "can_write_metadata_values"}, selectable: []string{"azure", "b2", "gcs", "s3"}},
	}
	for _, tc := range cases {
		t.Run(tc.cred, func(t *testing.T) {
			c, _ := newClient(t, e, tc.cred, nil)
			v, err := c.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if v.User == nil || v.User.ID == "" || v.User.Status != "ACTIVE" {
				t.Fatalf("user %+v", v.User)
			}
			if v.Qualifies != tc.qualifies {
				t.Errorf("qualifies = %v (%q), want %v", v.Qualifies, v.Reasons, tc.qualifies)
			}
			if !tc.qualifies && !strings.Contains(strings.Join(v.Reasons, " "), "POWER user or an admin") {
				t.Errorf("reasons %q do not say a POWER user or admin is needed", v.Reasons)
			}
			if tc.missingSubset == nil && !slices.Equal(v.MissingRoles, tc.missing) {
				t.Errorf("missing roles = %q, want %q", v.MissingRoles, tc.missing)
			}
			for _, r := range tc.missingSubset {
				if !slices.Contains(v.MissingRoles, r) {
					t.Errorf("missing roles %q lack %s", v.MissingRoles, r)
				}
			}
			var sel []string
			for _, s := range v.Selectable() {
				sel = append(sel, s.Name)
			}
			slices.Sort(sel)
			if !slices.Equal(sel, tc.selectable) {
				t.Errorf("selectable storages = %q, want %q", sel, tc.selectable)
			}
			for _, s := range v.Storages {
				if s.Name == "proxies" && (s.Selectable || !strings.Contains(s.Reason, "PROXIES")) {
					t.Errorf("proxies storage: selectable %v, reason %q", s.Selectable, s.Reason)
				}
			}
		})
	}
}

func TestContractBadTokenIsUnauthorized(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c, _ := newClient(t, e, "admin", func(o *iconik.Options) { o.Token = "not-a-token" })
	err := c.TokenCheck(context.Background())
	if !iconik.IsUnauthorized(err) {
		t.Fatalf("TokenCheck with a bad token = %v, want 401", err)
	}
	if _, err := c.Verify(context.Background()); !iconik.IsUnauthorized(err) || strings.Contains(err.Error(), "not-a-token") {
		t.Fatalf("Verify with a bad token = %v, want a 401 without the token", err)
	}
}

// delivery is the state of one package's delivery (CONTRACT.md §4).
type delivery struct {
	c         *iconik.Client
	storage   iconik.StorageChoice
	viewID    string
	parentJob *iconik.Job
	folderID  string
}

// connect is CONTRACT.md §4 "Connect": verify, pick the storage, find or create the
// description field and a view holding it.
func connect(t testing.TB, ctx context.Context, c *iconik.Client, storageName string) *delivery {
	t.Helper()
	v, err := c.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Fatalf("connection not usable: %q", v.Problems())
	}
	d := &delivery{c: c}
	for _, s := range v.Selectable() {
		if s.Name == storageName {
			d.storage = s
		}
	}
	if d.storage.ID == "" {
		t.Fatalf("storage %s not selectable", storageName)
	}
	if _, err := c.StoragePermissions(ctx, d.storage.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MetadataFieldGet(ctx, "description"); iconik.IsNotFound(err) {
		if _, err := c.MetadataFieldCreate(ctx, iconik.MetadataFieldCreateParams{Name: "description", Label: "Description", FieldType: "text"}); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	views, err := c.MetadataViewList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, vw := range views {
		if vw.Name == "ferry" && vw.HasField("description") {
			d.viewID = vw.ID
		}
	}
	if d.viewID == "" {
		vw, err := c.MetadataViewCreate(ctx, iconik.MetadataViewCreateParams{Name: "ferry", Description: "ferry deliveries",
			ViewFields: []iconik.MetadataViewField{{Name: "description", Label: "Description"}}})
		if err != nil {
			t.Fatal(err)
		}
		d.viewID = vw.ID
	}
	if vw, err := c.MetadataViewGet(ctx, d.viewID, iconik.MetadataViewGetParams{MergeFields: true}); err != nil || !vw.HasField("description") {
		t.Fatalf("view %s: %+v, %v", d.viewID, vw, err)
	}
	return d
}

// ensureCollection finds a collection by title under parent ("" = top level), creating it
// when absent (CONTRACT.md §4 step 1: look before creating).
func ensureCollection(t testing.TB, ctx context.Context, c *iconik.Client, parentID, title string) string {
	t.Helper()
	var seq func(func(string, error) bool)
	if parentID == "" {
		seq = func(yield func(string, error) bool) {
			for col, err := range c.CollectionList(ctx, iconik.CollectionListParams{IsRoot: iconik.Bool(true)}) {
				if err != nil || col.Title == title {
					yield(col.ID, err)
					return
				}
			}
		}
	} else {
		seq = func(yield func(string, error) bool) {
			for it, err := range c.CollectionContentsList(ctx, parentID, iconik.CollectionContentsListParams{ObjectTypes: []string{"collections"}}) {
				if err != nil || (it.Title == title && it.ObjectType == "collections") {
					yield(it.ID, err)
					return
				}
			}
		}
	}
	for id, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	col, err := c.CollectionCreate(ctx, iconik.CollectionCreateParams{Title: title, ParentID: parentID})
	if err != nil {
		t.Fatal(err)
	}
	return col.ID
}

// resolvePackage resolves "Portal Downloads/<portal>/<package>/<sub>" and opens the parent job.
func (d *delivery) resolvePackage(t testing.TB, ctx context.Context, path ...string) {
	t.Helper()
	parent := ""
	for _, title := range path {
		parent = ensureCollection(t, ctx, d.c, parent, title)
	}
	d.folderID = parent
	var err error
	d.parentJob, err = d.c.JobCreate(ctx, iconik.JobCreateParams{Type: "TRANSFER", Status: "STARTED", Title: "package " + path[len(path)-1]})
	if err != nil {
		t.Fatal(err)
	}
}

type deliveredFile struct {
	asset *iconik.Asset
	file  *iconik.File
	job   *iconik.Job
	kf    *iconik.KeyframesResult
}

// deliverFile is CONTRACT.md §4 steps 3-13 for one file; upload sends the bytes.
func (d *delivery) deliverFile(t testing.TB, ctx context.Context, dir, name, mime string, data []byte, upload func(*iconik.File) error) deliveredFile {
	t.Helper()
	c := d.c
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	a, err := c.AssetCreate(ctx, iconik.AssetCreateParams{Title: name, CollectionID: d.folderID, ExternalID: "pf-" + name, RetrySafe: true})
	must(err, "asset")
	f, err := c.FormatCreate(ctx, a.ID, iconik.FormatCreateParams{UserID: a.CreatedByUser, VersionID: a.VersionID(),
		Metadata: []map[string]any{{"internet_media_type": mime}}, StorageMethods: []string{d.storage.Method}})
	must(err, "format")
	fs, err := c.FileSetCreate(ctx, a.ID, iconik.FileSetCreateParams{FormatID: f.ID, StorageID: d.storage.ID, BaseDir: dir, Name: name, VersionID: a.VersionID()})
	must(err, "file set")
	now := iconik.Time{Time: time.Now()}
	file, err := c.FileCreate(ctx, a.ID, iconik.FileCreateParams{OriginalName: name, DirectoryPath: dir, Size: int64(len(data)),
		StorageID: d.storage.ID, FileSetID: fs.ID, FormatID: f.ID, VersionID: a.VersionID(), FileDateCreated: now, FileDateModified: now})
	must(err, "file")
	if file.Status != "OPEN" || file.StorageMethod != d.storage.Method {
		t.Fatalf("new file: status %s, storage method %s", file.Status, file.StorageMethod)
	}
	job, err := c.JobCreate(ctx, iconik.JobCreateParams{Type: "TRANSFER", Status: "STARTED", Title: name, ObjectType: "assets",
		ObjectID: a.ID, ParentID: d.parentJob.ID, ProgressTotal: iconik.Int64(int64(len(data))), ProgressProcessed: iconik.Int64(0)})
	must(err, "job")
	must(upload(file), "upload")
	half := iconik.JobPatchFor(job, "STARTED")
	half.ProgressProcessed = iconik.Int64(int64(len(data) / 2))
	_, err = c.JobPatch(ctx, job.ID, half)
	must(err, "job progress")
	closed, err := c.FilePatch(ctx, a.ID, file.ID, iconik.FilePatchFor(file, "CLOSED"))
	must(err, "close")
	if closed.Status != "CLOSED" {
		t.Fatalf("closed file status %s", closed.Status)
	}
	must(c.CollectionContentsAdd(ctx, d.folderID, iconik.CollectionContentsAddParams{ObjectID: a.ID, ObjectType: "assets", IndexImmediately: true}), "contents add")
	kf, err := c.KeyframesCreate(ctx, a.ID, file.ID, iconik.KeyframesCreateParams{})
	must(err, "keyframes")
	_, err = c.MetadataValuesPut(ctx, a.ID, d.viewID, iconik.MetadataValuesPutParams{StringValues: map[string]string{"description": "Package: X\nUploader: a@b.com\nPortal: P"}})
	must(err, "metadata")
	done := iconik.JobPatchFor(job, "FINISHED")
	done.ProgressProcessed = iconik.Int64(int64(len(data)))
	job, err = c.JobPatch(ctx, job.ID, done)
	must(err, "job finish")
	return deliveredFile{asset: a, file: closed, job: job, kf: kf}
}

// Uploads per storage method: the smallest correct use of each provider protocol, sending no
// iconik headers (CONTRACT.md §3). The transfer package owns the real implementations.
func uploadFor(t testing.TB, ctx context.Context, c *iconik.Client, method string, data []byte) func(*iconik.File) error {
	do := func(req *http.Request, want ...int) (*http.Response, error) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !slices.Contains(want, resp.StatusCode) {
			return nil, fmt.Errorf("%s %s: %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	switch method {
	case "S3": // multipart through iconik's helpers
		return func(f *iconik.File) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", f.MultipartUploadURL, nil)
			resp, err := do(req, 200)
			if err != nil {
				return err
			}
			var start struct {
				UploadID string `xml:"UploadId"`
			}
			if err := xml.NewDecoder(resp.Body).Decode(&start); err != nil || start.UploadID == "" {
				return fmt.Errorf("no UploadId: %v", err)
			}
			parts, err := c.S3PartURLs(ctx, f.AssetID, f.ID, iconik.S3PartURLsParams{UploadID: start.UploadID, PartsNum: 1})
			if err != nil || len(parts) != 1 || parts[0].Number != 1 {
				return fmt.Errorf("part urls %+v: %v", parts, err)
			}
			req, _ = http.NewRequestWithContext(ctx, "PUT", parts[0].URL, bytes.NewReader(data))
			if resp, err = do(req, 200); err != nil {
				return err
			}
			etag := resp.Header.Get("ETag")
			urls, err := c.S3MultipartURLs(ctx, f.AssetID, f.ID, iconik.S3MultipartURLsParams{UploadID: start.UploadID, Type: "complete_url"})
			if err != nil || urls.CompleteURL == "" {
				return fmt.Errorf("complete url %+v: %v", urls, err)
			}
			xmlBody := fmt.Sprintf("<CompleteMultipartUpload><Part><ETag>%s</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", etag)
			req, _ = http.NewRequestWithContext(ctx, "POST", urls.CompleteURL, strings.NewReader(xmlBody))
			req.Header.Set("Content-Type", "application/xml")
			if resp, err = do(req, 200); err != nil {
				return err
			}
			if b, _ := io.ReadAll(resp.Body); bytes.Contains(b, []byte("<Error>")) {
				return fmt.Errorf("complete answered 200 with an error: %s", b)
			}
			return nil
		}
	case "GCS":
		return func(f *iconik.File) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", f.UploadURL, nil)
			req.Header.Set("x-goog-resumable", "start")
			resp, err := do(req, 200, 201)
			if err != nil {
				return err
			}
			loc := resp.Header.Get("Location")
			if loc == "" {
				return errors.New("no session Location")
			}
			req, _ = http.NewRequestWithContext(ctx, "PUT", loc, bytes.NewReader(data))
			_, err = do(req, 200, 201)
			return err
		}
	case "AZURE":
		return func(f *iconik.File) error {
			req, _ := http.NewRequestWithContext(ctx, "PUT", f.UploadURL, bytes.NewReader(data))
			req.Header.Set("x-ms-blob-type", "BlockBlob")
			_, err := do(req, 201)
			return err
		}
	case "B2":
		return func(f *iconik.File) error {
			sum := sha1.Sum(data)
			req, _ := http.NewRequestWithContext(ctx, "POST", f.UploadURL, bytes.NewReader(data))
			req.Header.Set("Authorization", f.UploadCredential("authorizationToken"))
			req.Header.Set("X-Bz-File-Name", url.PathEscape(f.UploadFilename))
			req.Header.Set("Content-Type", "b2/x-auto")
			req.Header.Set("X-Bz-Content-Sha1", hex.EncodeToString(sum[:]))
			_, err := do(req, 200)
			return err
		}
	}
	t.Fatalf("no upload for method %s", method)
	return nil
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestContractDeliverOneFilePerStorage(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	data := pngBytes(t, 64, 48)
	for _, storage := range []string{"s3", "gcs", "azure", "b2"} {
		t.Run(storage, func(t *testing.T) {
			c, _ := newClient(t, e, "admin", nil)
			d := connect(t, ctx, c, storage)
			d.resolvePackage(t, ctx, "Portal Downloads", "Portal "+storage, "pkg-"+storage, "sub")
			got := d.deliverFile(t, ctx, "pkg-"+storage+"/sub", "frame.png", "image/png", data, uploadFor(t, ctx, c, d.storage.Method, data))

			// The bytes are where iconik expects them: settings.path + directory_path + name.
			key := d.storage.Setting("path") + "/pkg-" + storage + "/sub/frame.png"
			rc, n, err := e.OpenObject(d.storage.ID, key)
			if err != nil {
				t.Fatalf("object %s: %v", key, err)
			}
			stored, _ := io.ReadAll(rc)
			rc.Close()
			if n != int64(len(data)) || !bytes.Equal(stored, data) {
				t.Fatalf("object %s holds %d bytes, want the %d uploaded", key, n, len(data))
			}
			if got.job.Status != "FINISHED" || got.job.Progress != 100 {
				t.Errorf("job %s at %d%%", got.job.Status, got.job.Progress)
			}
			members, err := iconik.Collect(c.CollectionContentsList(ctx, d.folderID, iconik.CollectionContentsListParams{ObjectTypes: []string{"assets"}}))
			if err != nil || len(members) != 1 || members[0].ID != got.asset.ID {
				t.Errorf("folder members %+v, %v", members, err)
			}
			vals, err := c.MetadataValuesGet(ctx, got.asset.ID, d.viewID, iconik.MetadataValuesGetParams{})
			if err != nil || !strings.HasPrefix(vals.String("description"), "Package: X") {
				t.Errorf("description %+v, %v", vals, err)
			}
			jobs, err := iconik.Collect(c.JobList(ctx, iconik.JobListParams{ParentID: d.parentJob.ID}))
			if err != nil || len(jobs) != 1 || jobs[0].ID != got.job.ID {
				t.Errorf("child jobs %+v, %v", jobs, err)
			}
			if got.kf.Ignored {
				return
			}
			// The keyframe job runs in the background; a PNG gets a thumbnail.
			waitJob(t, ctx, c, got.kf.JobID)
			kfs, err := iconik.Collect(c.KeyframeList(ctx, got.asset.ID, iconik.KeyframeListParams{}))
			if err != nil || len(kfs) == 0 || kfs[0].URL == "" {
				t.Errorf("keyframes %+v, %v", kfs, err)
			}
		})
	}
}

func waitJob(t testing.TB, ctx context.Context, c *iconik.Client, id string) *iconik.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		j, err := c.JobGet(ctx, id)
		if err != nil {
			t.Fatalf("waiting for job %s: %v", id, err)
		}
		if j.Status != "READY" && j.Status != "STARTED" {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContractCollectionsAreFoundNotDuplicated(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	c, _ := newClient(t, e, "power", nil)
	path := []string{"Portal Downloads", "Portal", "pkg"}
	var first []string
	for round := range 2 {
		parent := ""
		var ids []string
		for _, title := range path {
			parent = ensureCollection(t, ctx, c, parent, title)
			ids = append(ids, parent)
		}
		if round == 0 {
			first = ids
		} else if !slices.Equal(ids, first) {
			t.Fatalf("second resolution gave %v, first %v: duplicates were created", ids, first)
		}
	}
	col, err := c.CollectionGet(ctx, first[2])
	if err != nil || col.ParentID != first[1] || col.Title != "pkg" {
		t.Fatalf("collection %+v, %v", col, err)
	}
}

func TestContractUploadHelpers(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	c, _ := newClient(t, e, "admin", nil)
	newFile := func(storage string) *iconik.File {
		t.Helper()
		d := connect(t, ctx, c, storage)
		a, err := c.AssetCreate(ctx, iconik.AssetCreateParams{Title: "h-" + storage})
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.FormatCreate(ctx, a.ID, iconik.FormatCreateParams{})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := c.FileSetCreate(ctx, a.ID, iconik.FileSetCreateParams{FormatID: f.ID, StorageID: d.storage.ID, Name: "x.bin"})
		if err != nil {
			t.Fatal(err)
		}
		file, err := c.FileCreate(ctx, a.ID, iconik.FileCreateParams{OriginalName: "x.bin", Size: 3, StorageID: d.storage.ID, FileSetID: fs.ID, FormatID: f.ID})
		if err != nil {
			t.Fatal(err)
		}
		return file
	}
	t.Run("S3 part URLs page by page and abort", func(t *testing.T) {
		f := newFile("s3")
		resp, err := http.Post(f.MultipartUploadURL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var start struct {
			UploadID string `xml:"UploadId"`
		}
		err = xml.NewDecoder(resp.Body).Decode(&start)
		resp.Body.Close()
		if err != nil || start.UploadID == "" {
			t.Fatalf("starting the multipart upload: %v", err)
		}
		parts, err := c.S3PartURLs(ctx, f.AssetID, f.ID, iconik.S3PartURLsParams{UploadID: start.UploadID, PartsNum: 25, PerPage: 10})
		if err != nil || len(parts) != 25 || parts[24].Number != 25 {
			t.Fatalf("got %d part urls, %v", len(parts), err)
		}
		if err := c.MultipartCleanup(ctx, f.AssetID, f.ID, iconik.MultipartCleanupParams{UploadID: start.UploadID, PartsNumber: 25, AbortUpload: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("GCS parallel composite: part URLs, compose URL, complete", func(t *testing.T) {
		f := newFile("gcs")
		parts, err := c.S3PartURLs(ctx, f.AssetID, f.ID, iconik.S3PartURLsParams{PartsNum: 2})
		if err != nil || len(parts) != 2 {
			t.Fatalf("part urls %+v, %v", parts, err)
		}
		for i, p := range parts {
			req, _ := http.NewRequestWithContext(ctx, "PUT", p.URL, strings.NewReader(fmt.Sprint("part", i+1, ";")))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("PUT part %d: %d", p.Number, resp.StatusCode)
			}
		}
		cu, err := c.GCSComposeURL(ctx, f.AssetID, f.ID, iconik.GCSComposeURLParams{ContentType: "application/octet-stream"})
		if err != nil || cu.ComposeURL == "" || cu.Key == "" {
			t.Fatalf("compose url %+v, %v", cu, err)
		}
		if err := c.GCSMultipartComplete(ctx, f.AssetID, f.ID, iconik.GCSMultipartCompleteParams{PartsRange: []string{"1-2"}}); err != nil {
			t.Fatal(err)
		}
		rc, _, err := e.OpenObject(f.StorageID, cu.Key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != "part1;part2;" {
			t.Fatalf("composed object %q", got)
		}
	})
	t.Run("B2 large file in two parts, finished", func(t *testing.T) {
		f := newFile("b2")
		l, err := c.B2LargeStart(ctx, f.AssetID, f.ID, iconik.B2LargeStartParams{})
		if err != nil {
			t.Fatal(err)
		}
		// B2's smallest part is 5 MB (all but the last).
		parts := [][]byte{bytes.Repeat([]byte("a"), 5_000_000), []byte("tail")}
		var sha1s []string
		for i, data := range parts {
			sum := sha1.Sum(data)
			sha1s = append(sha1s, hex.EncodeToString(sum[:]))
			req, _ := http.NewRequestWithContext(ctx, "POST", l.UploadURL, bytes.NewReader(data))
			req.Header.Set("Authorization", l.AuthorizationToken)
			req.Header.Set("X-Bz-Part-Number", fmt.Sprint(i+1))
			req.Header.Set("X-Bz-Content-Sha1", sha1s[i])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("part %d upload: %d %s", i+1, resp.StatusCode, body)
			}
		}
		if err := c.B2LargeFinish(ctx, f.AssetID, f.ID, iconik.B2LargeFinishParams{UploadFileID: l.UploadFileID, SHA1List: sha1s}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("S3 part URLs signed with checksums", func(t *testing.T) {
		f := newFile("s3")
		parts, err := c.S3PartURLs(ctx, f.AssetID, f.ID, iconik.S3PartURLsParams{UploadID: "any", Parts: []iconik.S3PartChecksum{
			{PartNumber: 1, Checksum: "1B2M2Y8AsgTpgAmY7PhCfg=="}, {PartNumber: 2}}})
		if err != nil || len(parts) != 2 || parts[0].Number != 1 || parts[1].URL == "" {
			t.Fatalf("checksummed part urls %+v, %v", parts, err)
		}
	})
	t.Run("fresh upload URLs", func(t *testing.T) {
		f := newFile("b2")
		g, err := c.FileGet(ctx, f.AssetID, f.ID, iconik.FileGetParams{GenerateSignedPostURL: true})
		if err != nil || g.UploadURL == "" || g.UploadCredential("authorizationToken") == "" {
			t.Fatalf("fresh B2 url: %+v, %v", g, err)
		}
	})
	t.Run("B2 large file resumed with its upload_file_id", func(t *testing.T) {
		f := newFile("b2")
		l, err := c.B2LargeStart(ctx, f.AssetID, f.ID, iconik.B2LargeStartParams{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.B2LargeStart(ctx, f.AssetID, f.ID, iconik.B2LargeStartParams{UploadFileID: l.UploadFileID})
		if err != nil || again.UploadFileID != l.UploadFileID || again.UploadURL == "" || again.AuthorizationToken == "" {
			t.Fatalf("resume: %+v, %v", again, err)
		}
		if _, err := c.B2LargeStart(ctx, f.AssetID, f.ID, iconik.B2LargeStartParams{UploadFileID: "4_znotstarted"}); err == nil {
			t.Fatal("a large file that was never started was resumed")
		}
	})
	t.Run("B2 large file start and cancel", func(t *testing.T) {
		f := newFile("b2")
		l, err := c.B2LargeStart(ctx, f.AssetID, f.ID, iconik.B2LargeStartParams{})
		if err != nil || l.UploadFileID == "" || l.UploadURL == "" || l.AuthorizationToken == "" {
			t.Fatalf("start: %+v, %v", l, err)
		}
		if err := c.B2LargeCancel(ctx, f.AssetID, f.ID, iconik.B2LargeCancelParams{UploadFileID: l.UploadFileID}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestContractPowerUserCannotWriteMetadataValues(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	admin, _ := newClient(t, e, "admin", nil)
	// The spec declares no 403 for PUT values; iconik's status for a missing role is open
	// (CONTRACT.md §1 Roles) and the emulator answers 403.
	power, _ := newClient(t, e, "power", nil, http.StatusForbidden)
	d := connect(t, ctx, admin, "s3")
	a, err := power.AssetCreate(ctx, iconik.AssetCreateParams{Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = power.MetadataValuesPut(ctx, a.ID, d.viewID, iconik.MetadataValuesPutParams{StringValues: map[string]string{"description": "x"}})
	if !iconik.IsForbidden(err) {
		t.Fatalf("power PUT values = %v, want 403", err)
	}
}

func TestContractFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("random 500s are retried away", func(t *testing.T) {
		e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{FailRate: 0.4}})
		c, cnt := newClient(t, e, "admin", func(o *iconik.Options) { o.MaxAttempts = 25 })
		for range 3 {
			if _, err := c.Verify(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// A create with an external id the caller can look up is marked safe to retry.
		if _, err := c.AssetCreate(ctx, iconik.AssetCreateParams{Title: "t", ExternalID: "x1", RetrySafe: true}); err != nil {
			t.Fatal(err)
		}
		if cnt.serverErrors.Load() == 0 {
			t.Fatal("no 500 was injected: the test proved nothing")
		}
	})
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{RateLimit: 5}})
		c, cnt := newClient(t, e, "admin", func(o *iconik.Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		for range 12 {
			if _, err := c.UserCurrent(cctx); err != nil {
				t.Fatal(err)
			}
		}
		if cnt.tooMany.Load() == 0 {
			t.Fatal("no 429 seen: the test proved nothing")
		}
	})
	t.Run("exhausted retries give a clear error", func(t *testing.T) {
		e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{FailRate: 1}})
		cr := e.Cred("admin")
		c, cnt := newClient(t, e, "admin", func(o *iconik.Options) { o.MaxAttempts = 3 })
		_, err := c.UserCurrent(ctx)
		var ie *iconik.Error
		if !errors.As(err, &ie) || ie.Status != 500 || ie.Attempts != 3 {
			t.Fatalf("err = %v, want a 500 *Error after 3 attempts", err)
		}
		msg := err.Error()
		for _, want := range []string{"GET /API/users/v1/users/current/", "500", "after 3 attempts", "injected fault"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, cr.Token) {
			t.Errorf("error leaks the token")
		}
		if cnt.calls.Load() < 3 {
			t.Errorf("%d calls, want 3 attempts", cnt.calls.Load())
		}
	})
	t.Run("latency beyond the deadline ends the call", func(t *testing.T) {
		e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{Latency: time.Minute}})
		c, _ := newClient(t, e, "admin", nil)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := c.UserCurrent(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestContractListsAndSearch(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	c, _ := newClient(t, e, "admin", nil)

	// Page list through the emulator's own next_url, 2 per page.
	var want []string
	for i := range 5 {
		col, err := c.CollectionCreate(ctx, iconik.CollectionCreateParams{Title: fmt.Sprintf("root %d", i), ExternalID: fmt.Sprintf("ext-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, col.ID)
	}
	var got []string
	for col, err := range c.CollectionList(ctx, iconik.CollectionListParams{IsRoot: iconik.Bool(true), PerPage: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, col.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("paged roots %v, want %v", got, want)
	}

	// Search by a term.
	hits, err := iconik.Collect(c.Search(ctx, iconik.SearchParams{DocTypes: []string{"collections"},
		Filter: &iconik.SearchFilter{Operator: "AND", Terms: []iconik.SearchTerm{{Name: "external_id", Value: "ext-3"}}}}))
	if err != nil || len(hits) != 1 || hits[0].Title != "root 3" {
		t.Fatalf("search hits %+v, %v", hits, err)
	}

	// Cursor lists of an asset, and reads by id/name.
	d := connect(t, ctx, c, "s3")
	st, err := c.StorageGet(ctx, d.storage.ID)
	if err != nil || st.Name != "s3" || st.Method != "S3" {
		t.Fatalf("storage %+v, %v", st, err)
	}
	a, err := c.AssetCreate(ctx, iconik.AssetCreateParams{Title: "listed"})
	if err != nil {
		t.Fatal(err)
	}
	if g, err := c.AssetGet(ctx, a.ID); err != nil || g.Title != "listed" || g.VersionID() == "" {
		t.Fatalf("asset %+v, %v", g, err)
	}
	f, err := c.FormatCreate(ctx, a.ID, iconik.FormatCreateParams{StorageMethods: []string{"S3"}})
	if err != nil {
		t.Fatal(err)
	}
	if g, err := c.FormatGet(ctx, a.ID, "ORIGINAL"); err != nil || g.ID != f.ID {
		t.Fatalf("format by name %+v, %v", g, err)
	}
	fs, err := c.FileSetCreate(ctx, a.ID, iconik.FileSetCreateParams{FormatID: f.ID, StorageID: d.storage.ID, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.FileCreate(ctx, a.ID, iconik.FileCreateParams{OriginalName: fmt.Sprintf("f%d", i), StorageID: d.storage.ID, FileSetID: fs.ID, FormatID: f.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if files, err := iconik.Collect(c.FileList(ctx, a.ID)); err != nil || len(files) != 3 {
		t.Fatalf("files %d, %v", len(files), err)
	}
	if sets, err := iconik.Collect(c.FileSetList(ctx, a.ID)); err != nil || len(sets) != 1 {
		t.Fatalf("file sets %d, %v", len(sets), err)
	}
	if fmts, err := iconik.Collect(c.FormatList(ctx, a.ID)); err != nil || len(fmts) != 1 {
		t.Fatalf("formats %d, %v", len(fmts), err)
	}
	// Metadata fields by last_field_name, 1 per page.
	for _, n := range []string{"alpha", "beta"} {
		if _, err := c.MetadataFieldCreate(ctx, iconik.MetadataFieldCreateParams{Name: n, Label: n, FieldType: "string"}); err != nil {
			t.Fatal(err)
		}
	}
	fields, err := iconik.Collect(c.MetadataFieldList(ctx, iconik.MetadataFieldListParams{PerPage: 1}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.Name)
	}
	for _, n := range []string{"alpha", "beta", "description"} {
		if !slices.Contains(names, n) {
			t.Errorf("fields %v lack %s", names, n)
		}
	}
	// A 404 is an *Error the caller can test.
	if _, err := c.AssetGet(ctx, "00000000-0000-1000-8000-000000000000"); !iconik.IsNotFound(err) {
		t.Errorf("unknown asset: %v, want 404", err)
	}
}

// recorder captures the spec mismatches ispec reports instead of failing the test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestContractSpecCheckIsLive proves newClient's validation hook is on: a request the spec
// rejects (a bad asset type) is reported, with method and path, while the emulator refuses it.
func TestContractSpecCheckIsLive(t *testing.T) {
	var emulatorSide atomic.Int64 // the emulator's own check sees it too
	e := emulatortest.Start(t, emulator.Options{CheckSpec: func(error) { emulatorSide.Add(1) }})
	rec := &recorder{TB: t}
	c, _ := newClient(rec, e, "admin", nil)
	_, err := c.AssetCreate(context.Background(), iconik.AssetCreateParams{Title: "t", Type: "MOVIE"})
	if !iconik.IsBadRequest(err) {
		t.Errorf("emulator answer: %v, want 400", err)
	}
	if emulatorSide.Load() == 0 {
		t.Errorf("the emulator's spec check did not report the off-spec request")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) == 0 || !strings.Contains(rec.errs[0], "POST /API/assets/v1/assets/") || !strings.Contains(rec.errs[0], "/type") {
		t.Fatalf("spec mismatches reported: %q", rec.errs)
	}
}

// TestContractBatchCalls: the description for many assets in one call (202,
// applied later) and keyframes for many assets in one transcode job.
func TestContractBatchCalls(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	c, _ := newClient(t, e, "admin", nil)
	d := connect(t, ctx, c, "s3")
	d.resolvePackage(t, ctx, "Portal Downloads", "Portal B", "pkg-b", "sub")
	data := pngBytes(t, 32, 24)
	var ids []string
	for i := range 3 {
		got := d.deliverFile(t, ctx, "pkg-b/sub", fmt.Sprintf("f%d.png", i), "image/png", data, uploadFor(t, ctx, c, d.storage.Method, data))
		ids = append(ids, got.asset.ID)
	}
	if err := c.MetadataValuesBatchPut(ctx, d.viewID, iconik.MetadataValuesBatchPutParams{ObjectIDs: ids,
		StringValues: map[string]string{"description": "Package: batch"}}); err != nil {
		t.Fatalf("batch metadata: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			vals, err := c.MetadataValuesGet(ctx, id, d.viewID, iconik.MetadataValuesGetParams{})
			if err != nil {
				t.Fatal(err)
			}
			if vals.String("description") == "Package: batch" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("asset %s: description %q, the batch never landed", id, vals.String("description"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	res, err := c.KeyframesBulkCreate(ctx, iconik.KeyframesBulkCreateParams{ObjectIDs: ids})
	if err != nil || res.JobID == "" {
		t.Fatalf("bulk keyframes: %+v, %v", res, err)
	}
	if j := waitJob(t, ctx, c, res.JobID); j.Status != "FINISHED" {
		t.Fatalf("bulk job %s", j.Status)
	}
	if _, err := c.KeyframesBulkCreate(ctx, iconik.KeyframesBulkCreateParams{ObjectIDs: make([]string, iconik.KeyframesBulkMax+1)}); err == nil {
		t.Fatal("more than 500 assets were sent")
	}
}
