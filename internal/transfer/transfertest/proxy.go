package transfertest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy sits between the uploader and a real server (or the emulator's data
// plane) to inject what real providers do now and then: expired URLs, 503s on
// some parts, damaged bytes. It forwards everything else untouched, Host
// header included, so signatures still verify. Targets route URLs through it
// with Via.
type Proxy struct {
	URL string
	srv *httptest.Server

	mu         sync.Mutex
	gen        int
	expired    int // URLs issued in generations below this are refused
	expireNext int
	refused    int
	seen       map[string]int // data-request key -> attempts
	order      []string
	failEvery  int
	injected   int
	corrupt    func(idx, attempt int) bool
	corrupted  int
	bodyBytes  int64
	dataReqs   []string
	active     sync.WaitGroup
	stallNext  int
	stalled    int
	release    chan struct{} // closed with the test: held connections end
}

// NewProxy starts a proxy closed with the test.
func NewProxy(t testing.TB) *Proxy {
	p := &Proxy{seen: map[string]int{}, release: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.release) })
	return p
}

const genParam = "ferry-gen"

// Via rewrites u to go through the proxy, stamped with the current URL
// generation (see ExpireIssued).
func (p *Proxy) Via(u string) string {
	p.mu.Lock()
	g := p.gen
	p.mu.Unlock()
	return p.via(u, g)
}

func (p *Proxy) via(u string, gen int) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return u
	}
	q := pu.RawQuery
	if gen >= 0 {
		if q != "" {
			q += "&"
		}
		q += genParam + "=" + strconv.Itoa(gen)
	}
	out := p.URL + "/_via/" + pu.Host + pu.EscapedPath()
	if q != "" {
		out += "?" + q
	}
	return out
}

// ExpireIssued makes every URL handed out so far answer 403 as an expired
// presigned URL does; URLs fetched afterwards work.
func (p *Proxy) ExpireIssued() {
	p.mu.Lock()
	p.gen++
	p.expired = p.gen
	p.mu.Unlock()
}

// ExpireNextData refuses the next n data requests as expired whatever their
// URL's generation: a URL fetched just in time that expired in a queue.
func (p *Proxy) ExpireNextData(n int) {
	p.mu.Lock()
	p.expireNext = n
	p.mu.Unlock()
}

// FailFirstAttemptEvery makes the first attempt of every k-th distinct data
// request (part, block, chunk) answer 503 Service Unavailable.
func (p *Proxy) FailFirstAttemptEvery(k int) {
	p.mu.Lock()
	p.failEvery = k
	p.mu.Unlock()
}

// Corrupt flips one byte in the body of data requests for which f is true;
// idx is the order in which the request's part (block, chunk) was first seen.
func (p *Proxy) Corrupt(f func(idx, attempt int) bool) {
	p.mu.Lock()
	p.corrupt = f
	p.mu.Unlock()
}

// StallNextData makes the next n data requests stall: the proxy takes the
// connection, reads none of the body and never answers, as a link that went
// dead without a reset or a server that stopped reading does. The connection
// stays open until the test ends; only the uploader can give up on it.
func (p *Proxy) StallNextData(n int) {
	p.mu.Lock()
	p.stallNext = n
	p.mu.Unlock()
}

// Stats is what the proxy saw.
type Stats struct {
	Refused, Injected, Corrupted, Stalled int
	// BodyBytes counts the bytes of data requests the server accepted (any
	// status below 400: GCS acknowledges chunks with 308). Aborted requests do
	// not count, so a straggler of an attempt that was killed, still arriving
	// after Quiesce, is not charged to the attempt that follows it.
	BodyBytes    int64
	DataRequests []string // keys, in arrival order
}

// Stats returns and resets the counters (not the faults).
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Refused: p.refused, Injected: p.injected, Corrupted: p.corrupted, Stalled: p.stalled, BodyBytes: p.bodyBytes, DataRequests: p.dataReqs}
	p.refused, p.injected, p.corrupted, p.stalled, p.bodyBytes, p.dataReqs = 0, 0, 0, 0, 0, nil
	return s
}

