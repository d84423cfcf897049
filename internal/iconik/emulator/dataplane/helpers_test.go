package dataplane

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source so expiry is tested by moving time, not by sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	p     *Plane
	url   string
	clock *clock
}

// newFixture serves a Plane on a real loopback socket, mounted the way the emulator mounts it.
func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	c := &clock{t: time.Now()}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	p := New(opts)
	mux := http.NewServeMux()
	mux.Handle("/_storage/", p.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.SetBaseURL(srv.URL)
	return &fixture{p: p, url: srv.URL, clock: c}
}

func (f *fixture) storage(t testing.TB, method string) Storage {
	st := Storage{ID: "st-" + method + "-" + newID()[:8], Method: method, Dir: t.TempDir(), Settings: map[string]any{"path": "ferry"}}
	f.p.Register(st)
	return st
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	r.Read(b)
	return b
}

func md5b64(b []byte) string { s := md5.Sum(b); return base64.StdEncoding.EncodeToString(s[:]) }

// do sends one request with net/http and returns status, headers and body.
func do(t testing.TB, method, url string, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("build %s %s: %v", method, url, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func readBack(t testing.TB, p *Plane, st Storage, key string) []byte {
	t.Helper()
	rc, n, err := p.Open(st, key)
	if err != nil {
		t.Fatalf("open %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(b)) != n {
		t.Fatalf("open %q: size %d, read %d", key, n, len(b))
	}
	return b
}
