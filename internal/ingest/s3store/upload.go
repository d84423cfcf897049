package s3store

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// upload is one upload resource, as its record said when the request began.
type upload struct {
	s   *Store
	rec *record
}

func (u *upload) id() string { return u.rec.Info.ID }

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) { return u.rec.Info, nil }

// partSize is the store's part size, raised for uploads so long that S3's 10000 parts would not
// hold them (up to maxPartSize).
func (u *upload) partSize() int64 {
	ps := u.s.partSize
	if !u.rec.Info.SizeIsDeferred {
		need := (u.rec.Info.Size + maxParts - 1) / maxParts
		need = (need + 1<<20 - 1) &^ (1<<20 - 1)
		ps = min(max(ps, need), maxPartSize)
	}
	return ps
}

// WriteChunk appends src at offset. Bytes are hashed as they arrive into a part buffer; a full
// buffer goes out as a part while the next one fills (two buffers per PATCH at most, so the
// network and S3 overlap), and what is left when the body ends goes out as a part when it may
// (at least MinPartSize, or the upload's last bytes) and otherwise as ID.tail. The record is
// written after each, in order, with the hash state over exactly the bytes it names. The bytes
// that arrived before a body fails are kept the same way, so the sender resumes after them.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	r := u.rec
	id := u.id()
	if offset != r.Info.Offset {
		return 0, handler.ErrMismatchOffset
	}
	if r.Info.IsFinal || r.Complete {
		return 0, fmt.Errorf("s3store: upload %s takes no more bytes", id)
	}
	h, err := r.hash()
	if err != nil {
		return 0, err
	}
	ps := u.partSize()
	bufs := [2]*[]byte{getPart(ps), nil}
	defer func() {
		for _, b := range bufs {
			if b != nil {
				putPart(ps, b)
			}
		}
	}()
	buf := (*bufs[0])[:0]
	if r.TailSize > 0 {
		// The incomplete part's bytes are hashed already; they become the head of the next part.
		out, err := u.s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &u.s.bucket, Key: aws.String(u.s.key(id, ".tail")),
			Range: aws.String(fmt.Sprintf("bytes=0-%d", r.TailSize-1))})
		if err != nil {
			return 0, fmt.Errorf("s3store: reading the incomplete part of upload %s: %w", id, err)
		}
		buf = buf[:r.TailSize]
		_, err = io.ReadFull(out.Body, buf)
		out.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("s3store: reading the incomplete part of upload %s: %w", id, err)
		}
	}
	// A sender that goes away cancels ctx; what arrived is still committed (bounded).
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	// inflight is the part being sent (and recorded) while the other buffer fills; parts are
	// recorded in order because the next one starts only once it is done.
	var inflight chan error
	wait := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight
		inflight = nil
		return err
	}
	var received int64
	var rerr error
	dirty := false // buf holds bytes not committed yet
	cur := 0       // bufs[cur] backs buf
	for {
		space := buf[len(buf):cap(buf)]
		if !r.Info.SizeIsDeferred {
			// Never read past the declared length: tusd limits the body, this keeps parts exact.
			left := r.Info.Size - (offset + received) // bytes the upload may still take
			if int64(len(space)) > left {
				space = space[:left]
			}
		}
		n, err := fill(src, space)
		if n > 0 {
			h.Write(space[:n])
			buf = buf[:len(buf)+n]
			received += int64(n)
			dirty = true
		}
		if err != nil && err != io.EOF {
			rerr = err
			break
		}
		if len(buf) == cap(buf) {
			werr := wait() // before anything returns: the part in flight holds the other buffer
			st, serr := hashState(id, h)
			if err := errors.Join(werr, serr); err != nil {
				return r.Info.Offset - offset, err
			}
			inflight = make(chan error, 1)
			go func(part []byte) { inflight <- u.commitPart(commitCtx, part, st) }(buf)
			cur = 1 - cur
			if bufs[cur] == nil {
				bufs[cur] = getPart(ps)
			}
			buf, dirty = (*bufs[cur])[:0], false
		}
		if err == io.EOF || len(space) == 0 {
			break
		}
	}
	if err := wait(); err != nil {
		return r.Info.Offset - offset, err
	}
	if dirty {
		if cerr := u.commitRest(commitCtx, buf, h); cerr != nil {
			return r.Info.Offset - offset, cerr
		}
	}
	return r.Info.Offset - offset, rerr
}

