package tus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"sync"
)

// Integrity in one pass: an upload's SHA-256 is computed from the very bytes
// its PATCH body reads (a read into a buffer, the hash, a write to the
// socket; no second read of the file) and declared when its last byte is
// out, in the Upload-Checksum trailer of that PATCH ("sha256 <base64>", over
// the whole upload). The creation announces it (metadata sha256_trailer), so
// a server never completes the upload unverified. When the server says the
// trailer did not arrive (a proxy dropped it: 400 checksum_missing), or when
// the answer to the last PATCH was lost, the digest is declared again in the
// header of an empty PATCH at the final offset, which the server answers
// idempotently. This trades sendfile (which never brings the bytes into the
// process) for the one read the hash needs anyway.

// HeaderChecksum is where the digest goes (trailer or header).
const HeaderChecksum = "Upload-Checksum"

// CodeChecksumMissing is the server's answer to a last PATCH whose announced
// trailer did not arrive.
const CodeChecksumMissing = "checksum_missing"

// StatusChecksumMismatch is the server's answer to bytes that do not hash to
// the declared digest; it has dropped them, so the upload must be sent again.
const StatusChecksumMismatch = 460

// Digest follows the SHA-256 of one upload's bytes while they are sent.
type Digest interface {
	// At returns a SHA-256 that has hashed exactly the upload's bytes
	// [0, off): a resumed or retried PATCH continues from the server's
	// offset. An implementation keeps checkpoints and re-reads only the
	// bytes from the last one at or before off.
	At(ctx context.Context, off int64) (hash.Hash, error)
	// Checkpoint offers the digest of [0, off) at least every
	// CheckpointEvery bytes while sending (h must not be kept: marshal it).
	Checkpoint(off int64, h hash.Hash)
}

// CheckpointEvery is how often (in bytes) a hashing PATCH offers its digest
// to Digest.Checkpoint; a variable so tests can make it small.
var CheckpointEvery int64 = 16 << 20

// bufSize is the read size of a hashing body: big enough that the per-read
// costs (syscall, chunk header, hash call) vanish, small enough to stay in L2.
const bufSize = 1 << 20

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// ErrMismatch wraps a 460 answer: the bytes the server got are not the bytes
// hashed; it dropped them.
var ErrMismatch = errors.New("checksum mismatch")

// hashBody is a PATCH body of n bytes of f from fileOff, hashed as it is
// read into h. It implements io.WriterTo, so net/http's chunked writer gets
// whole buffers (one chunk per read). At its end it sets the trailer.
type hashBody struct {
	f        *os.File
	fileOff  int64
	n        int64
	upOff    int64 // upload offset of the next byte
	h        hash.Hash
	d        Digest
	nextCP   int64
	trailer  http.Header // nil: this PATCH does not reach the upload's end
	sum      []byte      // the digest, once the last byte was read
	progress func(int64)

	mu      sync.Mutex
	sent    int64
	stopped bool
}

func (b *hashBody) Close() error { return nil }

// Read serves transports that do not use WriteTo.
func (b *hashBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, io.ErrClosedPipe
	}
	if b.n == 0 {
		b.finish()
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	if lim := b.nextCP - b.upOff; lim > 0 && int64(len(p)) > lim {
		p = p[:lim]
	}
	k, err := b.f.ReadAt(p, b.fileOff)
	if k > 0 {
		b.consume(p[:k])
	}
	if err == io.EOF && k > 0 {
		err = nil
	}
	if err == io.EOF {
		err = fmt.Errorf("%s: file shrank while sending: %w", b.f.Name(), io.ErrUnexpectedEOF)
	}
	return k, err
}

func (b *hashBody) consume(p []byte) {
	k := int64(len(p))
	b.h.Write(p)
	b.fileOff += k
	b.upOff += k
	b.n -= k
	b.sent += k
	b.progress(k)
	if b.upOff >= b.nextCP {
		b.d.Checkpoint(b.upOff, b.h)
		b.nextCP = b.upOff + CheckpointEvery
	}
}

// finish declares the digest once every byte is read.
func (b *hashBody) finish() {
	if b.trailer != nil && b.sum == nil {
		b.sum = b.h.Sum(nil)
		b.trailer.Set(HeaderChecksum, checksumValue(b.sum))
	}
}

// WriteTo sends the body in buffer-sized chunks: pread, hash, write.
func (b *hashBody) WriteTo(w io.Writer) (int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var total int64
	for {
		k, err := b.Read(buf)
		if k > 0 {
			wn, werr := w.Write(buf[:k])
			total += int64(wn)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// stop ends reading (the transport may read on after Do returned) and
// returns how many bytes were read.
func (b *hashBody) stop() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	return b.sent
}

func checksumValue(sum []byte) string { return "sha256 " + base64.StdEncoding.EncodeToString(sum) }

type bodySentKey struct{}

// OnBodySent returns a context under which UploadHashed calls f each time a
// PATCH's last byte and its digest trailer have been written to the
// connection (its answer still to come): what a sender needs to ask for
// something that can only follow those bytes without waiting a round trip
// for the answer.
func OnBodySent(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, bodySentKey{}, f)
}

// patchHashed sends bytes [off, size) of the upload in one chunked PATCH
// hashed on the way, with the digest in its trailer.
func (c *Client) patchHashed(ctx context.Context, u string, f *os.File, base, off, size int64, d Digest, progress func(int64)) (newOff, sent int64, sum []byte, err error) {
	h, err := d.At(ctx, off)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("patch %s: %w", u, err)
	}
	b := &hashBody{f: f, fileOff: base + off, n: size - off, upOff: off, h: h, d: d, progress: progress,
		nextCP: (off/CheckpointEvery + 1) * CheckpointEvery, trailer: http.Header{HeaderChecksum: nil}}
	if sent, ok := ctx.Value(bodySentKey{}).(func()); ok {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				sent()
			}
		}})
	}
	req, err := c.newRequest(ctx, http.MethodPatch, u, b)
	if err != nil {
		return 0, 0, nil, err
	}
	req.ContentLength = -1 // chunked: the only HTTP/1.1 framing with trailers
	req.Trailer = b.trailer
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
	resp, err := c.HTTP.Do(req)
	sent = b.stop()
	b.mu.Lock()
	sum = b.sum
	b.mu.Unlock()
	if err != nil {
		return 0, sent, sum, fmt.Errorf("patch %s at offset %d: %w", req.URL.Redacted(), off, err)
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, sent, sum, responseError("patch", u, resp)
	}
	resp.Body.Close()
	newOff, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, sent, sum, fmt.Errorf("patch %s: bad Upload-Offset %q", u, resp.Header.Get("Upload-Offset"))
	}
	return newOff, sent, sum, nil
}

// Declare tells the server the SHA-256 of an upload whose bytes are all
// there (size of them), in the header of an empty PATCH at its end. The
// server verifies it then (or answers 204 again if it already did).
func (c *Client) Declare(ctx context.Context, u string, size int64, sum []byte) error {
	resp, err := c.do(ctx, "declare checksum", func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodPatch, u, http.NoBody)
		if err != nil {
			return nil, err
		}
		req.ContentLength = 0
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.FormatInt(size, 10))
		req.Header.Set(HeaderChecksum, checksumValue(sum))
		return req, nil
	}, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return mismatch(err)
	}
	resp.Body.Close()
	return nil
}

// mismatch marks a 460 answer with ErrMismatch.
func mismatch(err error) error {
	var te *Error
	if errors.As(err, &te) && te.Status == StatusChecksumMismatch {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	return err
}

func isCode(err error, code string) bool {
	var te *Error
	return errors.As(err, &te) && te.Code == code
}
