package iconik_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// BenchmarkFileControlPlane runs one file's control-plane sequence (CONTRACT.md §4 steps 3-13
// without the bytes: asset, format, file set, file, job, progress, close, contents add,
// keyframes, metadata, job finish) against the emulator. Reference: one raw net/http GET of
// the current user in the same run; x_raw_call is the client's time per call over it.
func BenchmarkFileControlPlane(b *testing.B) {
	e := emulatortest.Start(b, emulator.Options{})
	cr := e.Cred("admin")
	ctx := context.Background()

	// The reference is timed by hand: testing.Benchmark cannot run inside a benchmark.
	const refCalls = 200
	refStart := time.Now()
	for range refCalls {
		req, _ := http.NewRequest("GET", e.URL+"/API/users/v1/users/current/", nil)
		req.Header.Set("App-ID", cr.AppID)
		req.Header.Set("Auth-Token", cr.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	refNs := float64(time.Since(refStart).Nanoseconds()) / refCalls

	cnt := &counter{base: http.DefaultTransport}
	c, err := iconik.New(iconik.Options{BaseURL: e.URL, AppID: cr.AppID, Token: cr.Token, Transport: cnt, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	d := connect(b, ctx, c, "s3")
	d.resolvePackage(b, ctx, "Portal Downloads", "Bench", "pkg")
	noUpload := func(*iconik.File) error { return nil }
	data := make([]byte, 1024)
	cnt.calls.Store(0)
	i := 0
	for b.Loop() {
		i++
		d.deliverFile(b, ctx, "pkg", fmt.Sprintf("f%d.bin", i), "application/octet-stream", data, noUpload)
	}
	calls := float64(cnt.calls.Load()) / float64(b.N)
	perCall := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / calls
	b.ReportMetric(calls, "calls/op")
	b.ReportMetric(perCall, "ns/call")
	b.ReportMetric(refNs, "ref_raw_ns/call")
	b.ReportMetric(perCall/refNs, "x_raw_call")
}