// fill reads until buf is full or src fails.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// committed sets the record to cover the bytes now stored and saves it with st, the hash state
// over exactly those bytes.
func (u *upload) committed(ctx context.Context, tail int64, st []byte) error {
	r := u.rec
	total := r.partsSize()
	if r.Complete && r.MultipartID == "" {
		total = r.Info.Size // one PUT holds every byte
	}
	r.TailSize = tail
	r.Info.Offset = total + tail
	r.HashState = st
	return u.s.writeRecord(ctx, r)
}

// hashState marshals h (crypto/sha256's documented-stable state).
func hashState(id string, h hash.Hash) ([]byte, error) {
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("s3store: saving the hash state of upload %s: %w", id, err)
	}
	return st, nil
}

// commitPart sends buf (the whole buffer: tail and new bytes) as the next part.
func (u *upload) commitPart(ctx context.Context, buf []byte, st []byte) error {
	r := u.rec
	id := u.id()
	key := u.s.key(id, ".bin")
	if r.MultipartID == "" {
		out, err := u.s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &u.s.bucket, Key: &key})
		if err != nil {
			return fmt.Errorf("s3store: starting the multipart upload of upload %s: %w", id, err)
		}
		r.MultipartID = aws.ToString(out.UploadId)
		// Recorded before any part, so Remove can always abort it.
		if err := u.s.writeRecord(ctx, r); err != nil {
			return err
		}
	}
	n := int32(len(r.Parts) + 1)
	if n > maxParts {
		return fmt.Errorf("s3store: upload %s needs more than %d parts", id, maxParts)
	}
	out, err := u.s.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &u.s.bucket, Key: &key, UploadId: &r.MultipartID,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf)))})
	if err != nil {
		return fmt.Errorf("s3store: sending part %d of upload %s: %w", n, id, err)
	}
	r.Parts = append(r.Parts, part{N: n, ETag: aws.ToString(out.ETag), Size: int64(len(buf))})
	if err := u.committed(ctx, 0, st); err != nil {
		r.Parts = r.Parts[:len(r.Parts)-1]
		return err
	}
	return nil
}

// commitRest stores what is left when a body ends: a part if S3 accepts it as one, else the
// incomplete part object. An upload that fits one buffer whole is one PUT, no multipart.
func (u *upload) commitRest(ctx context.Context, buf []byte, h hash.Hash) error {
	r := u.rec
	st, err := hashState(u.id(), h)
	if err != nil {
		return err
	}
	before := r.partsSize()
	last := !r.Info.SizeIsDeferred && before+int64(len(buf)) == r.Info.Size
	switch {
	case last && r.MultipartID == "":
		if err := u.s.put(ctx, u.s.key(u.id(), ".bin"), buf); err != nil {
			return err
		}
		r.Complete = true
		if err := u.committed(ctx, 0, st); err != nil {
			r.Complete = false
			return err
		}
	case last || len(buf) >= MinPartSize:
		if err := u.commitPart(ctx, buf, st); err != nil {
			return err
		}
	default:
		if err := u.s.put(ctx, u.s.key(u.id(), ".tail"), buf); err != nil {
			return err
		}
		return u.committed(ctx, int64(len(buf)), st)
	}
	if r.TailSize == 0 {
		_ = u.s.del(ctx, u.s.key(u.id(), ".tail")) // consumed; a leftover is only garbage
	}
	return nil
}

// FinishUpload completes the multipart upload before the completion hook may report the bytes.
func (u *upload) FinishUpload(ctx context.Context) error {
	if u.rec.Info.IsFinal {
		return nil
	}
	return u.s.ensureComplete(ctx, u.rec)
}

