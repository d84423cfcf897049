package delivery_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
)

// TestDeliveryFailsDamagedFileAndRetryDeliversIt: a file whose stored bytes
// no longer match the SHA-256 recorded at ingest fails (FAILED in iconik,
// with the reason; the delivery partially failed), the others are
// delivered; once the bytes are repaired, retrying delivers it into the same
// asset, with nothing created twice.
func TestDeliveryFailsDamagedFileAndRetryDeliversIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	conn := e.connect("c", "s3")
	e.createPortal("Retry", conn.ID)
	h := e.newPackage("retry", "Damaged", "d@example.com")
	good := []byte("intact bytes\n")
	e.put(h, "a/good.txt", good)
	orig := bytes.Repeat([]byte("x"), 4096)
	damaged := bytes.Clone(orig)
	damaged[100] = 'y'
	e.putStored(h, "a/bad.txt", orig, damaged)
	e.finalize(h)

	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryPartiallyFailed {
		t.Fatalf("delivery %s, want partially_failed", st.Delivery.State)
	}
	var bad *db.DeliveryFile
	for _, f := range st.Files {
		if f.Path == "a/bad.txt" {
			bad = f
		} else if f.State != db.DeliveryFileDelivered {
			t.Fatalf("%s: %s %s", f.Path, f.State, f.Error)
		}
	}
	if bad.State != db.DeliveryFileFailed || !strings.Contains(bad.Error, "SHA-256") {
		t.Fatalf("damaged file: %s %q, want failed for its SHA-256", bad.State, bad.Error)
	}
	// Given up: the job FAILED with the reason, the unfinished upload
	// cleaned up (the file record marked FAILED, then removed with it).
	job, err := e.cl.JobGet(e.ctx, bad.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != "FAILED" || !strings.Contains(job.ErrorMessage, "SHA-256") {
		t.Fatalf("in iconik: job %s %q; want FAILED with the reason", job.Status, job.ErrorMessage)
	}
	icf, err := e.cl.FileGet(e.ctx, bad.AssetID, bad.IconikFileID, iconik.FileGetParams{})
	var ie *iconik.Error
	if err == nil && icf.Status != "FAILED" || err != nil && !(errors.As(err, &ie) && ie.Status == 404) {
		t.Fatalf("in iconik: the failed file is %v (%v); want FAILED or cleaned up", icf, err)
	}

	if err := os.WriteFile(filepath.Join(e.blobs, h.uploads["a/bad.txt"]), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Retry(e.ctx, st.Delivery.ID)
	if err != nil || n != 1 {
		t.Fatalf("retry: %d files, %v; want 1", n, err)
	}
	st = e.settledN(h, conn.ID, 2)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("after retry: %s", st.Delivery.State)
	}
	for _, f := range st.Files {
		if f.Path == "a/bad.txt" && (f.AssetID != bad.AssetID || f.JobID != bad.JobID) {
			t.Fatalf("retry made a new asset or job: %+v, before %+v", f, bad)
		}
	}
	e.noDuplicates(h, st)
	if got := e.object(conn.StorageID, "ferry/Portal Downloads/Retry/Damaged/a/bad.txt"); !bytes.Equal(got, orig) {
		t.Fatalf("storage holds %q...", got[:10])
	}
}
