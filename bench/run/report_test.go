package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/bench/internal/result"
)

func file(bench string, ms ...result.Metric) *result.File {
	return &result.File{Bench: bench, Metrics: ms}
}

func TestStatsAreMedianAndRange(t *testing.T) {
	cases := []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 10}, 3.5, 1, 10},
	}
	for _, c := range cases {
		s := stats(c.in, "s")
		if s.Median != c.med || s.Min != c.lo || s.Max != c.hi || s.N != len(c.in) {
			t.Errorf("stats(%v) = %+v, want median %v range %v-%v", c.in, s, c.med, c.lo, c.hi)
		}
	}
}

// A ratio is taken within each repetition, then the median: the median of
// the ratios, not the ratio of the medians.
func TestRatiosArePairedWithinARepetition(t *testing.T) {
	reps := []*result.File{
		file("t", result.Metric{Name: "a", Value: 10, Unit: "MB/s"}, result.Metric{Name: "b", Value: 10, Unit: "MB/s"}),
		file("t", result.Metric{Name: "a", Value: 40, Unit: "MB/s"}, result.Metric{Name: "b", Value: 5, Unit: "MB/s"}),
		file("t", result.Metric{Name: "a", Value: 20, Unit: "MB/s"}, result.Metric{Name: "b", Value: 40, Unit: "MB/s"}),
	}
	s, ok := eval(reps, Expr{"a", "b"})
	if !ok || s.Median != 1 || s.Min != 0.5 || s.Max != 8 || s.Unit != "x" {
		t.Fatalf("ratio a/b = %+v %v, want median 1 (ratios 1, 8, 0.5), range 0.5-8", s, ok)
	}
	// By substring, as for rows another branch names.
	if s, ok := eval(reps, Expr{"~A", "b"}); !ok || s.Median != 1 {
		t.Fatalf("~A / b = %+v %v, want the same as a / b", s, ok)
	}
}

func TestTargetsAreJudgedOnTheMedian(t *testing.T) {
	run := &Run{Reps: []*result.File{
		file("t", result.Metric{Name: "ferry", Value: 120}, result.Metric{Name: "one", Value: 20}, result.Metric{Name: "rss", Value: 30}),
		file("t", result.Metric{Name: "ferry", Value: 100}, result.Metric{Name: "one", Value: 20}, result.Metric{Name: "rss", Value: 70}),
		file("t", result.Metric{Name: "ferry", Value: 140}, result.Metric{Name: "one", Value: 20}, result.Metric{Name: "rss", Value: 60}),
	}}
	cases := []struct {
		name      string
		target    Target
		evaluated bool
		met       bool
	}{
		{"ratio met", Target{Expr{"ferry", "one"}, ">=", 6, ""}, true, true},
		{"ratio not met", Target{Expr{"ferry", "one"}, ">=", 6.5, ""}, true, false},
		{"upper bound met on the median though one rep is above", Target{Expr{Num: "rss"}, "<=", 64, ""}, true, true},
		{"upper bound not met", Target{Expr{Num: "rss"}, "<=", 50, ""}, true, false},
		{"missing figure", Target{Expr{"ferry", "rclone"}, ">=", 1.5, ""}, false, false},
	}
	for _, c := range cases {
		v := judge(run, c.target)
		if v.Evaluated != c.evaluated || v.Met != c.met {
			t.Errorf("%s: evaluated %v met %v (%s), want %v %v", c.name, v.Evaluated, v.Met, v.Why, c.evaluated, c.met)
		}
	}
	if v := judge(&Run{NotRun: "bench/scale is not in this tree"}, Target{Expr{Num: "x"}, ">=", 1, ""}); v.Evaluated || !strings.Contains(v.Why, "not run: bench/scale") {
		t.Errorf("a benchmark not run: %+v", v)
	}
}