// dataKey names a request that carries file bytes, or "" for control requests.
func dataKey(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Get("partNumber") != "" && r.Method == http.MethodPut:
		return "part:" + q.Get("partNumber")
	case q.Get("comp") == "block":
		return "block:" + q.Get("blockid")
	case r.Header.Get("X-Bz-Part-Number") != "":
		return "part:" + r.Header.Get("X-Bz-Part-Number")
	case r.Header.Get("X-Bz-File-Name") != "":
		return "put"
	case strings.HasPrefix(r.Header.Get("Content-Range"), "bytes ") && !strings.HasPrefix(r.Header.Get("Content-Range"), "bytes */"):
		a, _, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes "), "-")
		return "chunk:" + a
	case r.Method == http.MethodPut && q.Get("comp") == "" && q.Get("uploadId") == "" && r.ContentLength > 0:
		return "put"
	}
	return ""
}

// Quiesce waits until no request is being forwarded: a killed upload's
// requests may still be draining through the proxy.
func (p *Proxy) Quiesce() { p.active.Wait() }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.active.Add(1)
	defer p.active.Done()
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/_via/")
	if !ok {
		http.Error(w, "not a proxied URL", http.StatusBadGateway)
		return
	}
	host, path, _ := strings.Cut(rest, "/")
	q := r.URL.RawQuery
	gen := -1
	var kept []string
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, genParam+"="); ok {
			gen, _ = strconv.Atoi(v)
			continue
		}
		kept = append(kept, kv)
	}
	q = strings.Join(kept, "&")
	key := dataKey(r)
	p.mu.Lock()
	refuse := gen >= 0 && gen < p.expired
	if !refuse && key != "" && p.expireNext > 0 && gen >= 0 {
		p.expireNext--
		refuse = true
	}
	if refuse {
		p.refused++
		p.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
		return
	}
	var fail, corrupt, stall bool
	if key != "" && p.stallNext > 0 {
		p.stallNext--
		p.stalled++
		stall = true
	}
	if key != "" && !stall {
		if _, ok := p.seen[key]; !ok {
			p.order = append(p.order, key)
		}
		p.seen[key]++
		attempt := p.seen[key]
		idx := indexOf(p.order, key)
		fail = p.failEvery > 0 && attempt == 1 && idx%p.failEvery == p.failEvery-1
		corrupt = !fail && p.corrupt != nil && p.corrupt(idx, attempt) && r.ContentLength > 0
		if fail {
			p.injected++
		}
		if corrupt {
			p.corrupted++
		}
		p.dataReqs = append(p.dataReqs, key)
	}
	p.mu.Unlock()
	if stall {
		p.hold(w)
		return
	}
	if fail {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<Error><Code>SlowDown</Code><Message>injected by transfertest</Message></Error>")
		return
	}
	target := "http://" + host + "/" + path
	if q != "" {
		target += "?" + q
	}
	var body io.Reader = r.Body
	if corrupt {
		body = &flipper{r: r.Body, at: r.ContentLength / 2}
	}
	var cnt *counter
	if key != "" {
		cnt = &counter{r: body}
		body = cnt
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	out.Host = host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if cnt != nil && resp.StatusCode < 400 {
		p.mu.Lock()
		p.bodyBytes += cnt.n.Load()
		p.mu.Unlock()
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if lu, err := url.Parse(loc); err == nil && lu.Host == host {
			w.Header().Set("Location", p.via(loc, -1)) // sessions (GCS) never expire here
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// hold takes the request's connection from the server and keeps it open,
// unread and unanswered, until the test ends.
func (p *Proxy) hold(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	go func() {
		<-p.release
		c.Close()
	}()
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

type flipper struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipper) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if f.at >= f.off && f.at < f.off+int64(n) {
		b[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
