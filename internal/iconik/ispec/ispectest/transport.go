package ispectest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/ispec"
)

// Transport wraps base (nil = http.DefaultTransport) so that every request to an /API/ path and
// its response are checked against the spec; a mismatch calls t.Errorf with method, path and the
// problem. Bodies are buffered and restored, so callers see them unchanged. Other traffic (the
// emulator's /_storage/ data plane, provider URLs) passes through unchecked, as it is not JSON
// and not iconik's API.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	return TransportAllowing(t, base)
}

// TransportAllowing is Transport for a test that deliberately provokes statuses the spec does
// not declare (e.g. 403 for a missing role, whose status CONTRACT.md leaves open): responses
// with those statuses are not checked. Everything else is checked as by Transport.
func TransportAllowing(t testing.TB, base http.RoundTripper, statuses ...int) http.RoundTripper {
	t.Helper()
	s, err := ispec.Load()
	if err != nil {
		t.Fatalf("ispec: %v", err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	tr := &transport{t: t, spec: s, base: base, allow: statuses}
	// Background work (workers, keyframe pollers) may still send after the test ended, when
	// t.Errorf would panic: from then on mismatches are not reported.
	t.Cleanup(func() { tr.done.Store(true) })
	return tr
}

type transport struct {
	t     testing.TB
	spec  *ispec.Spec
	base  http.RoundTripper
	allow []int
	done  atomic.Bool
}

func (tr *transport) report(err error) {
	if err != nil && !tr.done.Load() {
		tr.t.Errorf("%v", err)
	}
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !ispec.IsAPIPath(req.URL.Path) {
		return tr.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("ispec: buffering request body of %s %s: %w", req.Method, req.URL.Path, err)
		}
		body = b
		// A RoundTripper must not modify the caller's request: send a shallow copy.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	tr.report(tr.spec.ValidateRequest(req, body))
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("ispec: buffering response body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if slices.Contains(tr.allow, resp.StatusCode) {
		return resp, nil
	}
	tr.report(tr.spec.ValidateResponse(req, resp.StatusCode, resp.Header, rb))
	return resp, nil
}
