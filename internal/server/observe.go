package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/metrics"
	"github.com/ferryhq/ferry/internal/reqid"
)

// This file holds the hooks through which the composition root feeds metrics and request ids
// from components that know nothing of either: each wraps what it is handed (the tus handler,
// the blobs delivery reads, iconik's transport, the settle hook) and changes no behaviour.

// observeUploads wraps the tus handler: bytes received and uploads receiving bytes right now
// are counted, and a JSON error answer gets the request's id (the tus layers write their own
// error bodies).
func (a *App) observeUploads(next http.Handler) http.Handler {
	m := a.Metrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if carriesBytes(r) {
			done := m.UploadStarted()
			defer done()
			r.Body = &countingBody{ReadCloser: r.Body, m: m}
		}
		iw := &idWriter{ResponseWriter: w, id: reqid.From(r.Context())}
		next.ServeHTTP(iw, r)
		iw.finish()
	})
}

// carriesBytes reports whether r is a tus request with upload bytes: a PATCH, or a creation
// with upload (POST with a body).
func carriesBytes(r *http.Request) bool {
	method := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && o != "" {
		method = strings.ToUpper(o)
	}
	return (method == http.MethodPatch || method == http.MethodPost) && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

type countingBody struct {
	io.ReadCloser
	m *metrics.Metrics
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.m.Received(n)
	return n, err
}

// idWriter holds back a JSON error answer (small by construction) to add the request id to
// its "error" object; every other answer passes straight through.
type idWriter struct {
	http.ResponseWriter
	id     string
	status int // a held-back error status; 0 = passing through
	passed bool
	buf    bytes.Buffer
}

// maxHeldError bounds what is held back; a larger body passes through untouched.
const maxHeldError = 64 << 10

func (w *idWriter) WriteHeader(code int) {
	if !w.passed && w.status == 0 && code >= 400 && w.id != "" && strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.status = code
		return
	}
	w.passed = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *idWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.passed = true
		return w.ResponseWriter.Write(p)
	}
	if w.buf.Len()+len(p) > maxHeldError {
		w.release(w.buf.Bytes(), false)
		w.status = 0
		return w.ResponseWriter.Write(p)
	}
	return w.buf.Write(p)
}

func (w *idWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends a held-back error answer with the id added.
func (w *idWriter) finish() {
	if w.status == 0 {
		return
	}
	body, changed := w.buf.Bytes(), false
	var v map[string]json.RawMessage
	var e map[string]any
	if json.Unmarshal(body, &v) == nil && json.Unmarshal(v["error"], &e) == nil && e != nil {
		e["request_id"] = w.id
		if b, err := json.Marshal(e); err == nil {
			v["error"] = b
			if out, err := json.Marshal(v); err == nil {
				body, changed = append(out, '\n'), true
			}
		}
	}
	w.release(body, changed)
}

func (w *idWriter) release(body []byte, changed bool) {
	if changed && w.Header().Get("Content-Length") != "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.passed = true
	_, _ = w.ResponseWriter.Write(body)
}

// countingBlobs counts the bytes delivery reads from the store.
type countingBlobs struct {
	delivery.Blobs
	m *metrics.Metrics
}

func (c countingBlobs) Open(ctx context.Context, id string) (delivery.Blob, error) {
	b, err := c.Blobs.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return countingBlob{Blob: b, m: c.m}, nil
}

type countingBlob struct {
	delivery.Blob
	m *metrics.Metrics
}

func (b countingBlob) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.Blob.ReadAt(p, off)
	b.m.Delivered(n)
	return n, err
}

// iconikTransport counts each HTTP request to iconik by method, route template and status.
type iconikTransport struct {
	next http.RoundTripper
	m    *metrics.Metrics
}

func (t iconikTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.m.IconikCall(r.Method, r.URL.Path, status)
	return resp, err
}

// countSettled counts a settled delivery after what settle already does (notifications).
// A settle job that runs again after a crash may count the same delivery twice: rare, and
// a counter that errs high beats one that loses settles.
func (a *App) countSettled(next func(context.Context, delivery.Event) error) func(context.Context, delivery.Event) error {
	return func(ctx context.Context, ev delivery.Event) error {
		if next != nil {
			if err := next(ctx, ev); err != nil {
				return err
			}
		}
		d := ev.Delivery
		end := a.now()
		if d.SettledAt != nil {
			end = *d.SettledAt
		}
		var delivered int64
		for _, f := range ev.Files {
			if f.State == db.DeliveryFileDelivered {
				delivered += f.Size
			}
		}
		a.Metrics.DeliverySettled(string(d.State), delivered, end.Sub(d.CreatedAt))
		return nil
	}
}

// observeIngest exports the upload store's space and River's queue depth, both read at scrape
// time.
func (a *App) observeIngest() {
	a.Metrics.WatchSpace(func() (metrics.Space, error) {
		sp, err := a.Ingest.Space()
		return metrics.Space{Free: sp.Free, Reserve: sp.Reserve, Promised: sp.Promised, Known: sp.Known}, err
	}, a.log)
	a.Metrics.WatchQueue(func(ctx context.Context) (map[string]int64, error) { return db.RiverJobCountByState(ctx, a.DB) }, a.log)
}
