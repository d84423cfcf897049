package crashtest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/testbed/child"
)

var (
	runs  = flag.Int("crash.runs", 20, "SIGKILL/restart cycles during the delivery")
	seed  = flag.Uint64("crash.seed", 1, "seed of the kill moments and file sizes")
	files = flag.Int("crash.files", 50, "files in the package")
	big   = flag.Int("crash.big", 2, "extra files of 40 MiB (S3 multipart: two parts of 32 MiB, resumed from the saved upload state)")
)

var ferryBin string

// TestMain builds the ferry binary once for every test of the package.
func TestMain(m *testing.M) {
	flag.Parse()
	child.Main(m, &ferryBin)
}

// The child-process harness is shared with notify's crash tests.
type (
	proc = child.Proc
	api  = child.API
)

var (
	freeAddr  = child.FreeAddr
	waitHTTP  = child.WaitHTTP
	tusUpload = child.TusUpload
)

func start(t *testing.T, logPath string, args ...string) *proc {
	return child.Start(t, ferryBin, logPath, args...)
}

func startDemo(t *testing.T, dir string, info any) *proc {
	return child.StartDemo(t, ferryBin, dir, info)
}

type deliveryJSON struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	CollectionID string `json:"collection_id"`
	IconikJobID  string `json:"iconik_job_id"`
	Files        []struct {
		FileID string `json:"file_id"`
		Path   string `json:"path"`
		State  string `json:"state"`
		Error  string `json:"error"`
		SHA256 string `json:"sha256"`
		Asset  string `json:"asset_id"`
	} `json:"files"`
}

