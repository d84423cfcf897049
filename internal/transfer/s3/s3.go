package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// S3's limits.
const (
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	MaxParts    = 10000
	MaxPutSize  = 5 << 30
)

const provider = "s3"

// Uploader sends files to S3 through presigned URLs.
type Uploader struct{ o transfer.Options }

// New returns an S3 uploader. Options.PartSize below 5 MiB is raised to it.
func New(o transfer.Options) *Uploader {
	o = o.WithDefaults()
	o.PartSize = max(o.PartSize, MinPartSize)
	return &Uploader{o: o}
}

// PartSize is the part size used for a file of size bytes.
func (u *Uploader) PartSize(size int64) int64 {
	return transfer.PartSizeFor(size, u.o.PartSize, 1<<20, MaxParts)
}

// Upload sends src to target: one PUT when it fits in one part, else a
// multipart upload with parts in parallel.
func (u *Uploader) Upload(ctx context.Context, src transfer.Source, target transfer.Target, p transfer.Params) (transfer.Result, error) {
	t, ok := target.(transfer.S3Target)
	if !ok {
		return transfer.Result{}, fmt.Errorf("s3: target %T (method %s) is not an S3 target", target, target.Method())
	}
	size := src.Size()
	partSize := u.PartSize(size)
	if partSize > MaxPartSize {
		return transfer.Result{}, fmt.Errorf("s3: file of %d bytes exceeds 10,000 parts of 5 GiB", size)
	}
	if size <= partSize {
		return u.put(ctx, src, t, p)
	}
	res, err := u.multipart(ctx, src, t, p, partSize, p.Resume)
	var te *transfer.Error
	if err != nil && p.Resume != nil && errors.As(err, &te) && te.Code == "NoSuchUpload" && ctx.Err() == nil {
		// The saved upload was aborted or expired on the server: start over.
		u.o.Logger.Warn("s3: saved multipart upload is gone, starting afresh", "err", err)
		return u.multipart(ctx, src, t, p, partSize, nil)
	}
	return res, err
}

func (u *Uploader) put(ctx context.Context, src transfer.Source, t transfer.S3Target, p transfer.Params) (transfer.Result, error) {
	size := src.Size()
	all := transfer.Part{Number: 1, Size: size}
	// With a zero-copy source the bytes never pass through user space while
	// sent: the scanner's MD5 checks the ETag. Otherwise the sender hashes.
	zc := transfer.ZeroCopy(src)
	whole := []hash.Hash{sha256.New()}
	if zc {
		whole = append(whole, md5.New())
	}
	scan := transfer.NewScanner(src, transfer.PlanParts(size, max(size, 1)), nil, whole...)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	scan.Allow(1)
	go scan.Run(sctx)

	tr := transfer.NewTracker(p, transfer.State{Method: "S3", Size: size})
	var etag string
	var sum []byte
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(1)
		}
		var h hash.Hash
		if !zc {
			h = md5.New()
		}
		url, err := t.S3PutURL(ctx)
		if err != nil {
			return fmt.Errorf("s3: get upload URL: %w", err)
		}
		body := tr.Body(src, all, h)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
		if err != nil {
			body.Close()
			return fmt.Errorf("s3: put object: bad upload URL %s: %w", transfer.Redact(url), err)
		}
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "put object", 0)
		if err != nil {
			return err
		}
		drain(resp)
		etag = strings.Trim(resp.Header.Get("ETag"), `"`)
		if h != nil {
			sum = h.Sum(nil)
		} else {
			sums, err := scan.Wait(ctx)
			if err != nil {
				return fmt.Errorf("s3: read source: %w", err)
			}
			sum = sums[1]
		}
		if isMD5(etag) && etag != hex.EncodeToString(sum) {
			return &transfer.Error{Provider: provider, Step: "put object", Status: resp.StatusCode,
				Err: fmt.Errorf("%w: server ETag %s, MD5 of the bytes sent %x", transfer.ErrChecksum, etag, sum)}
		}
		return nil
	})
	if err != nil {
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("s3: read source: %w", err)
	}
	res := transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: etag}
	if isMD5(etag) {
		res.Checked = append(res.Checked, "etag-md5")
	}
	return res, nil
}