// ensureComplete makes ID.bin the whole object of a finished upload. It is idempotent, and a
// replica finding another completed it first takes the object as it is.
func (s *Store) ensureComplete(ctx context.Context, r *record) error {
	if r.Complete || r.Info.IsFinal {
		return nil
	}
	if !store.Finished(r.Info) {
		return store.ErrNotFinished
	}
	// Some servers copy every part on completion (Versity does): minutes for a large upload,
	// which a sender hanging up or a short caller deadline must not cut off halfway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	id := r.Info.ID
	key := s.key(id, ".bin")
	switch {
	case r.MultipartID == "":
		// Empty, or every byte still in the incomplete part (never: commitRest sends the last
		// bytes), so only an empty upload lands here.
		if r.Info.Size != 0 {
			return fmt.Errorf("s3store: upload %s is finished but has no parts", id)
		}
		if err := s.put(ctx, key, nil); err != nil {
			return err
		}
	default:
		parts := make([]types.CompletedPart, len(r.Parts))
		for i, p := range r.Parts {
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)}
		}
		_, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key,
			UploadId: &r.MultipartID, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		if err != nil {
			if !isNoSuchUpload(err) {
				return fmt.Errorf("s3store: completing upload %s: %w", id, err)
			}
			// Completed by another request (or replica) whose record we did not see yet.
			out, herr := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
			if herr != nil || aws.ToInt64(out.ContentLength) != r.Info.Size {
				return fmt.Errorf("s3store: completing upload %s: %w", id, err)
			}
		}
	}
	r.Complete = true
	return s.writeRecord(ctx, r)
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	b, err := u.s.openRecord(ctx, u.rec)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(b, 0, b.Size()), b}, nil
}

// Terminate implements handler.TerminatableUpload.
func (u *upload) Terminate(ctx context.Context) error { return u.s.Remove(u.id()) }

// DeclareLength implements handler.LengthDeclarableUpload.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	r, err := u.s.readRecord(ctx, u.id())
	if err != nil {
		return err
	}
	if length < r.Info.Offset {
		return handler.ErrInvalidUploadLength
	}
	r.Info.Size = length
	r.Info.SizeIsDeferred = false
	if err := u.s.writeRecord(ctx, r); err != nil {
		return err
	}
	u.rec = r
	return nil
}

// ConcatUploads links the partials to this final upload in order. Nothing is copied: Open
// reads across the partials' objects.
func (u *upload) ConcatUploads(ctx context.Context, partials []handler.Upload) error {
	s := u.s
	ids := make([]string, len(partials))
	recs := make([]*record, len(partials))
	parts := make([]store.Partial, len(partials))
	for i, p := range partials {
		pu, ok := p.(*upload)
		if !ok {
			return fmt.Errorf("s3store: concatenating upload %s: partial of a foreign store", u.id())
		}
		r, err := s.readRecord(ctx, pu.id())
		if err != nil {
			return err
		}
		ids[i], recs[i], parts[i] = r.Info.ID, r, store.Partial{Info: r.Info, FinalID: r.FinalID}
	}
	exists := func(id string) bool { _, err := s.readRecord(ctx, id); return err == nil }
	if err := store.CheckConcat(u.rec.Info, parts, exists); err != nil {
		return err
	}
	for _, r := range recs {
		if !store.Finished(r.Info) {
			return store.ErrNotFinished
		}
		if err := s.ensureComplete(ctx, r); err != nil {
			return err
		}
	}
	// Partials first: a crash before the final is marked leaves an unfinished final whose
	// removal takes these partials with it.
	for _, r := range recs {
		r.FinalID = u.id()
		if err := s.writeRecord(ctx, r); err != nil {
			return err
		}
	}
	u.rec.Info.PartialUploads = ids
	u.rec.Concatenated = true
	u.rec.Info.Offset = u.rec.Info.Size
	if err := s.writeRecord(ctx, u.rec); err != nil {
		u.rec.Info.Offset = 0
		return err
	}
	return nil
}

func (r *record) partsSize() int64 {
	var n int64
	for _, p := range r.Parts {
		n += p.Size
	}
	return n
}