// TestDeliveryResumesAfterSIGKILLWithoutDuplicates uploads a package through
// the real server, kills `ferry serve` with SIGKILL at seeded random moments
// of its delivery, restarts it each time, and then checks iconik: every file
// delivered, no object twice, every checksum equal.
func TestDeliveryResumesAfterSIGKILLWithoutDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	rnd := rand.New(rand.NewPCG(*seed, 99))
	dir := t.TempDir()
	logPath := filepath.Join(dir, "processes.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("process logs (last 6000 bytes):\n%s", b[max(0, len(b)-6000):])
		}
	})

	// iconik: its own process, which the kills never touch. Its latency
	// stretches the delivery so the kills land in the middle of it.
	// --check-spec: every request ferry and this test send to iconik, and
	// every answer, is checked against iconik's spec by the emulator.
	emuDir, specLog := filepath.Join(dir, "iconik"), filepath.Join(dir, "spec-mismatches.log")
	e := child.StartEmulator(t, ferryBin, logPath, emuDir, "--latency", "30ms", "--check-spec", specLog)
	emu, ic, storageID, ctx := e.Proc, e.Client, e.S3Storage, t.Context()

	// ferry: an admin and its API token, then the server.
	data := filepath.Join(dir, "ferry")
	tok := child.AdminToken(t, ferryBin, "admin@crash.test", "--data", data)
	addr := freeAddr(t)
	serve := func() *proc {
		p := start(t, logPath, "serve", "--data", data, "--addr", addr, "--log-level", "warn", "--delivery-index-grace", "500ms")
		waitHTTP(t, "http://"+addr+"/healthz", p)
		return p
	}
	ferry := serve()
	a := &api{T: t, Base: "http://" + addr, Token: tok}

	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	a.Do("POST", "/api/v1/connections", "", map[string]any{"name": "emulator", "base_url": e.URL, "app_id": e.AppID,
		"token": e.Token, "storage_id": storageID}, &conn)
	a.Do("POST", "/api/v1/portals", "", map[string]any{"name": "Crash", "slug": "crash", "active": true, "connection_ids": []string{conn.Connection.ID}}, nil)
	var created struct {
		Package struct {
			ID string `json:"id"`
		} `json:"package"`
		UploadToken string `json:"upload_token"`
	}
	a.Do("POST", "/p/crash/packages", "", map[string]any{"name": "Fifty", "sender_email": "crash@example.com"}, &created)
	sent := map[string][]byte{}
	for i := range *files {
		p := fmt.Sprintf("set %d/part %d/file-%02d.bin", i%4, i%3, i)
		data := make([]byte, 512+rnd.IntN(24<<10))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		sent[p] = data
		tusUpload(t, a.Base, created.UploadToken, p, data)
	}
	for i := range *big {
		p := fmt.Sprintf("big/file-%d.bin", i)
		data := make([]byte, 40<<20)
		for j := 0; j < len(data); j += 4096 {
			data[j] = byte(rnd.Uint32())
		}
		sent[p] = data
		tusUpload(t, a.Base, created.UploadToken, p, data)
	}
	a.Do("POST", "/p/crash/packages/"+created.Package.ID+"/finalize", created.UploadToken, nil, nil)
	var list struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	a.Do("GET", "/api/v1/packages/"+created.Package.ID+"/deliveries", "", nil, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("%d deliveries, want 1", len(list.Deliveries))
	}
	id := list.Deliveries[0].ID

	midDelivery := 0
	for run := range *runs {
		time.Sleep(time.Duration(20+rnd.IntN(400)) * time.Millisecond)
		var d struct {
			Delivery deliveryJSON `json:"delivery"`
		}
		a.Do("GET", "/api/v1/deliveries/"+id, "", nil, &d)
		if d.Delivery.State == "queued" || d.Delivery.State == "running" {
			midDelivery++
		}
		ferry.Kill()
		t.Logf("run %d: SIGKILL with the delivery %s", run+1, d.Delivery.State)
		ferry = serve()
	}

	var d struct {
		Delivery deliveryJSON `json:"delivery"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		a.Do("GET", "/api/v1/deliveries/"+id, "", nil, &d)
		if d.Delivery.State != "queued" && d.Delivery.State != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery still %s", d.Delivery.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d of %d kills landed while the delivery was unsettled", midDelivery, *runs)
	if midDelivery == 0 {
		t.Fatalf("no kill landed during the delivery: the test proved nothing")
	}
	if d.Delivery.State != "delivered" || len(d.Delivery.Files) != len(sent) {
		for _, f := range d.Delivery.Files {
			t.Logf("%s: %s %s", f.Path, f.State, f.Error)
		}
		t.Fatalf("delivery %s with %d files, want delivered with %d", d.Delivery.State, len(d.Delivery.Files), len(sent))
	}

	// iconik: no object twice, every file's bytes and checksums equal.
	var assets []string
	var walk func(id, at string)
	walk = func(cid, at string) {
		var titles []string
		for it, err := range ic.CollectionContentsList(ctx, cid, iconik.CollectionContentsListParams{}) {
			if err != nil {
				t.Fatal(err)
			}
			titles = append(titles, it.ObjectType+":"+it.Title)
			if it.ObjectType == "collections" {
				walk(it.ID, at+it.Title+"/")
				continue
			}
			assets = append(assets, it.ExternalID)
			checkAsset(t, ic, it.ID, at+it.Title, sent[at+it.Title], emuDir, storageID)
		}
		sorted := slices.Sorted(slices.Values(titles))
		if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
			t.Fatalf("collection %q holds duplicates: %q", at, sorted)
		}
	}
	walk(d.Delivery.CollectionID, "")
	if len(assets) != len(sent) || len(slices.Compact(slices.Sorted(slices.Values(assets)))) != len(sent) {
		t.Fatalf("%d assets (%d distinct external ids), want %d", len(assets), len(slices.Compact(slices.Sorted(slices.Values(assets)))), len(sent))
	}
	for _, f := range d.Delivery.Files {
		sum := sha256.Sum256(sent[f.Path])
		if f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: delivered sha256 %s, sent %x", f.Path, f.SHA256, sum)
		}
	}
	roots := 0
	for c, err := range ic.CollectionList(ctx, iconik.CollectionListParams{IsRoot: new(true)}) {
		if err != nil {
			t.Fatal(err)
		}
		if c.Title == "Portal Downloads" {
			roots++
		}
	}
	parents := 0
	for _, err := range ic.JobList(ctx, iconik.JobListParams{ObjectID: d.Delivery.CollectionID, Type: "TRANSFER"}) {
		if err != nil {
			t.Fatal(err)
		}
		parents++
	}
	if roots != 1 || parents != 1 {
		t.Fatalf("%d Portal Downloads roots and %d package jobs, want 1 each", roots, parents)
	}

	// The whole tenant, from the state the emulator writes when it stops:
	// assets by external_id, collections by parent and title (roots and the
	// portal level included), files, formats, file sets and jobs per asset.
	emu.Stop(t)
	dups, err := emulator.DuplicatesIn(emuDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) != 0 {
		t.Errorf("iconik holds duplicates:\n%s", strings.Join(dups, "\n"))
	}
	noSpecMismatches(t, specLog)
}

// noSpecMismatches fails t when the emulator's --check-spec file has lines.
func noSpecMismatches(t *testing.T, specLog string) {
	t.Helper()
	b, err := os.ReadFile(specLog)
	if err != nil {
		t.Fatalf("reading the emulator's spec mismatches: %v", err)
	}
	if len(b) != 0 {
		t.Errorf("iconik traffic off the spec:\n%s", b)
	}
}

// TestEmulatorCheckSpecRecordsMismatches: `ferry iconik-emulator
// --check-spec FILE` writes one line per off-spec request and nothing for
// valid traffic, so a test reading FILE can trust an empty one.
func TestEmulatorCheckSpecRecordsMismatches(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	data, specLog := filepath.Join(dir, "iconik"), filepath.Join(dir, "spec.log")
	e := child.StartEmulator(t, ferryBin, filepath.Join(dir, "emulator.log"), data, "--check-spec", specLog)
	emu := e.Proc
	send := func(body string) int {
		req, _ := http.NewRequest("POST", e.URL+"/API/assets/v1/assets/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("App-ID", e.AppID)
		req.Header.Set("Auth-Token", e.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send(`{"title": "fine"}`); st != http.StatusCreated {
		t.Fatalf("valid asset: %d", st)
	}
	if st := send(`{"title": "bad", "type": "MOVIE"}`); st != http.StatusBadRequest {
		t.Fatalf("asset with a bad type: %d", st)
	}
	emu.Stop(t)
	b, err := os.ReadFile(specLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "POST /API/assets/v1/assets/") || !strings.Contains(lines[0], "/type") {
		t.Fatalf("mismatches recorded: %q, want one line for the bad type", lines)
	}
	if strings.Contains(string(b), e.Token) {
		t.Fatal("the mismatch file holds a token")
	}
}

// checkAsset: one format, file set, file and transfer job; the file CLOSED
// with the MD5 and size of what was sent, and the same bytes in the storage.
func checkAsset(t *testing.T, ic *iconik.Client, assetID, relPath string, data []byte, emuDir, storageID string) {
	t.Helper()
	ctx := t.Context()
	n := func(seq func(yield func(struct{}, error) bool)) int {
		c := 0
		for _, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			c++
		}
		return c
	}
	formats := n(func(y func(struct{}, error) bool) {
		for _, err := range ic.FormatList(ctx, assetID) {
			if !y(struct{}{}, err) {
				return
			}
		}
	})
	sets := n(func(y func(struct{}, error) bool) {
		for _, err := range ic.FileSetList(ctx, assetID) {
			if !y(struct{}{}, err) {
				return
			}
		}
	})
	jobs := n(func(y func(struct{}, error) bool) {
		for _, err := range ic.JobList(ctx, iconik.JobListParams{ObjectID: assetID, Type: "TRANSFER"}) {
			if !y(struct{}{}, err) {
				return
			}
		}
	})
	var fs []iconik.File
	for f, err := range ic.FileList(ctx, assetID) {
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	if formats != 1 || sets != 1 || jobs != 1 || len(fs) != 1 {
		t.Fatalf("%s: %d formats, %d file sets, %d files, %d jobs; want one of each", relPath, formats, sets, len(fs), jobs)
	}
	sum := md5.Sum(data)
	if fs[0].Status != "CLOSED" || fs[0].Checksum != hex.EncodeToString(sum[:]) || int64(fs[0].Size) != int64(len(data)) {
		t.Fatalf("%s: iconik file %s checksum %s size %d, want CLOSED %x %d", relPath, fs[0].Status, fs[0].Checksum, fs[0].Size, sum, len(data))
	}
	stored, err := os.ReadFile(filepath.Join(emuDir, "storages", storageID, "ferry", fs[0].DirectoryPath, fs[0].OriginalName))
	if err != nil {
		t.Fatalf("%s: reading the stored object: %v", relPath, err)
	}
	if !bytes.Equal(stored, data) {
		t.Fatalf("%s: the storage holds %d bytes that differ from the %d sent", relPath, len(stored), len(data))
	}
}
