package send

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send/sendtest"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/vbauerster/mpb/v8"
)

// parseRate reads a speed as the bars print it ("82.0 MiB/s").
func parseRate(t *testing.T, s string) float64 {
	t.Helper()
	f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if len(f) != 2 {
		t.Fatalf("speed %q is not \"N unit/s\"", s)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("speed %q: %v", s, err)
	}
	mult := map[string]float64{"b": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[f[1]]
	if mult == 0 {
		t.Fatalf("speed %q: unknown unit", s)
	}
	return v * mult
}

// TestTotalSpeedAndETAFollowTheBytesSent feeds the total line what a real
// upload of several files looks like to it: steady streams at 82 MiB/s, and
// between files a pause (create, HEAD, hashing the next part) after which the
// first callback carries only a few KiB. The printed speed must stay near the
// bytes sent over the time taken, and the time left near what is left at
// that speed.
func TestTotalSpeedAndETAFollowTheBytesSent(t *testing.T) {
	clock := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	// Drawn as on a terminal, though to nowhere.
	b := newBars(io.Discard, mpb.WithAutoRefresh())
	b.now = func() time.Time { return clock }
	defer b.Close()
	const total = 100 << 30
	b.Total(total, 0)
	b.FileStart("a.mov", total)

	const rate = 82 << 20 // bytes per second while streaming
	step := 50 * time.Millisecond
	var sent int64
	start := clock
	for i := 0; i < 400; i++ { // 20 s of streaming
		if i%40 == 0 { // every 2 s: half a second of nothing, then a small first read
			clock = clock.Add(500 * time.Millisecond)
			b.Add("a.mov", 4<<10)
			sent += 4 << 10
		}
		clock = clock.Add(step)
		n := int64(rate * step.Seconds())
		b.Add("a.mov", n)
		sent += n
	}
	truth := float64(sent) / clock.Sub(start).Seconds()
	speedText, etaText := b.totalText()
	got := parseRate(t, speedText)
	if got < truth/2 || got > truth*2 {
		t.Errorf("total speed prints %q (%.1f MiB/s); bytes over time were %.1f MiB/s", speedText, got/(1<<20), truth/(1<<20))
	}
	eta, err := time.ParseDuration(etaText)
	if err != nil {
		t.Fatalf("ETA %q: %v", etaText, err)
	}
	wantETA := time.Duration(float64(total-sent) / truth * float64(time.Second))
	if eta < wantETA/2 || eta > wantETA*2 {
		t.Errorf("total ETA prints %q; what is left at the real speed takes %s", etaText, wantETA.Round(time.Second))
	}
}

var totalSpeedRE = regexp.MustCompile(`total .*?([0-9.]+ (?:b|KiB|MiB|GiB)/s)`)

// TestPrintedTotalSpeedIsNearBytesOverElapsedTime sends several files to a
// throttled server with the bars drawn, and checks the last speed the total
// line printed against what the server received over the time it took.
func TestPrintedTotalSpeedIsNearBytesOverElapsedTime(t *testing.T) {
	srv := sendtest.Start(t)
	srv.Throttle(1 << 20) // per connection
	dir := t.TempDir()
	for i := range 8 {
		b := make([]byte, 1<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("clip%d.mov", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target, err := ParseTarget(srv.URL+"/p/demo", "")
	if err != nil {
		t.Fatal(err)
	}
	var out testbed.Buffer
	bars := newBars(&out, mpb.WithAutoRefresh())
	start := time.Now()
	if _, err := Send(context.Background(), Options{Target: target, Paths: []string{dir}, Streams: 2, StateDir: t.TempDir(), Progress: bars}); err != nil {
		t.Fatal(err)
	}
	truth := float64(srv.Received()) / time.Since(start).Seconds()
	m := totalSpeedRE.FindAllStringSubmatch(out.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no total speed was drawn:\n%q", out.String())
	}
	last := m[len(m)-1][1]
	got := parseRate(t, last)
	if got < truth/3 || got > truth*3 {
		t.Errorf("the total line last printed %s; the server received %.2f MiB/s over the run", last, truth/(1<<20))
	}
}
