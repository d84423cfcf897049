package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
	"github.com/ferryhq/ferry/internal/send/tus"
)

// recGate is an in-memory Gate that records what ingest told it.
type recGate struct {
	mu          sync.Mutex
	admitted    []Upload
	completed   []completion
	failed      []failure
	removed     []Upload
	reject      *Rejection // when set, Admit refuses
	admitErr    error      // when set, Admit fails with it (the database is away or full)
	completeErr error      // when set, Complete fails
	admitMeta   map[string]string
}

type completion struct {
	U   Upload
	Sum Checksums
}

type failure struct {
	U      Upload
	Reason string
}

func (g *recGate) Admit(ctx context.Context, u Upload) (Admission, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.admitted = append(g.admitted, u)
	if g.reject != nil {
		return Admission{}, g.reject
	}
	if g.admitErr != nil {
		return Admission{}, g.admitErr
	}
	return Admission{Metadata: g.admitMeta}, nil
}

func (g *recGate) Complete(ctx context.Context, u Upload, sum Checksums) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.completeErr != nil {
		return g.completeErr
	}
	g.completed = append(g.completed, completion{u, sum})
	return nil
}

func (g *recGate) Failed(ctx context.Context, u Upload, reason string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failed = append(g.failed, failure{u, reason})
	return nil
}

func (g *recGate) Removed(ctx context.Context, u Upload) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removed = append(g.removed, u)
	return nil
}

func (g *recGate) completions() []completion {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]completion(nil), g.completed...)
}

func (g *recGate) failures() []failure {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]failure(nil), g.failed...)
}

func (g *recGate) setCompleteErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.completeErr = err
}

const testToken = "tok-0123456789abcdef"

// rig is an ingest engine behind a real HTTP server on loopback.
type rig struct {
	t    *testing.T
	ing  *Ingest
	gate *recGate
	srv  *httptest.Server
	dir  string
}

func newRig(t *testing.T, mod ...func(*Config)) *rig {
	t.Helper()
	gate := &recGate{}
	dir := t.TempDir()
	return newRigIn(t, dir, gate, mod...)
}

func newRigIn(t *testing.T, dir string, gate *recGate, mod ...func(*Config)) *rig {
	t.Helper()
	cfg := Config{Dir: dir, NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	ing, err := New(cfg, gate)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/uploads/", ing.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &rig{t: t, ing: ing, gate: gate, srv: srv, dir: dir}
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func encodeMeta(meta map[string]string) string { return tus.Metadata(meta).Encode() }

// tusReq is one tus request.
type tusReq struct {
	Method  string
	URL     string // absolute, or "" for the creation endpoint
	Token   string // bearer token; "" sends none
	Header  map[string]string
	Meta    map[string]string
	Body    []byte
	HasBody bool // send Body as application/offset+octet-stream
}

type tusResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *tusResp) errCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

func (rg *rig) do(q tusReq) *tusResp {
	rg.t.Helper()
	if q.URL == "" {
		q.URL = rg.srv.URL + "/uploads/"
	}
	return doTus(rg.t, rg.srv.Client(), q)
}

// doTus sends one tus request to q.URL.
func doTus(t *testing.T, c *http.Client, q tusReq) *tusResp {
	t.Helper()
	var body io.Reader
	if q.HasBody {
		body = bytes.NewReader(q.Body)
	}
	req, err := http.NewRequest(q.Method, q.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if q.Token != "" {
		req.Header.Set("Authorization", "Bearer "+q.Token)
	}
	if q.HasBody {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	if q.Meta != nil {
		req.Header.Set("Upload-Metadata", encodeMeta(q.Meta))
	}
	for k, v := range q.Header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.Method, q.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &tusResp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// create makes an upload of size bytes (or a partial/final per extra headers) and returns its URL.
func (rg *rig) create(size int, meta map[string]string, extra map[string]string) string {
	rg.t.Helper()
	h := map[string]string{"Upload-Length": strconv.Itoa(size)}
	for k, v := range extra {
		h[k] = v
	}
	if _, ok := extra["Upload-Concat"]; ok && strings.HasPrefix(extra["Upload-Concat"], "final") {
		delete(h, "Upload-Length")
	}
	res := rg.do(tusReq{Method: "POST", Token: testToken, Header: h, Meta: meta})
	if res.Status != http.StatusCreated {
		rg.t.Fatalf("create: status %d: %s", res.Status, res.Body)
	}
	return res.Header.Get("Location")
}

func (rg *rig) patch(url string, offset int, chunk []byte) *tusResp {
	rg.t.Helper()
	return rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: chunk,
		Header: map[string]string{"Upload-Offset": strconv.Itoa(offset)}})
}

func (rg *rig) offset(url string) int {
	rg.t.Helper()
	res := rg.do(tusReq{Method: "HEAD", URL: url, Token: testToken})
	if res.Status != http.StatusOK {
		rg.t.Fatalf("HEAD %s: status %d", url, res.Status)
	}
	n, err := strconv.Atoi(res.Header.Get("Upload-Offset"))
	if err != nil {
		rg.t.Fatalf("HEAD %s: Upload-Offset %q", url, res.Header.Get("Upload-Offset"))
	}
	return n
}

func idOf(url string) string { return url[strings.LastIndex(url, "/")+1:] }

// readBack reads an upload through Open, as delivery will.
func (rg *rig) readBack(id string) []byte {
	rg.t.Helper()
	b, err := rg.ing.Open(context.Background(), id)
	if err != nil {
		rg.t.Fatalf("Open %s: %v", id, err)
	}
	defer b.Close()
	out := make([]byte, b.Size())
	if _, err := b.ReadAt(out, 0); err != nil && !errors.Is(err, io.EOF) {
		rg.t.Fatalf("ReadAt %s: %v", id, err)
	}
	return out
}

// gapHashed is how many bytes the local-disk store hashed from disk rather than on arrival.
func gapHashed(i *Ingest) int64 { return i.store.(*concatstore.Store).Stats().GapBytesHashed }
