package delivery_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/portal"
)

// putUndeclared uploads one file the way a parallel upload ends: the sender
// declared no whole-file SHA-256 and ingest computed none, so the file's
// SHA-256 is unknown until a delivery reads the bytes.
func (e *env) putUndeclared(h *pkgHandle, path string, data []byte) {
	e.t.Helper()
	up := fmt.Sprintf("up-%d", e.upload.Add(1))
	adm, err := e.portal.Admit(e.ctx, portal.Upload{Token: h.token, RelativePath: path, Filename: filepath.Base(path), Size: int64(len(data)), UploadID: up})
	if err != nil {
		e.t.Fatalf("admitting %s: %v", path, err)
	}
	h.uploads[path] = up
	if err := os.WriteFile(filepath.Join(e.blobs, up), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	f, err := e.portal.CompleteFile(e.ctx, portal.Completion{FileRef: portal.FileRef{FileID: adm.File.ID, UploadID: up}, Size: int64(len(data))}, e.svc.OnComplete)
	if err != nil {
		e.t.Fatalf("completing %s: %v", path, err)
	}
	if f.SHA256 != "" {
		e.t.Fatalf("%s: ingest recorded SHA-256 %s, want none for this test", path, f.SHA256)
	}
	h.files[path] = data
	h.ids[path] = f.ID
}

// TestFirstDeliveryRecordsTheSHA256OfAnUndeclaredFile: a file whose
// SHA-256 nobody declared gets the one its first delivery computed while
// streaming, recorded on the file; a later delivery of the same file (Send
// to Cloud to another connection) compares against it, so bytes damaged on
// disk since then fail instead of being delivered.
func TestFirstDeliveryRecordsTheSHA256OfAnUndeclaredFile(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.connect("first", "s3")
	second := e.connect("second", "s3")
	e.createPortal("Big", first.ID)
	h := e.newPackage("big", "Parallel", "p@example.com")
	data := bytes.Repeat([]byte("parallel upload "), 4096)
	e.putUndeclared(h, "cam/big.mov", data)
	e.finalize(h)
	st := e.settled(h, first.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("first delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	f, err := e.store.FileGetByID(e.ctx, &db.FileGetByIDParams{ID: h.ids["cam/big.mov"]})
	if err != nil {
		t.Fatal(err)
	}
	if f.SHA256 != want || !f.SHA256Verified {
		t.Fatalf("file SHA-256 %q (verified %v) after the first delivery, want %s computed by ferry", f.SHA256, f.SHA256Verified, want)
	}

	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(e.blobs, h.uploads["cam/big.mov"]), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SendToCloud(e.ctx, h.pkg.ID, second.ID); err != nil {
		t.Fatal(err)
	}
	st = e.settled(h, second.ID)
	if st.Delivery.State != db.DeliveryFailed || len(st.Files) != 1 || !strings.Contains(st.Files[0].Error, want) {
		t.Fatalf("delivery of damaged bytes: %s %+v; want failed against the recorded SHA-256 %s", st.Delivery.State, st.Files, want)
	}
}
