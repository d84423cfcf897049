package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	benchresult "github.com/ferryhq/ferry/bench/internal/result"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/portal"
)

// snapshots turns the emulator's save-after-every-change back on. It is off
// because each save encodes the whole tenant under the emulator's lock: with
// a thousand files that took one of the machine's two cores and held every
// emulated call behind it, so the run measured the emulator, not ferry against
// iconik's modelled rate limit and latency.
var snapshots = flag.Bool("emulator-snapshots", false, "let the emulator save its whole state after every change, as crash tests need (slows the emulator, not ferry)")

func main() {
	files := flag.Int("files", 1000, "files in the throughput run")
	size := flag.Int("size", 1024, "bytes per file in the throughput run")
	rateLimit := flag.Float64("rate-limit", 45, "emulator (and client) requests per second per App-ID")
	latency := flag.Duration("latency", 50*time.Millisecond, "emulator latency per API call")
	workers := flag.Int("workers", 16, "delivery workers (files at once)")
	pipeFiles := flag.Int("pipeline-files", 100, "files in the pipelining run")
	pipeEvery := flag.Duration("pipeline-every", 200*time.Millisecond, "time between two files completing in the pipelining run (the upload's pace)")
	jsonPath := flag.String("json", "", "also write the figures to this file as JSON (bench/internal/result), for bench/run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the throughput run to this file")
	flag.Parse()
	out := benchresult.New("delivery")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ctx := context.Background()

	fmt.Printf("throughput: %d files of %d B, emulator --rate-limit %g --latency %s, %d workers\n", *files, *size, *rateLimit, *latency, *workers)
	r, err := run(ctx, emulator.Faults{RateLimit: *rateLimit, Latency: *latency}, *rateLimit, *workers, *files, *size, 0)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughput run:", err)
		os.Exit(1)
	}
	b := rateBound(r.calls, *rateLimit)
	fmt.Printf("  total %s, iconik calls %d (%.2f per file, target <= 7.5; 429s %d; %d of them batch calls for %d files), bound calls/%g = %s, total/bound = %.3f (target <= 1.05)\n",
		r.total.Round(time.Millisecond), r.calls, float64(r.calls)/float64(*files), r.tooMany, r.batchCalls, r.batchedFiles, *rateLimit, b.Round(time.Millisecond),
		float64(r.total)/float64(b))
	printRoutes(r.routes, *files)
	out.Add(benchresult.Metric{Name: "throughput/total", Value: r.total.Seconds(), Unit: "s", Files: *files})
	out.Add(benchresult.Metric{Name: "throughput/bound", Value: b.Seconds(), Unit: "s", Files: *files})
	out.Add(benchresult.Metric{Name: "throughput/calls per file", Value: float64(r.calls) / float64(*files), Unit: "calls/file"})

	fmt.Printf("pipelining: %d files completing every %s, no faults (client limit %g/s)\n", *pipeFiles, *pipeEvery, *rateLimit)
	p, err := run(ctx, emulator.Faults{}, *rateLimit, *workers, *pipeFiles, *size, *pipeEvery)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipelining run:", err)
		os.Exit(1)
	}
	fmt.Printf("  upload span %s, delivered %s after the last byte (target <= 2s), iconik calls %d\n",
		p.uploadSpan.Round(time.Millisecond), p.afterLast.Round(time.Millisecond), p.calls)
	printRoutes(p.routes, *pipeFiles)
	out.Add(benchresult.Metric{Name: "pipelining/after last byte", Value: p.afterLast.Seconds(), Unit: "s", Files: *pipeFiles})
	if err := out.Write(*jsonPath); err != nil {
		fmt.Fprintln(os.Stderr, "write -json:", err)
		os.Exit(1)
	}
}

