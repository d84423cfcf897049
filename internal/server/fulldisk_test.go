package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// newHarnessOnSmallDisk runs the App (SQLite included) with its data directory on a tmpfs of
// size bytes that really fills up, keeping reserve bytes for the database.
func newHarnessOnSmallDisk(t *testing.T, size, reserve int64) *harness {
	t.Helper()
	return startHarness(t, testbed.SmallDisk(t, size), Options{}, func(c *config.Config, _ string) { c.DiskReserve = config.ByteSize(reserve) })
}

type readyBody struct {
	Status string           `json:"status"`
	Checks []web.ReadyCheck `json:"checks"`
	Free   *int64           `json:"upload_store_free_bytes"`
	Resv   int64            `json:"disk_reserve_bytes"`
}

func (h *harness) readyz() (int, readyBody, []byte) {
	h.t.Helper()
	resp, body := h.req("GET", "/readyz", nil)
	var rb readyBody
	if err := json.Unmarshal(body, &rb); err != nil {
		h.t.Fatalf("/readyz body %q: %v", body, err)
	}
	if bytes.Contains(body, []byte(h.root)) {
		h.t.Errorf("/readyz names a server path: %s", body)
	}
	return resp.StatusCode, rb, body
}

func failing(rb readyBody) map[string]bool {
	out := map[string]bool{}
	for _, c := range rb.Checks {
		if !c.OK {
			out[c.Name] = true
		}
	}
	return out
}

func TestReadyzTurnsNotReadyBelowTheReserveAndBackOnceSpaceIsFreed(t *testing.T) {
	const reserve = 8 << 20
	h := newHarnessOnSmallDisk(t, 48<<20, reserve)

	code, rb, body := h.readyz()
	if code != http.StatusOK || rb.Status != "ready" || len(rb.Checks) < 4 {
		t.Fatalf("fresh server: /readyz %d %s", code, body)
	}
	if rb.Free == nil || *rb.Free <= reserve || *rb.Free > 48<<20 || rb.Resv != reserve {
		t.Fatalf("fresh server: free bytes %v, reserve %d: %s", rb.Free, rb.Resv, body)
	}

	// Another process leaves 4 MiB: below the 8 MiB reserve.
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.root, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(h.root, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*int64(st.Bsize)-4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	code, rb, body = h.readyz()
	if code != http.StatusServiceUnavailable || rb.Status != "not_ready" || !failing(rb)["disk_space"] || failing(rb)["database"] {
		t.Fatalf("below the reserve: /readyz %d %s; want 503 with disk_space failing, database fine", code, body)
	}
	if rb.Free == nil || *rb.Free >= reserve {
		t.Fatalf("below the reserve: free bytes %v", rb.Free)
	}

	// Completely full: the store itself cannot be written.
	testbed.Fill(t, filler+"2")
	code, rb, body = h.readyz()
	if code != http.StatusServiceUnavailable || !failing(rb)["upload_store"] {
		t.Fatalf("full disk: /readyz %d %s; want 503 with upload_store failing", code, body)
	}

	os.Remove(filler)
	os.Remove(filler + "2")
	if code, _, body = h.readyz(); code != http.StatusOK {
		t.Fatalf("space freed: /readyz %d %s", code, body)
	}

	// A database whose newest migration is missing (restored from an older backup).
	if _, err := h.app.DB.SQLDB().ExecContext(t.Context(), "DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)"); err != nil {
		t.Fatal(err)
	}
	code, rb, body = h.readyz()
	if code != http.StatusServiceUnavailable || !failing(rb)["migrations"] || failing(rb)["database"] {
		t.Fatalf("migration missing: /readyz %d %s; want 503 with migrations failing", code, body)
	}

	// A database that does not answer.
	h.app.DB.SQLDB().Close()
	code, rb, body = h.readyz()
	if code != http.StatusServiceUnavailable || !failing(rb)["database"] {
		t.Fatalf("database closed: /readyz %d %s; want 503 with database failing", code, body)
	}
}

// connectEmulator saves a Cloud Connect connection to the emulator's S3 storage.
func connectEmulator(t *testing.T, h *harness, emu *emulatortest.Emulator) string {
	t.Helper()
	cred := emu.Cred("admin")
	creds := map[string]string{"base_url": emu.URL, "app_id": cred.AppID, "token": cred.Token}
	var v struct {
		Verification web.Verification `json:"verification"`
	}
	resp, body := h.req("POST", "/api/v1/connections/verify", creds, h.admin()...)
	h.mustJSON(resp, body, 200, &v)
	in := map[string]string{"name": "Tenant S3"}
	for k, x := range creds {
		in[k] = x
	}
	for _, s := range v.Verification.Storages {
		if s.Name == "s3" {
			in["storage_id"] = s.ID
		}
	}
	var c struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = h.req("POST", "/api/v1/connections", in, h.admin()...)
	h.mustJSON(resp, body, 201, &c)
	return c.Connection.ID
}

// The scenario on a 48 MiB disk: a send larger than the disk. Its file is refused with
// 507 before a byte is stored, the disk then fills down to the reserve by other means, and the
// package still finalizes and delivers into iconik with every record written (SQLite lives on
// the same disk).
func TestFinalizeAndDeliveryStillRecordWhenUploadsAreRefusedForLackOfSpace(t *testing.T) {
	const reserve = 12 << 20
	h := newHarnessOnSmallDisk(t, 48<<20, reserve)
	emu := emulatortest.Start(t, emulator.Options{})
	conn := connectEmulator(t, h, emu)
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)
	h.portal(map[string]any{"name": "Pipe", "slug": "pipe", "active": true, "connection_ids": []string{conn}})
	var c created
	resp, body := h.req("POST", "/p/pipe/packages", map[string]string{"name": "Shoot", "sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &c)
	h.upload(c.UploadToken, "day1/small.mov", bytes.Repeat([]byte("frame"), 50_000))

	// 64 MiB on a 48 MiB disk.
	big := []string{"Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(64 << 20), "Authorization", "Bearer " + c.UploadToken,
		"Upload-Metadata", "relativePath ZGF5MS9iaWcubW92"} // day1/big.mov
	resp, body = h.req("POST", "/uploads/", nil, big...)
	if resp.StatusCode != http.StatusInsufficientStorage || bytes.Contains(body, []byte(h.root)) {
		t.Fatalf("a file larger than the disk: %d %s; want 507 without paths", resp.StatusCode, body)
	}

	// Something else takes the disk down to the reserve: uploads stop, records go on.
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.root, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.root, "filler"), make([]byte, int64(st.Bavail)*int64(st.Bsize)-reserve), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body = h.tusUpload(c.UploadToken, map[string]string{"relativePath": "day1/late.mov"}, []byte("late"))
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("an upload at the reserve: %d %s; want 507", resp.StatusCode, body)
	}

	resp, body = h.req("POST", "/p/pipe/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	var list struct {
		Deliveries []web.Delivery `json:"deliveries"`
	}
	resp, body = h.req("GET", "/api/v1/packages/"+c.Package.ID+"/deliveries", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("deliveries after finalize: %+v", list.Deliveries)
	}
	d := waitDelivered(t, h, list.Deliveries[0].ID)
	if len(d.Files) != 1 || d.Files[0].IconikFileID == "" || d.BytesDone != d.Bytes {
		t.Fatalf("delivery on a disk at its reserve: %+v", d)
	}
}

