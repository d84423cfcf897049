package ingest

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPatchCutMidBodyResumesWithoutRehashing closes the TCP connection in the middle of a PATCH
// body, then resumes the way a tus client does (HEAD, PATCH from the offset).
func TestPatchCutMidBodyResumesWithoutRehashing(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 6<<20)
	loc := rg.create(len(data), fileMeta(data, true), nil)
	id := idOf(loc)

	u, _ := url.Parse(loc)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		u.Path, u.Host, testToken, len(data))
	sent := 3 << 20
	if _, err := conn.Write(data[:sent]); err != nil {
		t.Fatal(err)
	}
	// Wait until the server is storing this PATCH (it then holds the upload's lock), then cut.
	bin := filepath.Join(rg.dir, id+".bin")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, err := os.Stat(bin); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never stored a byte of the PATCH")
		}
	}
	conn.Close()

	off := rg.offset(loc)
	if off <= 0 || off > sent {
		t.Fatalf("offset after the cut = %d, want within (0, %d]", off, sent)
	}
	if res := rg.patch(loc, off, data[off:]); res.Status != http.StatusNoContent {
		t.Fatalf("resuming PATCH: %d %s", res.Status, res.Body)
	}
	cs := rg.gate.completions()
	if len(cs) != 1 || hex.EncodeToString(cs[0].Sum.SHA256) != sha(data) {
		t.Fatalf("completions = %+v, want the whole file's sha256", cs)
	}
	if g := gapHashed(rg.ing); g != 0 {
		t.Errorf("re-hashed %d bytes: a cut connection must save the hash state of what was stored", g)
	}
}

// TestCrashBeforeHashSaveRehashesOnlyTheGap stands in for a process killed after writing bytes
// but before saving the hash state: the state on disk is rolled back to an earlier PATCH.
func TestCrashBeforeHashSaveRehashesOnlyTheGap(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 3<<20)
	loc := rg.create(len(data), fileMeta(data, true), nil)
	state := filepath.Join(rg.dir, idOf(loc)+".hash")

	a, b := 1<<20, 2<<20+11
	rg.patch(loc, 0, data[:a])
	saved, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	rg.patch(loc, a, data[a:b])
	if err := os.WriteFile(state, saved, 0o640); err != nil { // the save of the second PATCH is "lost"
		t.Fatal(err)
	}

	// The restarted server (a new engine over the same directory) resumes.
	gate := &recGate{}
	rg2 := newRigIn(t, rg.dir, gate)
	loc2 := rg2.srv.URL + "/uploads/" + idOf(loc)
	if got := rg2.offset(loc2); got != b {
		t.Fatalf("offset after restart = %d, want %d", got, b)
	}
	if res := rg2.patch(loc2, b, data[b:]); res.Status != http.StatusNoContent {
		t.Fatalf("PATCH after restart: %d %s", res.Status, res.Body)
	}
	cs := gate.completions()
	if len(cs) != 1 || hex.EncodeToString(cs[0].Sum.SHA256) != sha(data) {
		t.Fatalf("completions = %+v, want the whole file's sha256", cs)
	}
	if g := gapHashed(rg2.ing); g != int64(b-a) {
		t.Errorf("re-hashed %d bytes from disk, want exactly the gap of %d", g, b-a)
	}
}