func (u *Uploader) multipart(ctx context.Context, src transfer.Source, t transfer.S3Target, p transfer.Params, partSize int64, resume *transfer.State) (transfer.Result, error) {
	size := src.Size()
	parts := transfer.PlanParts(size, partSize)
	state := transfer.State{Method: "S3", Size: size, PartSize: partSize}
	if r := resume; r != nil && r.Method == "S3" && r.Size == size && r.PartSize == partSize && r.UploadID != "" {
		state = *r
		state.Parts = slices.Clone(r.Parts)
	}
	tr := transfer.NewTracker(p, state)
	if state.UploadID == "" {
		id, err := u.create(ctx, t)
		if err != nil {
			return transfer.Result{}, err
		}
		if err := tr.Update(func(s *transfer.State) { s.UploadID = id }); err != nil {
			return transfer.Result{}, fmt.Errorf("s3: checkpoint after create: %w", err)
		}
		state.UploadID = id
	}
	uploadID := state.UploadID
	done := map[int]transfer.PartState{}
	for _, ps := range state.Parts {
		if ps.Number >= 1 && ps.Number <= len(parts) && ps.Size == parts[ps.Number-1].Size && ps.ETag != "" {
			done[ps.Number] = ps
		}
	}

	signMD5 := t.S3SignsMD5()
	// Part MD5s: the scanner hashes each part (on every core, from the page
	// cache) when the URLs are signed with them (needed before sending) or
	// when parts go out with sendfile (the bytes never reach user space);
	// otherwise each sender hashes its part while sending. Parts resumed from
	// the saved state are always hashed, to prove they are our bytes.
	md5s := &partSums{sums: make([][]byte, len(parts))}
	zc := transfer.ZeroCopy(src)
	scan := transfer.NewScanner(src, parts, func(i int) hash.Hash {
		if _, resumed := done[i+1]; signMD5 || resumed || zc {
			return transfer.NewMD5()
		}
		return nil
	}, sha256.New())
	scan.Lanes(transfer.MD5Lanes)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	// A whole batch of lanes is hashed ahead of the senders (Lanes needs at
	// least one; signed URLs wait for their part's MD5 before sending).
	lead := 2*u.o.Parallelism + transfer.MD5Lanes
	scan.Allow(lead)
	go scan.Run(sctx)

	urls := &urlCache{t: t, uploadID: uploadID, last: len(parts)}
	// Parts in flight adapt to the link: more while more add throughput.
	streams := transfer.NewStreams(u.o.Parallelism, u.o.MaxParallelism)
	err := transfer.RunPartsAdaptive(ctx, streams, parts,
		func(p transfer.Part) bool { _, ok := done[p.Number]; return ok },
		func(i int) { scan.Allow(i + lead) },
		func(ctx context.Context, part transfer.Part) error {
			return u.sendPart(ctx, src, part, scan, urls, signMD5 || zc, signMD5, md5s, tr)
		})
	u.o.Logger.Debug("s3: parts sent", "parts", len(parts), "most_in_flight", streams.Peak(), "level", streams.Level())
	if err != nil {
		u.abortIfCanceled(ctx, t, uploadID)
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("s3: read source: %w", err)
	}
	for i := range parts {
		if ps, resumed := done[i+1]; resumed {
			d, _ := scan.PartDigest(ctx, i)
			if isMD5(ps.ETag) && ps.ETag != hex.EncodeToString(d) {
				return transfer.Result{}, &transfer.Error{Provider: provider, Step: "resume", Part: i + 1,
					Err: fmt.Errorf("%w: saved part ETag %s, MD5 of the file's part %x", transfer.ErrChecksum, ps.ETag, d)}
			}
			md5s.set(i, d)
		}
	}
	final := tr.State()
	u.o.Logger.Debug("s3: parts acknowledged, completing", "parts", len(final.Parts))
	etag, err := u.complete(ctx, t, uploadID, final.Parts)
	u.o.Logger.Debug("s3: complete answered", "err", err)
	if err != nil {
		u.abortIfCanceled(ctx, t, uploadID)
		return transfer.Result{}, err
	}
	res := transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: etag, Parts: len(parts), Resumed: len(done),
		Checked: []string{"part-etag-md5"}, InFlight: streams.Peak()}
	// The multipart ETag is MD5(MD5(part1)..MD5(partN))-N: it proves the
	// server assembled the parts we hashed, resumed ones included.
	if want := md5s.multipartETag(); strings.Contains(etag, "-") && isMD5(strings.Split(etag, "-")[0]) {
		if etag != want {
			return res, &transfer.Error{Provider: provider, Step: "complete multipart upload", Err: fmt.Errorf("%w: object ETag %s, expected %s", transfer.ErrChecksum, etag, want)}
		}
		res.Checked = append(res.Checked, "multipart-etag")
	}
	return res, nil
}

// partSums holds each part's MD5 as it becomes known.
type partSums struct {
	mu   sync.Mutex
	sums [][]byte
}

func (p *partSums) set(i int, d []byte) {
	p.mu.Lock()
	p.sums[i] = d
	p.mu.Unlock()
}

