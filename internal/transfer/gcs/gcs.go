package gcs

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/transfer"
)

const (
	provider = "gcs"
	// ChunkAlign is the multiple every chunk but the last must be.
	ChunkAlign = 256 << 10
)

// Uploader sends files through GCS resumable sessions. Chunks of one file go
// one after the other (the protocol has a single write offset), so
// Options.Parallelism does not apply; run several files at once instead.
type Uploader struct{ o transfer.Options }

// New returns a GCS uploader.
func New(o transfer.Options) *Uploader { return &Uploader{o: o.WithDefaults()} }

// ChunkSize is the chunk size used for a file of size bytes.
func (u *Uploader) ChunkSize(size int64) int64 {
	return transfer.PartSizeFor(size, u.o.PartSize, ChunkAlign, 10000)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Upload sends src to target.
func (u *Uploader) Upload(ctx context.Context, src transfer.Source, target transfer.Target, p transfer.Params) (transfer.Result, error) {
	t, ok := target.(transfer.GCSTarget)
	if !ok {
		return transfer.Result{}, fmt.Errorf("gcs: target %T (method %s) is not a GCS target", target, target.Method())
	}
	size := src.Size()
	chunk := u.ChunkSize(size)
	state := transfer.State{Method: "GCS", Size: size, PartSize: chunk}
	if r := p.Resume; r != nil && r.Method == "GCS" && r.Size == size && r.UploadID != "" {
		state.UploadID, state.Offset = r.UploadID, r.Offset
	}
	res, err := u.upload(ctx, src, t, p, state)
	var te *transfer.Error
	if err != nil && state.UploadID != "" && errors.As(err, &te) && (te.Status == http.StatusNotFound || te.Status == http.StatusGone) && ctx.Err() == nil {
		// The saved session expired (GCS keeps them a week): start a new one.
		u.o.Logger.Warn("gcs: saved session is gone, starting afresh", "err", err)
		state.UploadID, state.Offset = "", 0
		return u.upload(ctx, src, t, p, state)
	}
	return res, err
}

func (u *Uploader) upload(ctx context.Context, src transfer.Source, t transfer.GCSTarget, p transfer.Params, state transfer.State) (transfer.Result, error) {
	size := src.Size()
	tr := transfer.NewTracker(p, transfer.State{Method: state.Method, Size: size, PartSize: state.PartSize, UploadID: state.UploadID})
	if state.UploadID == "" {
		session, err := u.start(ctx, t)
		if err != nil {
			return transfer.Result{}, err
		}
		state.UploadID = session
		if err := tr.Update(func(s *transfer.State) { s.UploadID = session }); err != nil {
			return transfer.Result{}, fmt.Errorf("gcs: checkpoint after session start: %w", err)
		}
	}
	session := state.UploadID
	// The hashes cover the whole file in order: one sequential pass that
	// runs alongside the (equally sequential) chunks.
	crc := crc32.New(castagnoli)
	scan := transfer.NewScanner(src, transfer.PlanParts(size, state.PartSize), nil, sha256.New(), md5.New(), crc)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	scan.Allow(1 << 30)
	go scan.Run(sctx)

	var offset int64
	var final *object
	if state.Offset > 0 || p.Resume != nil {
		off, obj, err := u.status(ctx, session, size)
		if err != nil {
			return transfer.Result{}, err
		}
		offset, final = off, obj
		tr.Sent(0, offset)
	}
	resumedAt := offset
	chunks := 0
	for final == nil {
		n := min(state.PartSize, size-offset)
		var err error
		var hashes string
		if offset+n == size {
			// The last chunk carries the whole file's hashes: GCS rejects
			// the object if they do not match what it stored.
			sums, err := scan.Wait(ctx)
			if err != nil {
				return transfer.Result{}, fmt.Errorf("gcs: read source: %w", err)
			}
			var crcb [4]byte
			binary.BigEndian.PutUint32(crcb[:], crc.Sum32())
			hashes = "crc32c=" + base64.StdEncoding.EncodeToString(crcb[:]) + ",md5=" + base64.StdEncoding.EncodeToString(sums[1])
		}
		final, offset, err = u.putChunk(ctx, src, session, int(offset/state.PartSize)+1, offset, n, size, hashes, tr)
		if err != nil {
			u.cancelIfCanceled(ctx, session)
			return transfer.Result{}, err
		}
		chunks++
		if final == nil {
			off := offset
			if err := tr.Update(func(s *transfer.State) { s.Offset = off }); err != nil {
				return transfer.Result{}, fmt.Errorf("gcs: checkpoint at %d: %w", off, err)
			}
		}
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("gcs: read source: %w", err)
	}
	res := transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: final.etag(), Parts: chunks}
	if resumedAt > 0 {
		res.Resumed = 1
	}
	var crcb [4]byte
	binary.BigEndian.PutUint32(crcb[:], crc.Sum32())
	wantMD5, wantCRC := base64.StdEncoding.EncodeToString(sums[1]), base64.StdEncoding.EncodeToString(crcb[:])
	if final.MD5Hash == "" && final.CRC32C == "" {
		// Real GCS always reports md5Hash/crc32c (JSON) or x-goog-hash (XML):
		// without them a damaged chunk would pass unnoticed.
		return res, &transfer.Error{Provider: provider, Step: "finish upload", Err: transfer.ErrUnverified}
	}
	if final.MD5Hash != "" {
		if final.MD5Hash != wantMD5 {
			return res, &transfer.Error{Provider: provider, Step: "finish upload", Err: fmt.Errorf("%w: object md5Hash %s, file's %s", transfer.ErrChecksum, final.MD5Hash, wantMD5)}
		}
		res.Checked = append(res.Checked, "gcs-md5")
	}
	if final.CRC32C != "" {
		if final.CRC32C != wantCRC {
			return res, &transfer.Error{Provider: provider, Step: "finish upload", Err: fmt.Errorf("%w: object crc32c %s, file's %s", transfer.ErrChecksum, final.CRC32C, wantCRC)}
		}
		res.Checked = append(res.Checked, "gcs-crc32c")
	}
	return res, nil
}

