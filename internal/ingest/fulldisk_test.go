package ingest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/ferryhq/ferry/internal/testbed"
)

// noPath fails the test when a response body names the data directory: a sender never learns
// where the server keeps its bytes.
func noPath(t *testing.T, what string, res *tusResp, dir string) {
	t.Helper()
	if bytes.Contains(res.Body, []byte(dir)) || bytes.Contains(res.Body, []byte(".bin")) {
		t.Errorf("%s: body names a server path: %s", what, res.Body)
	}
}

// smallDisks are the file systems the full-disk tests run on: tmpfs (page-cache writes) and
// ext4 on a loop device (O_DIRECT writes meet ENOSPC too).
var smallDisks = []struct {
	name  string
	mount func(testing.TB, int64) string
}{
	{"tmpfs", testbed.SmallDisk},
	{"ext4", testbed.SmallExt4Disk},
}

func TestFullDiskAnswers507WithoutPathsAndTheUploadResumesOnceSpaceIsBack(t *testing.T) {
	for _, d := range smallDisks {
		t.Run(d.name, func(t *testing.T) { fullDiskThenResume(t, d.mount(t, 32<<20)) })
	}
}

func fullDiskThenResume(t *testing.T, disk string) {
	rg := newRigIn(t, filepath.Join(disk, "uploads"), &recGate{})
	data := randBytes(t, 8<<20)
	url := rg.create(len(data), map[string]string{"filename": "a.mov"}, nil)

	// Another process takes every byte left.
	filler := filepath.Join(disk, "filler")
	testbed.Fill(t, filler)

	res := rg.patch(url, 0, data)
	if res.Status != http.StatusInsufficientStorage {
		t.Fatalf("PATCH on a full disk: status %d, want 507: %s", res.Status, res.Body)
	}
	if res.errCode() != "insufficient_storage" {
		t.Errorf("PATCH on a full disk: code %q, want insufficient_storage: %s", res.errCode(), res.Body)
	}
	noPath(t, "PATCH on a full disk", res, disk)

	more := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Length": "4096"}})
	if more.Status != http.StatusInsufficientStorage {
		t.Fatalf("creation on a full disk: status %d, want 507: %s", more.Status, more.Body)
	}
	noPath(t, "creation on a full disk", more, disk)

	// Space comes back: the sender resumes from what the server kept.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	off := rg.offset(url)
	if off > len(data) {
		t.Fatalf("offset %d past the upload's %d bytes", off, len(data))
	}
	if res := rg.patch(url, off, data[off:]); res.Status != http.StatusNoContent {
		t.Fatalf("resumed PATCH from %d: status %d: %s", off, res.Status, res.Body)
	}
	if got := rg.readBack(idOf(url)); !bytes.Equal(got, data) {
		t.Fatalf("resumed upload differs from what was sent (%d bytes back, %d sent)", len(got), len(data))
	}
	if c := rg.gate.completions(); len(c) != 1 || sha(data) != hex.EncodeToString(c[0].Sum.SHA256) {
		t.Fatalf("completions %+v, want one with the data's SHA-256", c)
	}
}

func TestCreationThatCannotFitIsRefusedWith507BeforeAnythingIsStored(t *testing.T) {
	disk := testbed.SmallDisk(t, 32<<20)
	dir := filepath.Join(disk, "uploads")
	gate := &recGate{}
	rg := newRigIn(t, dir, gate, func(c *Config) { c.DiskReserve = 4 << 20 })

	// Free space is 32 MiB less the reserve: 28 MiB (less a little the file system keeps).
	for _, tc := range []struct {
		name   string
		length int64
		want   int
	}{
		{"larger than the disk", 40 << 20, http.StatusInsufficientStorage},
		{"fits the disk but not above the reserve", 30 << 20, http.StatusInsufficientStorage},
		{"fits above the reserve", 20 << 20, http.StatusCreated},
		// The 20 MiB upload has sent nothing yet but its bytes are promised.
		{"fits the free space but not beside the upload in progress", 10 << 20, http.StatusInsufficientStorage},
		{"fits beside the upload in progress", 4 << 20, http.StatusCreated},
	} {
		before := len(gate.admitted)
		files, _ := os.ReadDir(dir)
		res := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Length": strconv.FormatInt(tc.length, 10)}})
		if res.Status != tc.want {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, res.Status, tc.want, res.Body)
		}
		if tc.want != http.StatusInsufficientStorage {
			continue
		}
		noPath(t, tc.name, res, disk)
		if res.errCode() != "insufficient_storage" {
			t.Errorf("%s: code %q, want insufficient_storage", tc.name, res.errCode())
		}
		if len(gate.admitted) != before {
			t.Errorf("%s: the gate admitted the upload (the package would count it)", tc.name)
		}
		if after, _ := os.ReadDir(dir); len(after) != len(files) {
			t.Errorf("%s: %d files in the store, %d before: something was stored", tc.name, len(after), len(files))
		}
	}
}

