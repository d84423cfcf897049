package b2

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// B2's limits.
const (
	MinPartSize = 5_000_000
	MaxPartSize = 5_000_000_000
	MaxParts    = 10000
)

const provider = "b2"

// Uploader sends files to B2.
type Uploader struct{ o transfer.Options }

// New returns a B2 uploader. Options.PartSize below 5 MB is raised to it.
func New(o transfer.Options) *Uploader {
	o = o.WithDefaults()
	o.PartSize = max(o.PartSize, MinPartSize)
	return &Uploader{o: o}
}

// PartSize is the part size used for a file of size bytes.
func (u *Uploader) PartSize(size int64) int64 {
	return transfer.PartSizeFor(size, u.o.PartSize, 1, MaxParts)
}

// Upload sends src to target.
func (u *Uploader) Upload(ctx context.Context, src transfer.Source, target transfer.Target, p transfer.Params) (transfer.Result, error) {
	t, ok := target.(transfer.B2Target)
	if !ok {
		return transfer.Result{}, fmt.Errorf("b2: target %T (method %s) is not a B2 target", target, target.Method())
	}
	size := src.Size()
	partSize := u.PartSize(size)
	if partSize > MaxPartSize {
		return transfer.Result{}, fmt.Errorf("b2: file of %d bytes exceeds 10,000 parts of 5 GB", size)
	}
	if size <= partSize {
		return u.small(ctx, src, t, p)
	}
	res, err := u.large(ctx, src, t, p, partSize, p.Resume)
	var te *transfer.Error
	if err != nil && p.Resume != nil && errors.As(err, &te) && te.Step == "upload part" && te.Status == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(te.Message), "no active upload") && ctx.Err() == nil {
		u.o.Logger.Warn("b2: saved large file is gone, starting afresh", "err", err)
		return u.large(ctx, src, t, p, partSize, nil)
	}
	return res, err
}

// EncodeFileName percent-encodes a B2 file name for X-Bz-File-Name: every
// byte but unreserved characters and "/".
func EncodeFileName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

type fileInfo struct {
	FileID      string `json:"fileId"`
	ContentSha1 string `json:"contentSha1"`
}

func readInfo(resp *http.Response, step string, part int) (fileInfo, error) {
	defer resp.Body.Close()
	var fi fileInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fi); err != nil {
		return fi, &transfer.Error{Provider: provider, Step: step, Part: part, Status: resp.StatusCode, Err: fmt.Errorf("unreadable answer: %w", err)}
	}
	return fi, nil
}

func (u *Uploader) small(ctx context.Context, src transfer.Source, t transfer.B2Target, p transfer.Params) (transfer.Result, error) {
	size := src.Size()
	parts := transfer.PlanParts(size, max(size, 1))
	scan := transfer.NewScanner(src, parts, transfer.Each(sha1.New), sha256.New())
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	scan.Allow(1)
	go scan.Run(sctx)
	// X-Bz-Content-Sha1 is a header: hash first, then send.
	sum := hex.EncodeToString(sha1.New().Sum(nil))
	if size > 0 {
		d, err := scan.PartDigest(ctx, 0)
		if err != nil {
			return transfer.Result{}, fmt.Errorf("b2: hash file: %w", err)
		}
		sum = hex.EncodeToString(d)
	}
	tr := transfer.NewTracker(p, transfer.State{Method: "B2", Size: size})
	var fi fileInfo
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(1)
		}
		up, err := t.B2Upload(ctx)
		if err != nil {
			return fmt.Errorf("b2: get upload URL: %w", err)
		}
		var body io.Reader = http.NoBody
		if size > 0 {
			body = tr.Body(src, transfer.Part{Number: 1, Size: size}, nil)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, up.URL, body)
		if err != nil {
			if c, ok := body.(io.Closer); ok {
				c.Close()
			}
			return fmt.Errorf("b2: upload file: bad upload URL %s: %w", transfer.Redact(up.URL), err)
		}
		req.ContentLength = size
		req.Header.Set("Authorization", up.AuthorizationToken)
		req.Header.Set("X-Bz-File-Name", EncodeFileName(up.FileName))
		req.Header.Set("Content-Type", "b2/x-auto")
		req.Header.Set("X-Bz-Content-Sha1", sum)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "upload file", 0)
		if err != nil {
			return err
		}
		fi, err = readInfo(resp, "upload file", 0)
		if err != nil {
			return err
		}
		if fi.ContentSha1 != "" && fi.ContentSha1 != "none" && fi.ContentSha1 != sum {
			return &transfer.Error{Provider: provider, Step: "upload file", Status: resp.StatusCode, Err: fmt.Errorf("%w: server SHA-1 %s, read %s", transfer.ErrChecksum, fi.ContentSha1, sum)}
		}
		return nil
	})
	if err != nil {
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("b2: read source: %w", err)
	}
	return transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: fi.FileID, Checked: []string{"b2-sha1"}}, nil
}