func (p *partSums) multipartETag() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := md5.New()
	for _, d := range p.sums {
		h.Write(d)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(p.sums))
}

// sendPart sends one part. scanned says the scanner hashes the part (signed
// URLs need the MD5 first; zero-copy sends never see the bytes); otherwise
// the part is hashed while it is sent.
func (u *Uploader) sendPart(ctx context.Context, src transfer.Source, part transfer.Part, scan *transfer.Scanner, urls *urlCache, scanned, signMD5 bool, md5s *partSums, tr *transfer.Tracker) error {
	var md5b64 string
	var signed []byte
	if signMD5 {
		// The URL is signed with the part's MD5: hash first, then send (the
		// second read comes from the page cache).
		d, err := scan.PartDigest(ctx, part.Number-1)
		if err != nil {
			return fmt.Errorf("s3: hash part %d: %w", part.Number, err)
		}
		md5b64, signed = base64.StdEncoding.EncodeToString(d), d
	}
	return u.o.Retry(ctx, func(attempt int, refresh bool) error {
		var h hash.Hash
		if !scanned {
			h = transfer.NewMD5()
			defer transfer.Release(h)
		}
		if attempt > 1 {
			tr.Retrying(part.Number)
		}
		url, err := urls.get(ctx, part.Number, md5b64, refresh)
		if err != nil {
			return err
		}
		body := tr.Body(src, part, h)
		defer transfer.Detach(body) // before Release (deferred earlier, run later)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
		if err != nil {
			body.Close()
			return fmt.Errorf("s3: upload part %d: bad part URL %s: %w", part.Number, transfer.Redact(url), err)
		}
		req.ContentLength = part.Size
		if md5b64 != "" {
			req.Header.Set("Content-MD5", md5b64)
		}
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "upload part", part.Number)
		if err != nil {
			return err
		}
		drain(resp)
		etag := strings.Trim(resp.Header.Get("ETag"), `"`)
		if etag == "" {
			return &transfer.Error{Provider: provider, Step: "upload part", Part: part.Number, Status: resp.StatusCode, Err: errors.New("answer has no ETag")}
		}
		d := signed
		switch {
		case h != nil:
			d = h.Sum(nil)
		case d == nil:
			if d, err = scan.PartDigest(ctx, part.Number-1); err != nil {
				return fmt.Errorf("s3: hash part %d: %w", part.Number, err)
			}
		}
		if isMD5(etag) && etag != hex.EncodeToString(d) {
			return &transfer.Error{Provider: provider, Step: "upload part", Part: part.Number, Status: resp.StatusCode,
				Err: fmt.Errorf("%w: server ETag %s, MD5 of the part read %x", transfer.ErrChecksum, etag, d)}
		}
		md5s.set(part.Number-1, d)
		if err := tr.Acked(transfer.PartState{Number: part.Number, Size: part.Size, ETag: etag}); err != nil {
			return fmt.Errorf("s3: checkpoint part %d: %w", part.Number, err)
		}
		return nil
	})
}

func (u *Uploader) create(ctx context.Context, t transfer.S3Target) (string, error) {
	var id string
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		url, err := t.S3CreateURL(ctx)
		if err != nil {
			return fmt.Errorf("s3: get create-multipart URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, http.NoBody)
		if err != nil {
			return fmt.Errorf("s3: create multipart upload: bad URL %s: %w", transfer.Redact(url), err)
		}
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "create multipart upload", 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return &transfer.Error{Provider: provider, Step: "create multipart upload", Status: resp.StatusCode, Err: err}
		}
		// Parsed without the namespace: S3-compatible servers differ.
		var x struct {
			UploadID string `xml:"UploadId"`
		}
		if err := xml.Unmarshal(body, &x); err != nil || x.UploadID == "" {
			code, msg := transfer.ParseProviderError(body)
			return &transfer.Error{Provider: provider, Step: "create multipart upload", Status: resp.StatusCode, Code: code, Message: msg, Err: errors.New("answer has no UploadId")}
		}
		id = x.UploadID
		return nil
	})
	return id, err
}