// object is the part of the GCS object resource (JSON API) or x-goog-hash
// header (XML API) the uploader checks.
type object struct {
	MD5Hash    string `json:"md5Hash"`
	CRC32C     string `json:"crc32c"`
	Generation any    `json:"generation"`
	ETag       string `json:"etag"`
}

func (o *object) etag() string {
	if o.ETag != "" {
		return o.ETag
	}
	if o.Generation != nil {
		return fmt.Sprint(o.Generation)
	}
	return ""
}

func readObject(resp *http.Response) *object {
	defer resp.Body.Close()
	o := &object{}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, o)
	for _, h := range resp.Header.Values("X-Goog-Hash") {
		for _, kv := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "md5":
				o.MD5Hash = v
			case "crc32c":
				o.CRC32C = v
			}
		}
	}
	return o
}

func (u *Uploader) start(ctx context.Context, t transfer.GCSTarget) (string, error) {
	var session string
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		url, err := t.GCSUploadURL(ctx)
		if err != nil {
			return fmt.Errorf("gcs: get upload URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, http.NoBody)
		if err != nil {
			return fmt.Errorf("gcs: start session: bad upload URL %s: %w", transfer.Redact(url), err)
		}
		req.Header.Set("x-goog-resumable", "start")
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "start session", 0)
		if err != nil {
			return err
		}
		drain(resp)
		session = resp.Header.Get("Location")
		if session == "" {
			return &transfer.Error{Provider: provider, Step: "start session", Status: resp.StatusCode, Err: errors.New("answer has no Location (session URI)")}
		}
		return nil
	})
	return session, err
}

// status asks the session how many bytes it holds: offset to go on from, or
// the object when the upload had already finished.
func (u *Uploader) status(ctx context.Context, session string, size int64) (int64, *object, error) {
	var off int64
	var obj *object
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, http.NoBody)
		if err != nil {
			return fmt.Errorf("gcs: query session: bad session URI %s: %w", transfer.Redact(session), err)
		}
		req.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "query session", 0, http.StatusPermanentRedirect)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusPermanentRedirect {
			drain(resp)
			off, err = persisted(resp)
			return err
		}
		obj = readObject(resp)
		off = size
		return nil
	})
	return off, obj, err
}

// persisted reads a 308's Range header ("bytes=0-N"): N+1 bytes are stored.
func persisted(resp *http.Response) (int64, error) {
	r := resp.Header.Get("Range")
	if r == "" {
		return 0, nil
	}
	_, end, ok := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
	n, err := strconv.ParseInt(end, 10, 64)
	if !ok || err != nil {
		return 0, &transfer.Error{Provider: provider, Step: "read session offset", Status: resp.StatusCode, Err: fmt.Errorf("bad Range header %q", r)}
	}
	return n + 1, nil
}

// putChunk sends [off, off+n) and returns the new persisted offset, or the
// object when this was the last chunk. After a failure it asks the session
// where it stands and sends from there.
func (u *Uploader) putChunk(ctx context.Context, src transfer.Source, session string, chunkNo int, off, n, size int64, hashes string, tr *transfer.Tracker) (*object, int64, error) {
	var obj *object
	newOff := off
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(chunkNo)
			st, o, err := u.status(ctx, session, size)
			if err != nil {
				return err
			}
			if o != nil {
				obj, newOff = o, size
				return nil
			}
			if st > off {
				// Part of the chunk arrived: send only the rest (still a
				// multiple of 256 KiB from the start, as GCS persists whole units).
				tr.Sent(chunkNo, st-off)
				n, off = n-(st-off), st
			}
		}
		last := off+n == size
		var body io.Reader = http.NoBody
		if n > 0 {
			body = tr.Body(src, transfer.Part{Number: chunkNo, Off: off, Size: n}, nil)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, body)
		if err != nil {
			if c, ok := body.(io.Closer); ok {
				c.Close()
			}
			return fmt.Errorf("gcs: upload chunk: bad session URI %s: %w", transfer.Redact(session), err)
		}
		req.ContentLength = n
		if last && hashes != "" {
			req.Header.Set("X-Goog-Hash", hashes)
		}
		switch {
		case n == 0:
			req.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		case last:
			req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		default:
			req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", off, off+n-1))
		}
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "upload chunk", chunkNo, http.StatusPermanentRedirect)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusPermanentRedirect {
			drain(resp)
			p, err := persisted(resp)
			if err != nil {
				return err
			}
			if last {
				return &transfer.Error{Provider: provider, Step: "upload chunk", Part: chunkNo, Status: resp.StatusCode, Err: fmt.Errorf("last chunk answered incomplete at %d of %d bytes", p, size)}
			}
			newOff = p
			return nil
		}
		obj, newOff = readObject(resp), size
		return nil
	})
	return obj, newOff, err
}

func (u *Uploader) cancelIfCanceled(ctx context.Context, session string) {
	if !transfer.Canceled(ctx) {
		return
	}
	// Deleting the session URI cancels the upload (GCS answers 499).
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodDelete, session, http.NoBody)
	if err != nil {
		return
	}
	if resp, err := transfer.Do(u.o.HTTPClient, req, provider, "cancel session", 0, 499, http.StatusNotFound); err != nil {
		u.o.Logger.Warn("gcs: cancel session failed", "err", err)
	} else {
		drain(resp)
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