// rateBound is the least time calls take under iconik's per-App-ID limit
// of rate requests per second. iconik's limit counts requests, not the
// assets a request names, so a batch call (bulk keyframes for up to 500
// assets, batch metadata for a package's files) weighs one call like any
// other: batching lowers the bound itself, and total/bound measures how
// close the delivery stays to the limit while files wait for their batch.
// The first call is free (the limiter starts with a full bucket of one).
func rateBound(calls int64, rate float64) time.Duration {
	return time.Duration(float64(max(calls-1, 0)) / rate * float64(time.Second))
}

type result struct {
	total, uploadSpan, afterLast time.Duration
	calls, tooMany               int64
	batchCalls, batchedFiles     int64
	routes                       map[string]int64
}

type blob struct {
	*os.File
	size int64
}

func (b blob) Size() int64 { return b.size }

type conns struct {
	cl *iconik.Client
	c  delivery.Connection
}

func (c conns) Client(context.Context, string) (*iconik.Client, delivery.Connection, error) {
	return c.cl, c.c, nil
}

func run(ctx context.Context, faults emulator.Faults, clientRate float64, workers, n, size int, every time.Duration) (*result, error) {
	dir, err := os.MkdirTemp("", "ferry-bench-delivery-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	emu, err := emulator.New(emulator.Options{DataDir: filepath.Join(dir, "iconik"), Faults: faults, Logger: quiet, Volatile: !*snapshots})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	var calls, tooMany, batchCalls, batchedFiles atomic.Int64
	var routesMu sync.Mutex
	routes := map[string]int64{}
	count := emu.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/API/") {
			calls.Add(1)
			if n := batchSize(r); n > 0 {
				batchCalls.Add(1)
				batchedFiles.Add(int64(n))
			}
			routesMu.Lock()
			routes[r.Method+" "+idPattern.ReplaceAllString(r.URL.Path, "{id}")]++
			routesMu.Unlock()
			cw := &codeWriter{ResponseWriter: w}
			count.ServeHTTP(cw, r)
			if cw.code == http.StatusTooManyRequests {
				tooMany.Add(1)
			}
			return
		}
		count.ServeHTTP(w, r)
	}))
	defer srv.Close()
	emu.SetBaseURL(srv.URL)
	var cred emulator.Credential
	for _, c := range emu.Credentials() {
		if c.Name == "admin" {
			cred = c
		}
	}
	// A fresh App-ID per run would be better; the emulator's seed makes one
	// per data directory, so each run has its own limiter anyway.
	cl, err := iconik.New(iconik.Options{BaseURL: srv.URL, AppID: cred.AppID, Token: cred.Token, RateLimit: clientRate, Logger: quiet})
	if err != nil {
		return nil, err
	}
	var conn delivery.Connection
	for st, err := range cl.StorageList(ctx, iconik.StorageListParams{Purpose: "FILES", Method: "S3"}) {
		if err != nil {
			return nil, err
		}
		conn = delivery.Connection{ID: "bench", StorageID: st.ID, StorageMethod: st.Method}
	}
	if _, err := cl.MetadataFieldCreate(ctx, iconik.MetadataFieldCreateParams{Name: "description", Label: "Description", FieldType: "text"}); err != nil {
		return nil, err
	}
	v, err := cl.MetadataViewCreate(ctx, iconik.MetadataViewCreateParams{Name: "ferry", ViewFields: []iconik.MetadataViewField{{Name: "description"}}})
	if err != nil {
		return nil, err
	}
	conn.MetadataViewID = v.ID
	calls.Store(0) // setup calls are not delivery calls
	batchCalls.Store(0)
	batchedFiles.Store(0)
	routesMu.Lock()
	clear(routes)
	routesMu.Unlock()

	store, err := db.Open(ctx, filepath.Join(dir, "ferry.db"), db.Options{Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	blobs := filepath.Join(dir, "blobs")
	os.MkdirAll(blobs, 0o700)
	done := make(chan struct{}, 1)
	svc, err := delivery.New(ctx, delivery.Options{DB: store, Connections: conns{cl, conn}, Workers: workers, PerDelivery: workers,
		Blobs: delivery.BlobsFunc(func(_ context.Context, id string) (delivery.Blob, error) {
			f, err := os.Open(filepath.Join(blobs, id))
			if err != nil {
				return nil, err
			}
			st, _ := f.Stat()
			return blob{f, st.Size()}, nil
		}),
		Logger:    quiet,
		OnSettled: func(context.Context, delivery.Event) error { done <- struct{}{}; return nil },
	})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	defer svc.Stop(ctx, 10*time.Second)

	ps := portal.New(store, portal.Options{})
	if _, err := ps.CreatePortal(ctx, portal.PortalInput{Name: "Bench", Slug: "bench", Active: true, ConnectionIDs: []string{"bench"}}); err != nil {
		return nil, err
	}
	pkg, tok, err := ps.CreatePackage(ctx, portal.NewPackage{PortalSlug: "bench", Name: "Bench", SenderEmail: "b@example.com"})
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	for i := range n {
		p := fmt.Sprintf("folder %d/sub %d/file-%04d.bin", i%10, i%7, i)
		copy(data, fmt.Sprintf("file %d ", i))
		sum := sha256.Sum256(data)
		up := fmt.Sprintf("up-%d", i)
		if _, err := ps.Admit(ctx, portal.Upload{Token: tok, RelativePath: p, Filename: filepath.Base(p), Size: int64(size), SHA256: fmt.Sprintf("%x", sum), UploadID: up}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(blobs, up), data, 0o600); err != nil {
			return nil, err
		}
	}
	files, err := store.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: pkg.ID})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var last time.Time
	for i, f := range files {
		if i > 0 && every > 0 {
			time.Sleep(every)
		}
		sum := sha256.New()
		b, _ := os.ReadFile(filepath.Join(blobs, f.UploadID))
		sum.Write(b)
		if _, err := ps.CompleteFile(ctx, portal.Completion{FileRef: portal.FileRef{FileID: f.ID, UploadID: f.UploadID}, Size: int64(len(b)), SHA256: sum.Sum(nil)}, svc.OnComplete); err != nil {
			return nil, err
		}
		last = time.Now()
	}
	if _, err := ps.Finalize(ctx, pkg.ID, svc.OnFinalize); err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
		return nil, fmt.Errorf("delivery did not settle")
	}
	end := time.Now()
	ds, err := store.DeliveryListByPackage(ctx, &db.DeliveryListByPackageParams{PackageID: pkg.ID})
	if err != nil {
		return nil, err
	}
	if len(ds) != 1 || ds[0].State != db.DeliveryDelivered {
		return nil, fmt.Errorf("delivery ended %v", ds)
	}
	routesMu.Lock()
	defer routesMu.Unlock()
	return &result{total: end.Sub(start), uploadSpan: last.Sub(start), afterLast: end.Sub(last), calls: calls.Load(), tooMany: tooMany.Load(),
		batchCalls: batchCalls.Load(), batchedFiles: batchedFiles.Load(), routes: maps.Clone(routes)}, nil
}

// idPattern folds ids out of API paths so calls can be counted by route.
var idPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// printRoutes prints the calls by route, most first, per file.
func printRoutes(routes map[string]int64, files int) {
	keys := slices.Collect(maps.Keys(routes))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(routes[b], routes[a]) })
	for _, k := range keys {
		fmt.Printf("    %6d  %5.2f/file  %s\n", routes[k], float64(routes[k])/float64(files), k)
	}
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (c *codeWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// batchSize is how many assets a batch call (bulk keyframes, batch
// metadata) names, 0 for any other call. It reads the body and puts it back.
func batchSize(r *http.Request) int {
	bulk := r.Method == http.MethodPost && r.URL.Path == "/API/files/v1/assets/bulk/keyframes/"
	batch := r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/API/metadata/v1/assets/views/")
	if !bulk && !batch {
		return 0
	}
	raw, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	var body struct {
		ObjectIDs []string `json:"object_ids"`
	}
	_ = json.Unmarshal(raw, &body)
	return len(body.ObjectIDs)
}