func TestReportHasFiguresTargetsAndCharts(t *testing.T) {
	runs := []*Run{
		{Key: "transfer-wan", Title: "Delivery over a WAN", Command: "bench/transfer -links wan",
			Reps: []*result.File{
				file("transfer", result.Metric{Name: "wan/ferry s3", Value: 130, Unit: "MB/s", Streams: 8}, result.Metric{Name: "wan/one stream (presigned PUT)", Value: 20, Unit: "MB/s", Streams: 1}),
				file("transfer", result.Metric{Name: "wan/ferry s3", Value: 110, Unit: "MB/s", Streams: 8}, result.Metric{Name: "wan/one stream (presigned PUT)", Value: 20, Unit: "MB/s", Streams: 1}),
			},
			Ratios:  []Expr{{"wan/ferry s3", "wan/one stream (presigned PUT)"}},
			Targets: []Target{{Expr{"wan/ferry s3", "wan/one stream (presigned PUT)"}, ">=", 6, "issue 12 §4"}},
		},
		{Key: "delivery", Title: "Delivery into iconik", Command: "bench/delivery",
			Reps: []*result.File{file("delivery",
				result.Metric{Name: "throughput/total", Value: 30, Unit: "s", Files: 100},
				result.Metric{Name: "throughput/bound", Value: 29, Unit: "s", Files: 100})},
			Targets: []Target{{Expr{Num: "pipelining/after last byte"}, "<=", 2, "issue 12 §3"}},
		},
		{Key: "delivery-300", Title: "Delivery, 300 files",
			Reps: []*result.File{file("delivery",
				result.Metric{Name: "throughput/total", Value: 90, Unit: "s", Files: 300},
				result.Metric{Name: "throughput/bound", Value: 88, Unit: "s", Files: 300})},
		},
		{Key: "ingest-pinned", Title: "Ingest pinned", NotRun: "bench/ingest has no -pin flag",
			Targets: []Target{{Expr{"a", "b"}, ">=", 0.9, "issue 12 §1"}}},
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "report.md")
	if err := write(out, Machine{Cores: 2, Go: "go1.26", Quick: true, Note: "quick run on a busy machine"}, runs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"> quick run on a busy machine",
		"| cores | 2 |",
		"| Delivery over a WAN | wan/ferry s3 / wan/one stream (presigned PUT) | >= 6.00 (issue 12 §4) | 6.00 x (5.50-6.50) | **met** |",
		"| wan/ferry s3 | 120 MB/s (110-130) |",
		"| Delivery into iconik | pipelining/after last byte | <= 2.00 (issue 12 §3) | - | not measured: no pipelining/after last byte in this run |",
		"| Ingest pinned | a / b | >= 0.90 (issue 12 §1) | - | not run: bench/ingest has no -pin flag |",
		"![throughput against streams](report-streams.svg)",
		"![delivery time against file count](report-delivery.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, svg := range []string{"report-streams.svg", "report-delivery.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, svg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("</svg>")) {
			t.Errorf("%s is not an SVG document: %.200s", svg, b)
		}
	}
	// ferry's rows are one line; a sweep run sharing the Series joins it.
	runs = append(runs, &Run{Key: "transfer-wan-streams", Series: "transfer-wan", Reps: []*result.File{
		file("transfer", result.Metric{Name: "wan/ferry s3 2 x 32.0 MiB", Value: 40, Unit: "MB/s", Streams: 2})}})
	streams := streamSeries(runs)
	if len(streams) != 2 || streams[0].Name != "transfer-wan wan: ferry" || len(streams[0].Points) != 2 ||
		streams[0].Points[0] != (Point{2, 40}) || streams[0].Points[1] != (Point{8, 120}) {
		t.Errorf("streams series = %+v", streams)
	}
	// The delivery chart has one line per figure, each through both file counts.
	series := deliverySeries(runs)
	if len(series) != 2 || series[0].Name != "throughput/total" || len(series[0].Points) != 2 || series[0].Points[1] != (Point{300, 90}) {
		t.Errorf("delivery series = %+v", series)
	}
}

func TestFlagNamesReadsTheFlagsOfArguments(t *testing.T) {
	got := strings.Join(flagNames([]string{"-pin", "-size", "268435456", "-wan=false", "--rounds", "1", "-1"}), ",")
	if got != "pin,size,wan,rounds" {
		t.Errorf("flagNames = %s", got)
	}
}
