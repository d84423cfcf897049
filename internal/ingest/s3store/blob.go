package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Blob reads a finished upload with ranged GETs: a single upload's object, or a final upload's
// partials' objects in order. Delivery and download links read it by ranges; no byte goes
// through a local copy. It is safe for concurrent ReadAt calls.
type Blob struct {
	s      *Store
	keys   []string
	starts []int64 // starts[i] is the offset of keys[i] within the blob
	size   int64
}

// Size is the number of bytes in the blob.
func (b *Blob) Size() int64 { return b.size }

// Close releases nothing: every ReadAt is a request of its own.
func (b *Blob) Close() error { return nil }

// ReadAt implements io.ReaderAt across the objects: one ranged GET per object the range touches.
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
		end := b.size
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		want := p[n:]
		if rem := end - off; int64(len(want)) > rem {
			want = want[:rem]
		}
		if len(want) > 0 {
			from := off - b.starts[i]
			out, err := b.s.c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &b.s.bucket, Key: &b.keys[i],
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", from, from+int64(len(want))-1))})
			if err != nil {
				return n, fmt.Errorf("s3store: reading part %d of an upload: %w", i, err)
			}
			m, err := io.ReadFull(out.Body, want)
			out.Body.Close()
			n += m
			off += int64(m)
			if err != nil {
				return n, fmt.Errorf("s3store: reading part %d of an upload: %w", i, io.ErrUnexpectedEOF)
			}
		}
		if off >= end {
			i++
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
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
