package tus

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client speaks tus 1.0 to one server. The zero value is not usable: set HTTP.
type Client struct {
	HTTP *http.Client
	// Header is added to every request (typically Authorization).
	Header http.Header
	// MaxRetries bounds consecutive failed attempts without progress (default 8).
	MaxRetries int
	// ZeroCopy sends *os.File sources with sendfile; set it only when HTTP
	// uses NewTransport, whose connections count bytes for progress.
	ZeroCopy bool
	// Backoff returns the pause before retry attempt n (1-based); default
	// exponential from 250 ms, capped at 15 s.
	Backoff func(n int) time.Duration
	Log     *slog.Logger
}

// Error is a refusal by the tus server (any non-success status).
type Error struct {
	Op      string // what was being done: "create upload", "patch", ...
	URL     string
	Status  int
	Code    string // from a JSON error body {"error":{"code","message"}}, or tusd's ERR_ prefix
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s %s: %s (%s, HTTP %d)", e.Op, e.URL, msg, e.Code, e.Status)
	}
	return fmt.Sprintf("%s %s: %s (HTTP %d)", e.Op, e.URL, msg, e.Status)
}

// Retryable reports whether repeating the request may succeed: server errors,
// a locked upload (423, another request still holds it) and offset conflicts
// (409, fixed by a HEAD resync).
func (e *Error) Retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusLocked || e.Status == http.StatusConflict ||
		e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// Metadata is a tus Upload-Metadata set.
type Metadata map[string]string

// Encode renders metadata as the Upload-Metadata header (keys sorted, values base64).
func (m Metadata) Encode() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(m[k])))
	}
	return strings.Join(parts, ",")
}

func (c *Client) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("tus %s %s: %w", method, u, err)
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	return req, nil
}

// do sends a body-less request, retrying network errors and retryable statuses.
func (c *Client) do(ctx context.Context, op string, build func() (*http.Request, error), want ...int) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := c.HTTP.Do(req)
		if err == nil {
			if wanted(resp.StatusCode, want) {
				return resp, nil
			}
			err = responseError(op, req.URL.String(), resp)
		} else {
			err = fmt.Errorf("%s %s: %w", op, req.URL.Redacted(), err)
		}
		if ctx.Err() != nil || !retryable(err) || attempt > c.maxRetries() {
			return nil, err
		}
		c.log().Warn("tus request failed, retrying", "op", op, "attempt", attempt, "err", err)
		if err := c.sleep(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

func wanted(status int, want []int) bool {
	for _, w := range want {
		if status == w {
			return true
		}
	}
	return false
}

func retryable(err error) bool {
	var te *Error
	if errors.As(err, &te) {
		return te.Retryable()
	}
	// Anything else is a transport error (reset, EOF, timeout): worth a retry.
	return !errors.Is(err, context.Canceled)
}

func (c *Client) maxRetries() int {
	if c.MaxRetries > 0 {
		return c.MaxRetries
	}
	return 8
}

func (c *Client) sleep(ctx context.Context, attempt int) error {
	d := 250 * time.Millisecond << min(attempt-1, 6)
	if c.Backoff != nil {
		d = c.Backoff(attempt)
	}
	d = min(d, 15*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// responseError reads an error response; the body is closed.
func responseError(op, u string, resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Op: op, URL: u, Status: resp.StatusCode}
	var j struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &j) == nil && (j.Error.Code != "" || j.Error.Message != "") {
		e.Code, e.Message = j.Error.Code, j.Error.Message
		return e
	}
	// tusd answers "ERR_CODE: message" in plain text.
	text := strings.TrimSpace(string(b))
	if code, msg, ok := strings.Cut(text, ": "); ok && strings.HasPrefix(code, "ERR_") {
		e.Code, e.Message = code, msg
	} else {
		e.Message = text
	}
	return e
}

// CreateOpts shape one creation request.
type CreateOpts struct {
	Metadata Metadata
	Partial  bool // Upload-Concat: partial
}

// Create makes a new upload of size bytes at endpoint and returns its absolute URL.
func (c *Client) Create(ctx context.Context, endpoint string, size int64, opts CreateOpts) (string, error) {
	resp, err := c.do(ctx, "create upload", func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodPost, endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
		if len(opts.Metadata) > 0 {
			req.Header.Set("Upload-Metadata", opts.Metadata.Encode())
		}
		if opts.Partial {
			req.Header.Set("Upload-Concat", "partial")
		}
		return req, nil
	}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	return location(endpoint, resp)
}

// Concat creates the final upload joining partials (absolute URLs, in order).
func (c *Client) Concat(ctx context.Context, endpoint string, partials []string, meta Metadata) (string, error) {
	resp, err := c.do(ctx, "concatenate uploads", func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodPost, endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Upload-Concat", "final;"+strings.Join(partials, " "))
		if len(meta) > 0 {
			req.Header.Set("Upload-Metadata", meta.Encode())
		}
		return req, nil
	}, http.StatusCreated)
	if err != nil {
		return "", err
	}
	return location(endpoint, resp)
}