// urlPool hands each part in flight its own upload URL, as B2 wants one
// upload at a time per URL; a URL that failed is dropped, not reused.
type urlPool struct {
	t      transfer.B2Target
	fileID string
	mu     sync.Mutex
	free   []transfer.B2Large
}

func (p *urlPool) get(ctx context.Context) (transfer.B2Large, error) {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		l := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return l, nil
	}
	p.mu.Unlock()
	l, err := p.t.B2StartLarge(ctx, p.fileID)
	if err != nil {
		return l, fmt.Errorf("b2: get part upload URL for %s: %w", p.fileID, err)
	}
	return l, nil
}

func (p *urlPool) flush() {
	p.mu.Lock()
	p.free = nil
	p.mu.Unlock()
}

func (p *urlPool) put(l transfer.B2Large) {
	p.mu.Lock()
	p.free = append(p.free, l)
	p.mu.Unlock()
}

func (u *Uploader) large(ctx context.Context, src transfer.Source, t transfer.B2Target, p transfer.Params, partSize int64, resume *transfer.State) (transfer.Result, error) {
	size := src.Size()
	parts := transfer.PlanParts(size, partSize)
	state := transfer.State{Method: "B2", Size: size, PartSize: partSize}
	if r := resume; r != nil && r.Method == "B2" && r.Size == size && r.PartSize == partSize && r.UploadID != "" {
		state = *r
		state.Parts = slices.Clone(r.Parts)
	}
	tr := transfer.NewTracker(p, state)
	pool := &urlPool{t: t}
	if state.UploadID == "" {
		var l transfer.B2Large
		err := u.o.Retry(ctx, func(int, bool) error {
			var err error
			l, err = t.B2StartLarge(ctx, "")
			if err != nil {
				return fmt.Errorf("b2: start large file: %w", err)
			}
			return nil
		})
		if err != nil {
			return transfer.Result{}, err
		}
		state.UploadID = l.FileID
		if err := tr.Update(func(s *transfer.State) { s.UploadID = l.FileID }); err != nil {
			return transfer.Result{}, fmt.Errorf("b2: checkpoint after start: %w", err)
		}
		pool.put(l)
	}
	pool.fileID = state.UploadID
	done := map[int]string{}
	for _, ps := range state.Parts {
		if ps.Number >= 1 && ps.Number <= len(parts) && ps.Size == parts[ps.Number-1].Size && ps.SHA1 != "" {
			done[ps.Number] = ps.SHA1
		}
	}
	scan := transfer.NewScanner(src, parts, transfer.Each(sha1.New), sha256.New())
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	lead := 2 * u.o.Parallelism
	scan.Allow(lead)
	go scan.Run(sctx)

	err := transfer.RunParts(ctx, u.o.Parallelism, parts,
		func(pt transfer.Part) bool { _, ok := done[pt.Number]; return ok },
		func(i int) { scan.Allow(i + lead) },
		func(ctx context.Context, pt transfer.Part) error { return u.sendPart(ctx, src, pt, scan, pool, tr) })
	if err != nil {
		u.cancelIfCanceled(ctx, t, state.UploadID)
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("b2: read source: %w", err)
	}
	sha1s := make([]string, len(parts))
	for i := range parts {
		d, _ := scan.PartDigest(ctx, i)
		sha1s[i] = hex.EncodeToString(d)
		// A part resumed from the saved state must still be the bytes we have.
		if s, ok := done[i+1]; ok && s != sha1s[i] {
			return transfer.Result{}, &transfer.Error{Provider: provider, Step: "resume", Part: i + 1, Err: fmt.Errorf("%w: saved part SHA-1 %s, file's %s", transfer.ErrChecksum, s, sha1s[i])}
		}
	}
	err = u.o.Retry(ctx, func(int, bool) error {
		if err := t.B2FinishLarge(ctx, state.UploadID, sha1s); err != nil {
			return fmt.Errorf("b2: finish large file: %w", err)
		}
		return nil
	})
	if err != nil {
		u.cancelIfCanceled(ctx, t, state.UploadID)
		return transfer.Result{}, err
	}
	return transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: state.UploadID, Parts: len(parts), Resumed: len(done),
		Checked: []string{"b2-part-sha1"}}, nil
}

