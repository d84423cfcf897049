package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Blob reads a finished upload with ranged GETs: a single upload's object, or a final upload's
// partials' objects in order. Delivery and download links read it in small sequential chunks,
// so a GET is not a chunk: it asks for the rest of its object and stays open, and the next
// ReadAt that continues where one stopped reads on from it (one GET per object per reader, any
// offset still served). It is safe for concurrent ReadAt calls.
type Blob struct {
	s      *Store
	keys   []string
	starts []int64 // starts[i] is the offset of keys[i] within the blob
	size   int64

	mu     sync.Mutex
	idle   []*stream // open GETs between two reads, oldest first
	closed bool
}

// stream is one open GET of object i, positioned at blob offset pos.
type stream struct {
	body    io.ReadCloser
	cancel  context.CancelFunc // ends the GET
	watch   *time.Timer        // ends the GET once no byte came for readIdle; stopped between reads
	stalled atomic.Bool        // watch ended it
	i       int
	pos     int64
}

// readIdle is how long a read waits for the next byte from S3 before it drops the GET and
// fails. io.ReaderAt carries no context, so without it a stalled connection (a proxy that
// stopped forwarding, a peer gone without a FIN) would hold a delivery or a download link
// forever. A variable so tests can shorten it (SetReadIdle).
var readIdle = time.Minute

// errStalled is a GET dropped because no byte came for readIdle.
var errStalled = errors.New("no byte arrived")

func (st *stream) close() {
	st.watch.Stop()
	st.body.Close()
	st.cancel()
}

// read fills p from the GET, or fails once readIdle passes with no byte.
func (st *stream) read(p []byte) (int, error) {
	st.watch.Reset(readIdle)
	defer st.watch.Stop()
	n := 0
	for n < len(p) {
		m, err := st.body.Read(p[n:])
		n += m
		if m > 0 {
			st.watch.Reset(readIdle)
		}
		switch {
		case err == nil || n == len(p):
			// Read on, or done: a GET that broke with p's last bytes fails its next read.
		case st.stalled.Load():
			return n, fmt.Errorf("%w for %v", errStalled, readIdle)
		case err == io.EOF:
			return n, io.ErrUnexpectedEOF
		default:
			return n, err
		}
	}
	return n, nil
}

// maxIdle bounds the GETs a blob keeps open between reads (delivery reads a file in a few
// parallel ranges; download links one or two).
const maxIdle = 8

// Size is the number of bytes in the blob.
func (b *Blob) Size() int64 { return b.size }

// Close closes the GETs left open.
func (b *Blob) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.idle {
		st.close()
	}
	b.idle, b.closed = nil, true
	return nil
}

// take returns the open GET positioned at off, if there is one.
func (b *Blob) take(off int64) *stream {
	b.mu.Lock()
	defer b.mu.Unlock()
	for j, st := range b.idle {
		if st.pos == off {
			b.idle = append(b.idle[:j], b.idle[j+1:]...)
			return st
		}
	}
	return nil
}

// give keeps st open for the read that continues it.
func (b *Blob) give(st *stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		st.close()
		return
	}
	b.idle = append(b.idle, st)
	if len(b.idle) > maxIdle {
		b.idle[0].close()
		b.idle = b.idle[1:]
	}
}

func (b *Blob) end(i int) int64 {
	if i+1 < len(b.starts) {
		return b.starts[i+1]
	}
	return b.size
}

// ReadAt implements io.ReaderAt across the objects. A GET kept open between two reads may have
// been dropped by the server or a proxy meanwhile: if it fails, the read is retried once on a
// new GET from where it stopped.
func (b *Blob) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("s3store: read at negative offset %d", off)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	i := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > off }) - 1
	n := 0
	for n < len(p) && i < len(b.keys) {
		end := b.end(i)
		want := p[n:]
		if rem := end - off; int64(len(want)) > rem {
			want = want[:rem]
		}
		st, kept := b.take(off), true
		if st != nil && st.i != i {
			st.close()
			st = nil
		}
		if st == nil {
			var err error
			if st, err = b.open(i, off); err != nil {
				return n, err
			}
			kept = false
		}
		m, err := st.read(want)
		st.pos += int64(m)
		n += m
		off += int64(m)
		if err != nil {
			st.close()
			if kept {
				continue // the next round opens a new GET at off
			}
			return n, fmt.Errorf("s3store: reading part %d of an upload: %w", i, err)
		}
		if st.pos < end {
			b.give(st)
		} else {
			st.close()
			i++
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// open starts a GET of object i from blob offset off to the object's end. Waiting for its
// answer is bounded by readIdle too.
func (b *Blob) open(i int, off int64) (*stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{cancel: cancel, i: i, pos: off}
	st.watch = time.AfterFunc(readIdle, func() { st.stalled.Store(true); cancel() })
	out, err := b.s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.s.bucket, Key: &b.keys[i],
		Range: aws.String(fmt.Sprintf("bytes=%d-", off-b.starts[i]))})
	st.watch.Stop()
	if err == nil {
		st.body = out.Body
		if !st.stalled.Load() {
			return st, nil
		}
		st.body.Close() // answered just as the watch ended it
	}
	cancel()
	if st.stalled.Load() {
		err = fmt.Errorf("%w for %v", errStalled, readIdle)
	}
	return nil, fmt.Errorf("s3store: reading part %d of an upload: %w", i, err)
}

// Open returns a reader over a finished upload (a *Blob).
func (s *Store) Open(id string) (store.Blob, error) {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.openRecord(ctx, r)
}

func (s *Store) openRecord(ctx context.Context, r *record) (*Blob, error) {
	if !store.Finished(r.Info) {
		return nil, store.ErrNotFinished
	}
	recs := []*record{r}
	if r.Info.IsFinal {
		if !r.Concatenated {
			return nil, store.ErrNotFinished
		}
		recs = recs[:0]
		for _, pid := range r.Info.PartialUploads {
			p, err := s.readRecord(ctx, pid)
			if err != nil {
				return nil, fmt.Errorf("s3store: opening part %s of upload %s: %w", pid, r.Info.ID, err)
			}
			recs = append(recs, p)
		}
	}
	b := &Blob{s: s}
	for _, p := range recs {
		if !store.Finished(p.Info) {
			return nil, errors.Join(store.ErrNotFinished, fmt.Errorf("s3store: part %s of upload %s is not finished", p.Info.ID, r.Info.ID))
		}
		// A crash between the last part and its completion leaves a multipart upload only.
		if err := s.ensureComplete(ctx, p); err != nil {
			return nil, err
		}
		if p.Info.Size == 0 {
			continue
		}
		b.keys = append(b.keys, s.key(p.Info.ID, ".bin"))
		b.starts = append(b.starts, b.size)
		b.size += p.Info.Size
	}
	if b.size != r.Info.Size {
		return nil, fmt.Errorf("s3store: upload %s: parts hold %d bytes, expected %d", r.Info.ID, b.size, r.Info.Size)
	}
	return b, nil
}