func location(endpoint string, resp *http.Response) (string, error) {
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("create upload at %s: server sent no Location", endpoint)
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("create upload: endpoint %q: %w", endpoint, err)
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("create upload at %s: bad Location %q: %w", endpoint, loc, err)
	}
	return u.String(), nil
}

// ErrNotFound means the upload is gone (expired, terminated or never existed).
var ErrNotFound = errors.New("upload not found")

// Offset asks the server how many bytes of the upload it holds (HEAD) and its length (-1 if deferred).
func (c *Client) Offset(ctx context.Context, u string) (offset, length int64, err error) {
	resp, err := c.do(ctx, "query upload offset", func() (*http.Request, error) {
		req, err := c.newRequest(ctx, http.MethodHead, u, nil)
		if err == nil {
			req.Header.Set("Cache-Control", "no-store")
		}
		return req, err
	}, http.StatusOK, http.StatusNoContent, http.StatusNotFound, http.StatusGone, http.StatusForbidden)
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
		return 0, 0, fmt.Errorf("query upload offset %s: HTTP %d: %w", u, resp.StatusCode, ErrNotFound)
	}
	offset, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("query upload offset %s: bad Upload-Offset %q", u, resp.Header.Get("Upload-Offset"))
	}
	length = -1
	if l := resp.Header.Get("Upload-Length"); l != "" {
		if length, err = strconv.ParseInt(l, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("query upload offset %s: bad Upload-Length %q", u, l)
		}
	}
	return offset, length, nil
}