func (u *Uploader) sendPart(ctx context.Context, src transfer.Source, pt transfer.Part, scan *transfer.Scanner, pool *urlPool, tr *transfer.Tracker) error {
	// X-Bz-Content-Sha1 is a header: the scanner hashes the part first and
	// the send re-reads it from the page cache.
	d, err := scan.PartDigest(ctx, pt.Number-1)
	if err != nil {
		return fmt.Errorf("b2: hash part %d: %w", pt.Number, err)
	}
	sum := hex.EncodeToString(d)
	return u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(pt.Number)
		}
		if refresh {
			pool.flush() // tokens were issued together: drop them all
		}
		l, err := pool.get(ctx)
		if err != nil {
			return err
		}
		body := tr.Body(src, pt, nil)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.UploadURL, body)
		if err != nil {
			body.Close()
			return fmt.Errorf("b2: upload part %d: bad upload URL %s: %w", pt.Number, transfer.Redact(l.UploadURL), err)
		}
		req.ContentLength = pt.Size
		req.Header.Set("Authorization", l.AuthorizationToken)
		req.Header.Set("X-Bz-Part-Number", strconv.Itoa(pt.Number))
		req.Header.Set("X-Bz-Content-Sha1", sum)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "upload part", pt.Number)
		if err != nil {
			return err // the URL is dropped: B2 says get a new one after any failure
		}
		fi, err := readInfo(resp, "upload part", pt.Number)
		if err != nil {
			return err
		}
		if fi.ContentSha1 != "" && fi.ContentSha1 != sum {
			return &transfer.Error{Provider: provider, Step: "upload part", Part: pt.Number, Status: resp.StatusCode,
				Err: fmt.Errorf("%w: server SHA-1 %s, read %s", transfer.ErrChecksum, fi.ContentSha1, sum)}
		}
		pool.put(l)
		if err := tr.Acked(transfer.PartState{Number: pt.Number, Size: pt.Size, SHA1: sum}); err != nil {
			return fmt.Errorf("b2: checkpoint part %d: %w", pt.Number, err)
		}
		return nil
	})
}

func (u *Uploader) cancelIfCanceled(ctx context.Context, t transfer.B2Target, fileID string) {
	if !transfer.Canceled(ctx) {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	// Parts in flight may land after a first cancel; cancel again after them.
	for _, pause := range []time.Duration{0, 500 * time.Millisecond} {
		time.Sleep(pause)
		if err := t.B2CancelLarge(cctx, fileID); err != nil {
			u.o.Logger.Warn("b2: cancel large file after cancel failed", "err", err)
		}
	}
}
