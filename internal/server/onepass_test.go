package server

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// damagingProxy forwards to the server (trailers included, as Go's reverse proxy does) and,
// once, flips a byte of a PATCH body in transit, or drops every PATCH's trailers.
type damagingProxy struct {
	mu        sync.Mutex
	flipAfter int64 // body bytes to let through before flipping one; -1: never
	seen      int64
	dropTrail bool
}

func (p *damagingProxy) wrap(r *http.Request) {
	if r.Method != http.MethodPatch || r.Body == nil {
		return
	}
	r.Body = &damagingBody{ReadCloser: r.Body, p: p, r: r}
}

type damagingBody struct {
	io.ReadCloser
	p *damagingProxy
	r *http.Request
}

func (b *damagingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if at := p.flipAfter - p.seen; p.flipAfter >= 0 && at >= 0 && at < int64(n) {
		buf[at] ^= 0x55
		p.flipAfter = -1
	}
	p.seen += int64(n)
	if err == io.EOF && p.dropTrail {
		for k := range b.r.Trailer {
			delete(b.r.Trailer, k)
		}
	}
	return n, err
}

func TestFerrySendThroughADamagingProxyIsVerifiedAndResent(t *testing.T) {
	cases := []struct {
		name    string
		proxy   func() *damagingProxy
		streams int
	}{
		{"a byte flipped in a whole file", func() *damagingProxy { return &damagingProxy{flipAfter: 3 << 20} }, 1},
		{"a byte flipped in a partial", func() *damagingProxy { return &damagingProxy{flipAfter: 3 << 20} }, 4},
		{"trailers dropped", func() *damagingProxy { return &damagingProxy{flipAfter: -1, dropTrail: true} }, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.portal(map[string]any{"name": "Send", "slug": "send", "active": true})
			u, _ := url.Parse(h.srv.URL)
			rp := httputil.NewSingleHostReverseProxy(u)
			p := tc.proxy()
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p.wrap(r)
				rp.ServeHTTP(w, r)
			}))
			t.Cleanup(proxy.Close)
			data, res := sendClip(t, proxy.URL, tc.streams, 7)
			f := h.onlyFile(res.PackageID, data)
			want := sha256.Sum256(data)
			if tc.streams == 1 && (f.SHA256 != hex.EncodeToString(want[:]) || !f.SHA256Verified) {
				t.Errorf("a file sent whole: recorded sha256 %q verified %v, want the verified whole digest", f.SHA256, f.SHA256Verified)
			}
		})
	}
}