func freeOn(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// The reserve is the database's headroom: when something else eats the free space, uploads
// stop at the reserve instead of taking the last bytes.
func TestUploadsStopAtTheReserveWhenSomethingElseFillsTheDisk(t *testing.T) {
	disk := testbed.SmallDisk(t, 32<<20)
	const reserve = 8 << 20
	rg := newRigIn(t, filepath.Join(disk, "uploads"), &recGate{}, func(c *Config) { c.DiskReserve = reserve })
	data := randBytes(t, 8<<20)
	url := rg.create(len(data), nil, nil)

	// Another process leaves 10 MiB free: 2 MiB above the reserve.
	filler := make([]byte, freeOn(t, disk)-10<<20)
	if err := os.WriteFile(filepath.Join(disk, "filler"), filler, 0o600); err != nil {
		t.Fatal(err)
	}
	res := rg.patch(url, 0, data)
	if res.Status != http.StatusInsufficientStorage || res.errCode() != "insufficient_storage" {
		t.Fatalf("PATCH into the reserve: status %d, want 507 insufficient_storage: %s", res.Status, res.Body)
	}
	noPath(t, "PATCH into the reserve", res, disk)
	if free := freeOn(t, disk); free < reserve {
		t.Fatalf("uploads took the reserve: %d bytes free, reserve %d", free, reserve)
	}
	if off := rg.offset(url); off == 0 || off >= len(data) {
		t.Errorf("offset %d: want the bytes that fitted above the reserve kept", off)
	}
}

func TestDeferredLengthThatCannotFitIsRefusedWith507WhenDeclared(t *testing.T) {
	disk := testbed.SmallDisk(t, 32<<20)
	rg := newRigIn(t, filepath.Join(disk, "uploads"), &recGate{}, func(c *Config) { c.DiskReserve = 4 << 20 })
	res := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Defer-Length": "1"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create with deferred length: %d %s", res.Status, res.Body)
	}
	url := res.Header.Get("Location")
	res = rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: []byte("abc"),
		Header: map[string]string{"Upload-Offset": "0", "Upload-Length": strconv.Itoa(40 << 20)}})
	if res.Status != http.StatusInsufficientStorage || res.errCode() != "insufficient_storage" {
		t.Fatalf("declaring 40 MiB on a 32 MiB disk: status %d, want 507 insufficient_storage: %s", res.Status, res.Body)
	}
	noPath(t, "declaring a length that cannot fit", res, disk)
}

func TestRoomPromisedToUnfinishedUploadsSurvivesARestart(t *testing.T) {
	disk := testbed.SmallDisk(t, 32<<20)
	dir := filepath.Join(disk, "uploads")
	reserve := func(c *Config) { c.DiskReserve = 4 << 20 }
	rg := newRigIn(t, dir, &recGate{}, reserve)
	url := rg.create(20<<20, nil, nil)
	if res := rg.patch(url, 0, randBytes(t, 1<<20)); res.Status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", res.Status, res.Body)
	}
	rg.srv.Close()

	rg = newRigIn(t, dir, &recGate{}, reserve)
	res := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Length": strconv.Itoa(10 << 20)}})
	if res.Status != http.StatusInsufficientStorage {
		t.Fatalf("after a restart, 10 MiB beside an unfinished 20 MiB upload on a 32 MiB disk: status %d, want 507: %s", res.Status, res.Body)
	}
}

func TestCreationWhoseRecordFindsTheDatabaseDiskFullAnswers507(t *testing.T) {
	gate := &recGate{admitErr: fmt.Errorf("db: package add bytes: database or disk is full (13): %w", syscall.ENOSPC)}
	rg := newRigIn(t, t.TempDir(), gate)
	res := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Length": "10"}})
	if res.Status != http.StatusInsufficientStorage || res.errCode() != "insufficient_storage" {
		t.Fatalf("Admit failing on a full database disk: status %d, want 507 insufficient_storage: %s", res.Status, res.Body)
	}
	if ids, _ := rg.ing.store.IDs(); len(ids) != 0 {
		t.Fatalf("uploads stored: %v", ids)
	}
}

// The boundary: a length equal to what Space says is available is admitted and arrives whole
// (the write guard does not stop it at its end); one byte more is refused.
func TestALengthThatExactlyFitsIsAdmittedAndFinishes(t *testing.T) {
	disk := testbed.SmallDisk(t, 32<<20)
	rg := newRigIn(t, filepath.Join(disk, "uploads"), &recGate{}, func(c *Config) { c.DiskReserve = 4 << 20 })
	sp, err := rg.ing.Space()
	if err != nil || !sp.Known {
		t.Fatalf("Space: %+v, %v", sp, err)
	}
	n := sp.Available()
	res := rg.do(tusReq{Method: "POST", Token: testToken, Header: map[string]string{"Upload-Length": strconv.FormatInt(n+1, 10)}})
	if res.Status != http.StatusInsufficientStorage {
		t.Fatalf("one byte past the available %d: status %d, want 507", n, res.Status)
	}
	data := randBytes(t, int(n))
	url := rg.create(len(data), nil, nil)
	if res := rg.patch(url, 0, data); res.Status != http.StatusNoContent {
		t.Fatalf("exactly the available %d bytes: PATCH %d %s", n, res.Status, res.Body)
	}
	if after, _ := rg.ing.Space(); after.Free < after.Reserve {
		t.Fatalf("the upload took the reserve: %+v", after)
	}
}
