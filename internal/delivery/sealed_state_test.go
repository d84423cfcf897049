package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
)

// interrupting wraps a real uploader: its first upload stops after the
// first checkpoint (as if the process died), after looking at what was
// recorded and, for legacy, rewriting it as the plain JSON an older ferry
// stored. It keeps the Resume every upload was given.
type interrupting struct {
	inner  transfer.Uploader
	store  func() db.Store
	legacy bool

	mu      sync.Mutex
	calls   int
	stored  []string // transfer_state as recorded at each checkpoint
	state   transfer.State
	resumes []*transfer.State
}

var errInterrupted = errors.New("test: interrupted after the first checkpoint")

func (u *interrupting) Upload(ctx context.Context, src transfer.Source, tgt transfer.Target, p transfer.Params) (transfer.Result, error) {
	u.mu.Lock()
	u.calls++
	first := u.calls == 1
	u.resumes = append(u.resumes, p.Resume)
	u.mu.Unlock()
	inner := p.Checkpoint
	p.Checkpoint = func(st transfer.State) error {
		if err := inner(st); err != nil {
			return err
		}
		sqldb := u.store().SQLDB()
		var raw string
		if err := sqldb.QueryRowContext(ctx, "SELECT transfer_state FROM delivery_files").Scan(&raw); err != nil {
			return err
		}
		u.mu.Lock()
		u.stored = append(u.stored, raw)
		u.state = st
		u.mu.Unlock()
		if !first {
			return nil
		}
		if u.legacy {
			b, _ := json.Marshal(st)
			if _, err := sqldb.ExecContext(ctx, "UPDATE delivery_files SET transfer_state = $1", string(b)); err != nil {
				return err
			}
		}
		return errInterrupted
	}
	return u.inner.Upload(ctx, src, tgt, p)
}

// deliverInterrupted delivers one 12 MiB file through up (wrapping the
// provider's real uploader, interrupted after its first checkpoint) to a
// storage of kind, checks it arrived intact and returns the uploader for the
// caller to inspect (locked: the caller unlocks).
func deliverInterrupted(t *testing.T, method, kind string, sealer *secret.Sealer, inner transfer.Uploader, legacy bool) *interrupting {
	t.Helper()
	var e *env
	up := &interrupting{inner: inner, store: func() db.Store { return e.store }, legacy: legacy}
	e = newEnv(t, envOptions{services: func(o *delivery.Options) {
		if sealer != nil {
			o.Sealer = sealer
		}
		o.Uploaders = map[string]transfer.Uploader{method: up}
	}})
	conn := e.connect("c", kind)
	e.createPortal("Interrupted", conn.ID)
	h := e.newPackage("interrupted", "Pkg", "s@example.com")
	data := bytes.Repeat([]byte("0123456789abcdef"), 12<<20/16)
	e.put(h, "big.bin", data)
	e.finalize(h)
	if st := e.settled(h, conn.ID); st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	if got := e.object(conn.StorageID, "ferry/Portal Downloads/Interrupted/Pkg/big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("storage holds %d bytes that differ from the %d sent", len(got), len(data))
	}
	up.mu.Lock()
	return up
}

// TestTransferStateIsSealedAndResumes: the GCS session URI recorded to
// resume an upload is an upload credential, so with a Sealer it is stored
// sealed; an interrupted upload resumes the same session from the sealed
// state, and from the plain JSON an older ferry recorded.
func TestTransferStateIsSealedAndResumes(t *testing.T) {
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		legacy bool
	}{{"sealed", false}, {"plain JSON from before sealing", true}} {
		t.Run(c.name, func(t *testing.T) {
			up := deliverInterrupted(t, "GCS", "gcs", sealer, gcs.New(transfer.Options{PartSize: 5 << 20}), c.legacy)
			defer up.mu.Unlock()
			if up.calls < 2 || len(up.stored) == 0 || up.state.UploadID == "" {
				t.Fatalf("%d uploads, %d checkpoints, session %q: the interruption did not happen", up.calls, len(up.stored), up.state.UploadID)
			}
			for i, raw := range up.stored {
				if !strings.HasPrefix(raw, "v1:") || strings.Contains(raw, up.state.UploadID) || strings.Contains(raw, "upload") {
					t.Fatalf("checkpoint %d recorded %.80q..., want it sealed", i, raw)
				}
			}
			if r := up.resumes[1]; r == nil || r.Method != "GCS" || r.UploadID != up.state.UploadID {
				t.Fatalf("the second upload resumed from %+v, want the first one's session", r)
			}
		})
	}
}

// TestB2LargeFileResumesAfterRestart: a B2 large file interrupted after its
// start was recorded continues the same large file (iconik's start call
// given its upload_file_id hands out a fresh part URL), instead of being
// cancelled and sent again from the first byte.
func TestB2LargeFileResumesAfterRestart(t *testing.T) {
	up := deliverInterrupted(t, "B2", "b2", nil, b2.New(transfer.Options{PartSize: 5 << 20}), false)
	defer up.mu.Unlock()
	if up.calls != 2 || up.state.Method != "B2" || up.state.UploadID == "" {
		t.Fatalf("%d uploads, state %+v: the interruption did not happen", up.calls, up.state)
	}
	if r := up.resumes[1]; r == nil || r.Method != "B2" || r.UploadID != up.state.UploadID {
		t.Fatalf("the second upload resumed from %+v, want the first one's large file %s", r, up.state.UploadID)
	}
}
