package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ferryhq/ferry/bench/internal/result"
)

// Expr is a figure of a benchmark: a metric, or the ratio of two metrics
// measured in the same repetition (Den set). A name starting with "~"
// matches the first metric whose name contains the rest (case-insensitive),
// for rows whose exact wording another branch may still change.
type Expr struct {
	Num, Den string
}

func (e Expr) String() string {
	if e.Den == "" {
		return strings.TrimPrefix(e.Num, "~")
	}
	return strings.TrimPrefix(e.Num, "~") + " / " + strings.TrimPrefix(e.Den, "~")
}

// Target is an issue's requirement on a figure.
type Target struct {
	Expr Expr
	Op   string // ">=" or "<="
	Want float64
	// Source says where the target comes from ("issue 12 §4").
	Source string
}

// Run is what one benchmark gave: its repetitions' outputs, or why it did
// not run.
type Run struct {
	Key   string
	Title string
	// Series names the run's rows on the charts (default Key): runs that
	// add points to the same lines share it.
	Series  string
	Command string
	Reps    []*result.File
	// Failed are the repetitions that did not finish, with their reason.
	Failed []string
	// NotRun is why the benchmark was not run at all ("" when it ran).
	NotRun  string
	Ratios  []Expr
	Targets []Target
}

// Stats are the median and range of one figure over repetitions.
type Stats struct {
	Median, Min, Max float64
	N                int
	Unit             string
}

func stats(vs []float64, unit string) Stats {
	if len(vs) == 0 {
		return Stats{Unit: unit}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s), Unit: unit}
}

// lookup finds a metric of one repetition by name (see Expr).
func lookup(f *result.File, name string) (result.Metric, bool) {
	if sub, ok := strings.CutPrefix(name, "~"); ok {
		sub = strings.ToLower(sub)
		for _, m := range f.Metrics {
			if strings.Contains(strings.ToLower(m.Name), sub) {
				return m, true
			}
		}
		return result.Metric{}, false
	}
	for _, m := range f.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return result.Metric{}, false
}

// eval computes e over the repetitions: a ratio is taken within each
// repetition (its contenders met the same machine state), then aggregated.
func eval(reps []*result.File, e Expr) (Stats, bool) {
	var vs []float64
	unit := "x"
	for _, f := range reps {
		n, ok := lookup(f, e.Num)
		if !ok {
			continue
		}
		if e.Den == "" {
			vs, unit = append(vs, n.Value), n.Unit
			continue
		}
		d, ok := lookup(f, e.Den)
		if !ok || d.Value == 0 {
			continue
		}
		vs = append(vs, n.Value/d.Value)
	}
	if len(vs) == 0 {
		return Stats{}, false
	}
	return stats(vs, unit), true
}

// Verdict is one target's outcome.
type Verdict struct {
	Run    *Run
	Target Target
	Stats  Stats
	// Evaluated is false when the figure was not measured (then Why says so).
	Evaluated, Met bool
	Why            string
}

// judge evaluates a target on the median of its figure.
func judge(r *Run, t Target) Verdict {
	v := Verdict{Run: r, Target: t}
	if r.NotRun != "" {
		v.Why = "not run: " + r.NotRun
		return v
	}
	s, ok := eval(r.Reps, t.Expr)
	if !ok {
		v.Why = "not measured: no " + t.Expr.String() + " in this run"
		return v
	}
	v.Stats, v.Evaluated = s, true
	switch t.Op {
	case ">=":
		v.Met = s.Median >= t.Want
	case "<=":
		v.Met = s.Median <= t.Want
	default:
		v.Why = "unknown operator " + t.Op
		v.Evaluated = false
	}
	return v
}

// Machine describes where the run was made.
type Machine struct {
	Cores    int
	CPU      string
	Flags    string
	Memory   string
	Disk     string
	Go       string
	Kernel   string
	Commit   string
	LoadAvg  string
	Started  string
	Duration string
	Quick    bool
	Note     string
}

// Charts are the SVG files the report links, relative to it.
type Charts struct {
	Streams, Delivery string
}

func fmtStats(s Stats) string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmt.Sprintf("%s %s", num(s.Median), s.Unit)
	}
	return fmt.Sprintf("%s %s (%s-%s)", num(s.Median), s.Unit, num(s.Min), num(s.Max))
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// metricNames lists the metrics of the repetitions in first-seen order.
func metricNames(reps []*result.File) []string {
	var names []string
	seen := map[string]bool{}
	for _, f := range reps {
		for _, m := range f.Metrics {
			if !seen[m.Name] {
				seen[m.Name] = true
				names = append(names, m.Name)
			}
		}
	}
	return names
}

