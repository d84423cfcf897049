package send

import (
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/ferryhq/ferry/internal/send/tus"
)

// A digest resumes an upload's SHA-256 at any offset (tus.Digest). While an
// upload is sent, its hash state is checkpointed (crypto/sha256 marshals it)
// every tus.CheckpointEvery bytes; the last keepCheckpoints of them go into
// the resume state with the file or part (and leave it when it is done). A
// retried or resumed PATCH starts from the server's offset: the hash
// continues from the last checkpoint at or before it, re-reading only the
// bytes between the two. Several are kept because the server holds fewer
// bytes than were sent (those in socket buffers when the connection or a
// process died: megabytes on a fast link), so the latest may lie past it.
type digest struct {
	s   *sender
	j   *job
	mu  sync.Mutex
	cps []Checkpoint // ascending by Off; in memory all of this run's
}

// keepCheckpoints is how many checkpoints the resume state keeps per upload:
// with tus.CheckpointEvery at 16 MiB they reach 112 MiB behind the last byte
// sent, far more than a connection holds in flight (loopback: ~10 MiB of
// socket buffers).
const keepCheckpoints = 8

// Checkpoint is a SHA-256 state after Off bytes of an upload.
type Checkpoint struct {
	Off   int64  `json:"off"`
	State []byte `json:"state"`
}

func (s *sender) digest(j *job) *digest {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	saved := j.fs.Hash
	if j.part >= 0 {
		saved = j.fs.Parts[j.part].Hash
	}
	return &digest{s: s, j: j, cps: append([]Checkpoint(nil), saved...)}
}

// At implements tus.Digest.
func (d *digest) At(ctx context.Context, off int64) (hash.Hash, error) {
	h := sha256.New()
	from := int64(0)
	d.mu.Lock()
	for i := len(d.cps) - 1; i >= 0; i-- {
		cp := d.cps[i]
		if cp.Off <= off && h.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp.State) == nil {
			from = cp.Off
			break
		}
		h.Reset() // a foreign or torn state: an older checkpoint, or the start
	}
	d.mu.Unlock()
	if from < off {
		if err := rehashFn(ctx, h, d.j.file.Abs, d.j.off+from, off-from); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Checkpoint implements tus.Digest.
func (d *digest) Checkpoint(off int64, h hash.Hash) {
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return
	}
	d.mu.Lock()
	i := len(d.cps)
	for i > 0 && d.cps[i-1].Off >= off {
		i--
	}
	d.cps = append(d.cps[:i], Checkpoint{Off: off, State: st})
	keep := append([]Checkpoint(nil), d.cps[max(0, len(d.cps)-keepCheckpoints):]...)
	d.mu.Unlock()
	// Throttled like every state change: a crash loses at most the last
	// second's checkpoints, and the re-read is bounded by what they cover.
	_ = d.s.st.update(func() { d.saved(keep) })
}

// saved sets the persisted checkpoints (state lock held).
func (d *digest) saved(cps []Checkpoint) {
	if d.j.part >= 0 {
		d.j.fs.Parts[d.j.part].Hash = cps
	} else {
		d.j.fs.Hash = cps
	}
}

// reset forgets every checkpoint: the upload is sent again from its start.
func (d *digest) reset() {
	d.mu.Lock()
	d.cps = nil
	d.mu.Unlock()
	_ = d.s.st.update(func() { d.saved(nil) })
}

// rehashFn is rehash, replaceable by tests that count re-read bytes.
var rehashFn = rehash

// hashBufs recycles read buffers.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// rehash feeds bytes [off, off+n) of the file at path into h: the part of an
// upload already on the server that its hash must cover again.
func rehash(ctx context.Context, h hash.Hash, path string, off, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	got, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, off, n)}, *buf)
	if err != nil {
		return fmt.Errorf("hash %s [%d,+%d): %w", path, off, n, err)
	}
	if got != n {
		return fmt.Errorf("hash %s: file shrank while reading (%d of %d bytes at %d)", path, got, n, off)
	}
	return nil
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ tus.Digest = (*digest)(nil)