// Terminate deletes an upload (termination extension). A missing upload is not an error.
func (c *Client) Terminate(ctx context.Context, u string) error {
	resp, err := c.do(ctx, "terminate upload", func() (*http.Request, error) {
		return c.newRequest(ctx, http.MethodDelete, u, nil)
	}, http.StatusNoContent, http.StatusOK, http.StatusNotFound, http.StatusGone)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Upload sends bytes [from, size) of the upload at u, reading upload byte i at
// src offset base+i. from < 0 asks the server's offset first (HEAD); a caller
// that just asked passes it in. It sends the rest
// in one PATCH, and after a network error or 5xx resynchronises with HEAD and
// continues, with backoff, until MaxRetries attempts in a row made no progress.
// progress receives byte deltas as they are sent (negative after a resync that
// found fewer bytes stored than were sent). A cancelled ctx stops promptly.
func (c *Client) Upload(ctx context.Context, u string, src io.ReaderAt, base, size, from int64, progress func(delta int64)) error {
	return c.upload(ctx, u, src, base, size, from, nil, progress)
}

// UploadHashed is Upload for an upload created with sha256_trailer: the bytes
// are read from f once, hashed as they are sent (d resumes the hash at any
// offset), and the digest is declared after the last byte (see Digest). An
// error wrapping ErrMismatch means the server dropped the upload: create it
// again and send it all.
func (c *Client) UploadHashed(ctx context.Context, u string, f *os.File, base, size, from int64, d Digest, progress func(delta int64)) error {
	return c.upload(ctx, u, f, base, size, from, d, progress)
}

func (c *Client) upload(ctx context.Context, u string, src io.ReaderAt, base, size, from int64, d Digest, progress func(delta int64)) error {
	if progress == nil {
		progress = func(int64) {}
	}
	off := from
	if off < 0 {
		var err error
		if off, _, err = c.Offset(ctx, u); err != nil {
			return err
		}
		progress(off)
	}
	reported := off
	failures := 0
	verified := false // the server answered the PATCH that carried the last byte and its digest
	var sum []byte
	for off < size {
		var newOff, sent int64
		var err error
		if d != nil {
			var s []byte
			newOff, sent, s, err = c.patchHashed(ctx, u, src.(*os.File), base, off, size, d, progress)
			if s != nil {
				sum = s
			}
		} else {
			newOff, sent, err = c.patchFrom(ctx, u, src, base, off, size-off, progress)
		}
		reported += sent
		if err == nil {
			off = newOff
			failures = 0
			verified = off == size
			if reported != off {
				progress(off - reported)
				reported = off
			}
			continue
		}
		if d != nil && sum != nil && isCode(err, CodeChecksumMissing) {
			// Every byte is stored but the trailer was lost on the way: declare it below.
			off = size
			break
		}
		if err = mismatch(err); errors.Is(err, ErrMismatch) {
			progress(-reported) // the server dropped the bytes
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return err
		}
		failures++
		if failures > c.maxRetries() {
			return fmt.Errorf("giving up after %d attempts: %w", failures, err)
		}
		c.log().Warn("upload interrupted, resuming", "url", u, "offset", off, "attempt", failures, "err", err)
		if err := c.sleep(ctx, failures); err != nil {
			return err
		}
		got, _, herr := c.Offset(ctx, u)
		if herr != nil {
			return fmt.Errorf("resume after %w: %w", err, herr)
		}
		if got > off {
			failures = 0 // the interrupted request still moved bytes: progress
		}
		off = got
		progress(off - reported)
		reported = off
	}
	if d == nil || verified {
		return nil
	}
	// The bytes are all there but no answer said they were verified (a
	// dropped trailer, a lost answer, a run killed after the last byte):
	// declare the digest; the server answers as often as asked.
	if sum == nil {
		h, err := d.At(ctx, size)
		if err != nil {
			return err
		}
		sum = h.Sum(nil)
	}
	if err := c.Declare(ctx, u, size, sum); err != nil {
		if errors.Is(err, ErrMismatch) {
			progress(-reported)
		}
		return err
	}
	return nil
}

// patchFrom sends bytes [off, off+n) of the upload in one PATCH and returns
// the server's new offset and how many bytes progress was told about.
func (c *Client) patchFrom(ctx context.Context, u string, src io.ReaderAt, base, off, n int64, progress func(int64)) (int64, int64, error) {
	if f, ok := src.(*os.File); ok && c.ZeroCopy {
		// A fresh descriptor per request: the transport closes the body, and
		// parallel parts of one file each need their own file position.
		body, err := os.Open(f.Name())
		if err != nil {
			return 0, 0, fmt.Errorf("patch %s: %w", u, err)
		}
		defer body.Close()
		if _, err := body.Seek(base+off, io.SeekStart); err != nil {
			return 0, 0, fmt.Errorf("patch %s: %w", u, err)
		}
		a := &attempt{fn: progress}
		newOff, err := c.patch(a.trace(ctx), u, newFileBody(body, n), off, n)
		return newOff, a.stop(), err
	}
	cr := &countingReader{r: io.NewSectionReader(src, base+off, n), fn: progress}
	newOff, err := c.patch(ctx, u, cr, off, n)
	return newOff, cr.stop(), err
}

func (c *Client) patch(ctx context.Context, u string, body io.Reader, off, n int64) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, u, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("patch %s at offset %d: %w", req.URL.Redacted(), off, err)
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, responseError("patch", u, resp)
	}
	resp.Body.Close()
	newOff, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("patch %s: bad Upload-Offset %q", u, resp.Header.Get("Upload-Offset"))
	}
	return newOff, nil
}

// countingReader reports bytes as the transport reads them, for progress bars.
// The transport may go on reading a body after Do returned (an early error
// response): stop makes further reads fail, so nothing is counted twice.
type countingReader struct {
	mu      sync.Mutex
	r       io.Reader
	fn      func(int64)
	n       int64
	stopped bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return 0, io.ErrClosedPipe
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.fn(int64(n))
	}
	return n, err
}

// stop ends reading and returns the bytes read.
func (c *countingReader) stop() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	return c.n
}