// writeReport writes the Markdown report of runs.
func writeReport(w io.Writer, m Machine, runs []*Run, charts Charts) error {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p("# ferry benchmark report\n\n")
	if m.Note != "" {
		p("> %s\n\n", m.Note)
	}
	kind := "full run"
	if m.Quick {
		kind = "quick run (`-quick`: small sizes, one repetition; not a measurement of the targets)"
	}
	p("Made by `go run ./bench/run` on %s, a %s, in %s. Each benchmark ran once as a warm-up (discarded), then its repetitions; a figure is the median over repetitions with the min-max range in brackets, and a ratio is taken within each repetition (both sides measured in the same run) before the median.\n\n", m.Started, kind, m.Duration)
	p("## Machine\n\n| | |\n|---|---|\n")
	p("| ferry commit | %s |\n", cell(m.Commit))
	p("| cores | %d |\n| CPU | %s |\n| CPU flags | %s |\n| memory | %s |\n| disk | %s |\n| Go | %s |\n| kernel | %s |\n| load average at start | %s |\n\n",
		m.Cores, cell(m.CPU), cell(m.Flags), cell(m.Memory), cell(m.Disk), cell(m.Go), cell(m.Kernel), cell(m.LoadAvg))

	p("## Targets\n\n| benchmark | figure | target | measured | met |\n|---|---|---|---|---|\n")
	for _, r := range runs {
		for _, t := range r.Targets {
			v := judge(r, t)
			met := v.Why
			if v.Evaluated {
				met = map[bool]string{true: "**met**", false: "**NOT met**"}[v.Met]
			}
			p("| %s | %s | %s %s (%s) | %s | %s |\n", cell(r.Title), cell(t.Expr.String()), t.Op, num(t.Want), cell(t.Source), fmtStats(v.Stats), cell(met))
		}
	}
	p("\n## Charts\n\n")
	if charts.Streams != "" {
		p("![throughput against streams](%s)\n\n", charts.Streams)
	}
	if charts.Delivery != "" {
		p("![delivery time against file count](%s)\n\n", charts.Delivery)
	}
	if charts.Streams == "" && charts.Delivery == "" {
		p("No figure to chart in this run.\n\n")
	}
	p("## Benchmarks\n\n")
	for _, r := range runs {
		p("### %s\n\n", r.Title)
		if r.NotRun != "" {
			p("not run: %s\n\n", r.NotRun)
			continue
		}
		p("`%s`, %d repetition(s)", r.Command, len(r.Reps))
		if len(r.Failed) > 0 {
			p(", %d failed", len(r.Failed))
		}
		p("\n\n")
		for _, f := range r.Failed {
			p("- failed: %s\n", cell(f))
		}
		if len(r.Failed) > 0 {
			p("\n")
		}
		if len(r.Reps) == 0 {
			continue
		}
		p("| figure | median (min-max) |\n|---|---|\n")
		for _, name := range metricNames(r.Reps) {
			s, _ := eval(r.Reps, Expr{Num: name})
			p("| %s | %s |\n", cell(name), fmtStats(s))
		}
		for _, e := range r.Ratios {
			if s, ok := eval(r.Reps, e); ok {
				p("| ratio %s | %s |\n", cell(e.String()), fmtStats(s))
			} else {
				p("| ratio %s | not measured |\n", cell(e.String()))
			}
		}
		var notes []string
		for _, f := range r.Reps {
			for _, n := range f.Notes {
				if !slices.Contains(notes, n) {
					notes = append(notes, n)
				}
			}
		}
		p("\n")
		for _, n := range notes {
			p("- %s\n", cell(n))
		}
		if len(notes) > 0 {
			p("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Point is one chart point: a median over repetitions.
type Point struct{ X, Y float64 }

// Series is a named line of a chart.
type Series struct {
	Name   string
	Points []Point
}

// streamSeries gathers the throughput figures placed by streams: one series
// per benchmark and link ("transfer wan"), ferry's rows joined as a line,
// each reference its own point.
func streamSeries(runs []*Run) []Series {
	return collect(runs, func(m result.Metric) (float64, bool) {
		return float64(m.Streams), m.Streams > 0 && m.Unit == "MB/s"
	}, func(series string, m result.Metric) string {
		link, row, ok := strings.Cut(m.Name, "/")
		if !ok {
			row, link = link, ""
		}
		if strings.HasPrefix(row, "ferry") {
			row = "ferry"
		}
		return strings.TrimSpace(series + " " + strings.ToLower(link) + ": " + row)
	})
}

// deliverySeries gathers the delivery times placed by file count.
func deliverySeries(runs []*Run) []Series {
	return collect(runs, func(m result.Metric) (float64, bool) {
		return float64(m.Files), m.Files > 0 && m.Unit == "s"
	}, func(_ string, m result.Metric) string { return m.Name })
}

// collect medians every metric that has an x (by series and x) across all
// runs and repetitions.
func collect(runs []*Run, x func(result.Metric) (float64, bool), series func(runSeries string, m result.Metric) string) []Series {
	vals := map[string]map[float64][]float64{}
	var order []string
	for _, r := range runs {
		rs := cmp.Or(r.Series, r.Key)
		for _, f := range r.Reps {
			for _, m := range f.Metrics {
				xv, ok := x(m)
				if !ok {
					continue
				}
				name := series(rs, m)
				if vals[name] == nil {
					vals[name] = map[float64][]float64{}
					order = append(order, name)
				}
				vals[name][xv] = append(vals[name][xv], m.Value)
			}
		}
	}
	var out []Series
	for _, name := range order {
		s := Series{Name: name}
		for xv, ys := range vals[name] {
			s.Points = append(s.Points, Point{X: xv, Y: stats(ys, "").Median})
		}
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].X < s.Points[j].X })
		out = append(out, s)
	}
	return out
}