func (u *Uploader) complete(ctx context.Context, t transfer.S3Target, uploadID string, parts []transfer.PartState) (string, error) {
	var b bytes.Buffer
	b.WriteString("<CompleteMultipartUpload>")
	for _, p := range parts {
		fmt.Fprintf(&b, "<Part><ETag>&#34;%s&#34;</ETag><PartNumber>%d</PartNumber></Part>", xmlEscape(p.ETag), p.Number)
	}
	b.WriteString("</CompleteMultipartUpload>")
	body := b.Bytes()
	var etag string
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		url, err := t.S3CompleteURL(ctx, uploadID)
		if err != nil {
			return fmt.Errorf("s3: get complete URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("s3: complete multipart upload: bad URL %s: %w", transfer.Redact(url), err)
		}
		req.Header.Set("Content-Type", "application/xml")
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "complete multipart upload", 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return &transfer.Error{Provider: provider, Step: "complete multipart upload", Status: resp.StatusCode, Err: err}
		}
		// S3 may answer 200 and then an <Error> (the copy failed late).
		var x struct {
			XMLName xml.Name
			ETag    string `xml:"ETag"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		if err := xml.Unmarshal(rb, &x); err != nil {
			return &transfer.Error{Provider: provider, Step: "complete multipart upload", Status: resp.StatusCode, Err: fmt.Errorf("unreadable answer: %w", err)}
		}
		if x.XMLName.Local == "Error" {
			st := resp.StatusCode
			if x.Code == "InternalError" || x.Code == "SlowDown" || x.Code == "ServiceUnavailable" {
				st = http.StatusInternalServerError // retry as S3 advises
			}
			return &transfer.Error{Provider: provider, Step: "complete multipart upload", Status: st, Code: x.Code, Message: x.Message}
		}
		etag = strings.Trim(x.ETag, `"`)
		return nil
	})
	return etag, err
}

// abortIfCanceled aborts the multipart upload when the user gave up
// (transfer.ErrCanceled), so that no parts stay behind; any other failure
// keeps it for a resume.
func (u *Uploader) abortIfCanceled(ctx context.Context, t transfer.S3Target, uploadID string) {
	if !transfer.Canceled(ctx) {
		return
	}
	// Parts still in flight on the server can land after the abort and bring
	// the upload back (AWS documents it: abort again until no part remains),
	// so abort once more after they had time to fail.
	for i, pause := range []time.Duration{0, 500 * time.Millisecond} {
		time.Sleep(pause)
		if err := Abort(context.WithoutCancel(ctx), u.o, t, uploadID); err != nil {
			u.o.Logger.Warn("s3: abort after cancel failed", "round", i+1, "err", err)
		}
	}
}

// Abort aborts a multipart upload (for a caller giving up on a saved State).
func Abort(ctx context.Context, o transfer.Options, t transfer.S3Target, uploadID string) error {
	o = o.WithDefaults()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return o.Retry(ctx, func(attempt int, refresh bool) error {
		url, err := t.S3AbortURL(ctx, uploadID)
		if err != nil {
			return fmt.Errorf("s3: get abort URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, http.NoBody)
		if err != nil {
			return fmt.Errorf("s3: abort multipart upload: bad URL %s: %w", transfer.Redact(url), err)
		}
		resp, err := transfer.Do(o.HTTPClient, req, provider, "abort multipart upload", 0, http.StatusNotFound)
		if err != nil {
			return err
		}
		drain(resp)
		return nil
	})
}

// urlCache fetches part URLs in batches (one iconik call per 100 parts
// rather than one per part) unless they are signed with each part's MD5.
type urlCache struct {
	t        transfer.S3Target
	uploadID string
	last     int
	mu       sync.Mutex
	urls     map[int]string
}

const batch = 100

func (c *urlCache) get(ctx context.Context, n int, md5b64 string, refresh bool) (string, error) {
	if md5b64 != "" {
		return c.fetchOne(ctx, []transfer.S3Part{{Number: n, MD5: md5b64}}, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if refresh {
		c.urls = nil // issued together, expired together
	}
	if u, ok := c.urls[n]; ok {
		delete(c.urls, n) // used once: a retry fetches again
		return u, nil
	}
	var req []transfer.S3Part
	for i := n; i <= min(n+batch-1, c.last); i++ {
		req = append(req, transfer.S3Part{Number: i})
	}
	got, err := c.t.S3PartURLs(ctx, c.uploadID, req)
	if err != nil {
		return "", fmt.Errorf("s3: get part URLs from %d: %w", n, err)
	}
	if c.urls == nil {
		c.urls = map[int]string{}
	}
	for _, pu := range got {
		c.urls[pu.Number] = pu.URL
	}
	u, ok := c.urls[n]
	if !ok {
		return "", fmt.Errorf("s3: no URL returned for part %d", n)
	}
	delete(c.urls, n)
	return u, nil
}

func (c *urlCache) fetchOne(ctx context.Context, req []transfer.S3Part, n int) (string, error) {
	got, err := c.t.S3PartURLs(ctx, c.uploadID, req)
	if err != nil {
		return "", fmt.Errorf("s3: get part URL %d: %w", n, err)
	}
	for _, pu := range got {
		if pu.Number == n {
			return pu.URL, nil
		}
	}
	return "", fmt.Errorf("s3: no URL returned for part %d", n)
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
