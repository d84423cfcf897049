package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// BenchmarkUpload1GiB sends 1 GiB over loopback HTTP/1.1 (FERRY_BENCH_BYTES overrides the size) to:
//   - ref-1: a plain Go server doing io.Copy of the body into a file (the reference);
//   - ref-4: the same reference with 4 concurrent bodies of a quarter each;
//   - refsha-1: the reference also hashing with SHA-256 inline (the floor for any hashing receiver);
//   - ingest-1: ingest, one tus stream (hashing on arrival);
//   - ingest-4: ingest, 4 partial uploads + concatenation (each partial hashed on arrival);
//   - stock-4: tusd's stock filestore, 4 partials + concatenation (copies every partial).
//
// It reports MiB/s of each, ratios to ref-1, and the process RSS growth while ingest receives.
// Run: go test -run '^$' -bench Upload1GiB -benchtime 1x ./internal/ingest/
func BenchmarkUpload1GiB(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv("FERRY_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("FERRY_BENCH_BYTES: %v", err)
		}
		size = n
	}
	block := make([]byte, 4<<20)
	_, _ = rand.Read(block)
	client := &http.Client{Transport: &http.Transport{WriteBufferSize: 256 << 10, MaxIdleConnsPerHost: 8}}
	silent := slog.New(slog.NewTextHandler(io.Discard, nil))

	refDir := b.TempDir()
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(filepath.Join(refDir, strings.Trim(r.URL.Path, "/")))
		if err == nil {
			var w io.Writer = f
			if r.URL.Query().Has("sha256") { // the least any hashing receiver must do
				w = io.MultiWriter(f, sha256.New())
			}
			_, err = io.Copy(w, r.Body)
			f.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer ref.Close()

	ingDir := b.TempDir()
	ing, err := New(Config{Dir: ingDir, NoSync: true, Logger: silent}, nopGate{})
	if err != nil {
		b.Fatal(err)
	}
	ingSrv := httptest.NewServer(ing.Handler())
	defer ingSrv.Close()

	stockDir := b.TempDir()
	composer := handler.NewStoreComposer()
	filestore.New(stockDir).UseIn(composer)
	memorylocker.New().UseIn(composer)
	stock, err := handler.NewHandler(handler.Config{StoreComposer: composer, BasePath: "/uploads/", Logger: newTusdLogger(silent)})
	if err != nil {
		b.Fatal(err)
	}
	stockSrv := httptest.NewServer(http.StripPrefix("/uploads", stock))
	defer stockSrv.Close()

	type variant struct {
		name string
		run  func() error
		dir  string
		rss  bool
	}
	variants := []variant{
		{"ref-1", func() error { return refUpload(client, ref.URL, size, 1, block) }, refDir, false},
		{"ref-4", func() error { return refUpload(client, ref.URL, size, 4, block) }, refDir, false},
		{"refsha-1", func() error { return refUpload(client, ref.URL+"/sha", size, 1, block) }, refDir, false},
		{"ingest-1", func() error { return tusUpload(client, ingSrv.URL+"/uploads/", size, 1, block) }, ingDir, true},
		{"ingest-4", func() error { return tusUpload(client, ingSrv.URL+"/uploads/", size, 4, block) }, ingDir, true},
		{"stock-4", func() error { return tusUpload(client, stockSrv.URL+"/uploads/", size, 4, block) }, stockDir, false},
	}
	elapsed := make(map[string][]time.Duration) // per iteration; variants interleave in each
	var rssGrowth int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, v := range variants {
			clearDir(b, v.dir)
			var stop func() int64
			if v.rss {
				stop = sampleRSS()
			}
			start := time.Now()
			if err := v.run(); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			elapsed[v.name] = append(elapsed[v.name], time.Since(start))
			if stop != nil {
				rssGrowth = max(rssGrowth, stop())
			}
			clearDir(b, v.dir)
		}
	}
	b.StopTimer()
	// Medians, and ratios taken within one iteration, so a noisy neighbour on a shared machine
	// skews one sample rather than the figure.
	rate := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	for _, v := range variants {
		var rates, ratios []float64
		for i, d := range elapsed[v.name] {
			rates = append(rates, rate(d))
			ratios = append(ratios, rate(d)/rate(elapsed["ref-1"][i]))
		}
		b.ReportMetric(median(rates), v.name+"-MiB/s")
		if v.name != "ref-1" {
			b.ReportMetric(median(ratios), v.name+"/ref-1")
		}
	}
	b.ReportMetric(float64(rssGrowth)/(1<<20), "ingest-rss-growth-MiB")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type nopGate struct{}

func (nopGate) Admit(context.Context, Upload) (Admission, error)  { return Admission{}, nil }
func (nopGate) Complete(context.Context, Upload, Checksums) error { return nil }
func (nopGate) Failed(context.Context, Upload, string) error      { return nil }
func (nopGate) Removed(context.Context, Upload) error             { return nil }
func clearDir(b *testing.B, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader streams a random block over and over, so the client holds no big buffer.
type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}

func body(block []byte, n int64) io.Reader { return io.LimitReader(&repeatReader{block: block}, n) }

// split runs f over n nearly equal slices of size concurrently.
func split(size int64, n int, f func(i int, part int64) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		part := size / int64(n)
		if i == n-1 {
			part = size - part*int64(n-1)
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i, part) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func send(c *http.Client, method, url string, h map[string]string, r io.Reader, n int64, want int) (*http.Response, error) {
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	req.ContentLength = n
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	msg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, bytes.TrimSpace(msg))
	}
	return res, nil
}

func refUpload(c *http.Client, base string, size int64, streams int, block []byte) error {
	return split(size, streams, func(i int, part int64) error {
		u := base + "/ref-" + strconv.Itoa(i)
		if strings.HasSuffix(base, "/sha") {
			u = strings.TrimSuffix(base, "/sha") + "/ref-sha-" + strconv.Itoa(i) + "?sha256"
		}
		_, err := send(c, "PUT", u, nil, body(block, part), part, http.StatusCreated)
		return err
	})
}

func tusUpload(c *http.Client, endpoint string, size int64, streams int, block []byte) error {
	tus := func(extra map[string]string) map[string]string {
		h := map[string]string{"Tus-Resumable": "1.0.0", "Authorization": "Bearer bench", "Upload-Metadata": "package_token YmVuY2g="}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	one := func(part int64, concat string) (string, error) {
		h := map[string]string{"Upload-Length": strconv.FormatInt(part, 10)}
		if concat != "" {
			h["Upload-Concat"] = concat
		}
		res, err := send(c, "POST", endpoint, tus(h), nil, 0, http.StatusCreated)
		if err != nil {
			return "", err
		}
		loc := res.Header.Get("Location")
		_, err = send(c, "PATCH", loc, tus(map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}),
			body(block, part), part, http.StatusNoContent)
		return loc, err
	}
	if streams == 1 {
		_, err := one(size, "")
		return err
	}
	locs := make([]string, streams)
	if err := split(size, streams, func(i int, part int64) error {
		var err error
		locs[i], err = one(part, "partial")
		return err
	}); err != nil {
		return err
	}
	_, err := send(c, "POST", endpoint, tus(map[string]string{"Upload-Concat": "final;" + strings.Join(locs, " ")}), nil, 0, http.StatusCreated)
	return err
}

// sampleRSS watches the process's resident set until the returned stop function is called,
// which reports the largest growth over the RSS at start.
func sampleRSS() (stop func() int64) {
	base := rss()
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return max(0, peak.Load()-base)
	}
}

// rss reads the resident set size from /proc/self/statm (Linux); 0 elsewhere.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