// When even the reserve is gone (another writer took it), a database write that finds no room
// answers 507 insufficient_storage, not 500 internal, and names no path.
func TestDatabaseWritesOnAFullDiskAnswer507(t *testing.T) {
	h := newHarnessOnSmallDisk(t, 48<<20, 4<<20)
	h.portal(map[string]any{"name": "Pipe", "slug": "pipe", "active": true})
	testbed.Fill(t, filepath.Join(h.root, "filler"))
	var last []byte
	for i := range 200 { // SQLite reuses its journal's free pages first: write until it needs more
		resp, body := h.req("POST", "/p/pipe/packages", map[string]string{"name": fmt.Sprintf("Shoot %d", i), "sender_email": "s@example.com"})
		if resp.StatusCode == http.StatusCreated {
			last = body
			continue
		}
		if resp.StatusCode != http.StatusInsufficientStorage || bytes.Contains(body, []byte(h.root)) {
			t.Fatalf("package creation on a full disk: %d %s; want 507 without paths", resp.StatusCode, body)
		}
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(body, &e)
		if e.Error.Code != "insufficient_storage" {
			t.Fatalf("package creation on a full disk: code %q: %s", e.Error.Code, body)
		}
		return
	}
	t.Fatalf("200 package creations on a full disk all succeeded; last %s", last)
}

// The closing observation, kept: a `ferry send` stopped by a full disk resumes once
// space is back, sending only what the server does not have.
func TestFerrySendStoppedByAFullDiskResumesOnceSpaceIsBack(t *testing.T) {
	const reserve = 4 << 20
	h := newHarnessOnSmallDisk(t, 48<<20, reserve)
	h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
	src := t.TempDir()
	data := randBytes(rand.New(rand.NewPCG(5, 6)), 12<<20+7)
	if err := os.WriteFile(filepath.Join(src, "clip.mov"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	target, err := send.ParseTarget(h.srv.URL+"/p/send", "")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	opts := send.Options{Target: target, Paths: []string{src}, Info: send.PackageInfo{Email: "s@example.com"},
		// Two streams split the file into 1 MiB parts, so some fit before the disk is full
		// (one stream would send it whole, refused before a byte is stored).
		Streams: 2, Large: 1 << 20, MaxPart: 1 << 20, StateDir: state, MaxRetries: 1,
		Backoff: func(int) time.Duration { return time.Millisecond }}

	// Another writer leaves room for about half the file above the reserve.
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.root, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(h.root, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*int64(st.Bsize)-reserve-6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = send.Send(t.Context(), opts)
	if err == nil {
		t.Fatal("ferry send of 12 MiB with 6 MiB of room finished")
	}
	if strings.Contains(err.Error(), h.root) {
		t.Errorf("the sender's error names a server path: %v", err)
	}
	t.Logf("first run: %v", err)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res, err := send.Send(t.Context(), opts)
	if err != nil {
		t.Fatalf("re-run after space came back: %v", err)
	}
	if res.Sent >= int64(len(data)) {
		t.Errorf("re-run sent %d bytes of %d: nothing was resumed", res.Sent, len(data))
	}
	files, err := h.app.DB.FileListByPackage(t.Context(), &db.FileListByPackageParams{PackageID: res.PackageID})
	if err != nil {
		t.Fatal(err)
	}
	// Every part was verified on arrival; the whole file's digest waits for its first read.
	if len(files) != 1 || files[0].State != db.FileComplete || files[0].Size != int64(len(data)) {
		t.Fatalf("files after the resumed send: %+v", files)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.storedSHA256(files[0].UploadID), want[:]) {
		t.Fatalf("the stored file differs from the sent one")
	}
}

// storedSHA256 reads upload id back from the App's store and hashes it.
func (h *harness) storedSHA256(id string) []byte {
	h.t.Helper()
	blob, err := h.app.Ingest.Open(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	defer blob.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(blob, 0, blob.Size())); err != nil {
		h.t.Fatal(err)
	}
	return sum.Sum(nil)
}
