package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/bench/internal/result"
)

func main() {
	log.SetFlags(0)
	var (
		quick   = flag.Bool("quick", false, "small sizes, one repetition (about 5 minutes): proves every benchmark runs, measures nothing")
		out     = flag.String("out", "bench/report.md", "the report to write (its SVG charts go next to it)")
		only    = flag.String("only", "", "comma list of benchmark keys to run (default: all); -list shows them")
		list    = flag.Bool("list", false, "list the benchmarks and exit")
		reps    = flag.Int("reps", 0, "measured repetitions of every benchmark (default: each benchmark's own, 1 with -quick)")
		warmup  = flag.Bool("warmup", true, "run each benchmark once at a small size first, discarded")
		timeout = flag.Duration("timeout", 20*time.Minute, "limit for one run of one benchmark")
		logs    = flag.String("logs", "", "directory for each run's output (default: a new temp dir, kept)")
		note    = flag.String("note", "", "a sentence to put at the top of the report (e.g. where and how it was run)")
		verbose = flag.Bool("v", false, "also copy every benchmark's output to stderr")
	)
	flag.Parse()
	if *list {
		for _, b := range benches {
			fmt.Printf("%-22s %s\n", b.Key, b.Title)
		}
		return
	}
	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.Chdir(root); err != nil {
		log.Fatal(err)
	}
	if *logs == "" {
		if *logs, err = os.MkdirTemp("", "ferry-bench-run-"); err != nil {
			log.Fatal(err)
		}
	} else if err := os.MkdirAll(*logs, 0o755); err != nil {
		log.Fatal(err)
	}
	bins, err := os.MkdirTemp("", "ferry-bench-bin-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(bins)

	start := time.Now()
	m := machine(*quick)
	m.Note = *note
	log.Printf("bench/run: logs in %s", *logs)
	r := runner{quick: *quick, reps: *reps, warmup: *warmup, timeout: *timeout, logs: *logs, bins: bins, verbose: *verbose, help: map[string]string{}}
	var runs []*Run
	for _, b := range benches {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), b.Key) {
			continue
		}
		if *quick && b.FullOnly {
			continue
		}
		runs = append(runs, r.run(b))
	}
	m.Duration = time.Since(start).Round(time.Second).String()
	if err := write(*out, m, runs); err != nil {
		log.Fatal(err)
	}
	log.Printf("bench/run: wrote %s in %s", *out, m.Duration)
}

// write writes the report and its charts.
func write(out string, m Machine, runs []*Run) error {
	dir, base := filepath.Dir(out), strings.TrimSuffix(filepath.Base(out), ".md")
	var charts Charts
	if ok, err := chart(filepath.Join(dir, base+"-streams.svg"), "Throughput against streams (medians)", "streams (connections at once)", "MB/s", streamSeries(runs)); err != nil {
		return err
	} else if ok {
		charts.Streams = base + "-streams.svg"
	}
	if ok, err := chart(filepath.Join(dir, base+"-delivery.svg"), "Delivery into iconik against file count (medians)", "files in the package", "seconds", deliverySeries(runs)); err != nil {
		return err
	} else if ok {
		charts.Delivery = base + "-delivery.svg"
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := writeReport(f, m, runs, charts); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type runner struct {
	quick, warmup, verbose bool
	reps                   int
	timeout                time.Duration
	logs, bins             string
	help                   map[string]string // Dir -> its program's -h output
}

func (r *runner) run(b Bench) *Run {
	args, reps := b.Full, b.Reps
	if r.quick {
		args, reps = b.Quick, 1
	}
	if r.reps > 0 {
		reps = r.reps
	}
	run := &Run{Key: b.Key, Title: b.Title, Series: b.Series, Ratios: b.Ratios, Targets: b.Targets}
	cmdline := b.Dir
	if b.Script != "" {
		cmdline = b.Script
	}
	run.Command = strings.Join(append([]string{cmdline}, args...), " ")
	if _, err := os.Stat(b.Dir); err != nil {
		run.NotRun = b.Dir + " is not in this tree"
		log.Printf("%s: not run: %s", b.Key, run.NotRun)
		return run
	}
	help, err := r.helpOf(b.Dir)
	if err != nil {
		run.NotRun = "it does not build: " + err.Error()
		log.Printf("%s: not run: %s", b.Key, run.NotRun)
		return run
	}
	// A flag another branch has not added yet (or a -json the program
	// lacks) makes the benchmark "not run" instead of a failed run.
	for _, f := range append(append([]string{"json"}, b.Needs...), flagNames(args)...) {
		if !strings.Contains(help, "\n  -"+f+" ") && !strings.Contains(help, "\n  -"+f+"\n") {
			run.NotRun = fmt.Sprintf("%s has no -%s flag", b.Dir, f)
			log.Printf("%s: not run: %s", b.Key, run.NotRun)
			return run
		}
	}
	if r.warmup && b.Warm != nil {
		log.Printf("%s: warm-up", b.Key)
		if _, err := r.once(b, b.Warm, "warmup"); err != nil {
			log.Printf("%s: warm-up failed: %v", b.Key, err)
		}
	}
	for i := 1; i <= reps; i++ {
		log.Printf("%s: repetition %d of %d", b.Key, i, reps)
		f, err := r.once(b, args, fmt.Sprint(i))
		if err != nil {
			run.Failed = append(run.Failed, fmt.Sprintf("repetition %d: %v", i, err))
			log.Printf("%s: repetition %d failed: %v", b.Key, i, err)
			continue
		}
		run.Reps = append(run.Reps, f)
	}
	return run
}

// once runs b with args and reads its -json output.
func (r *runner) once(b Bench, args []string, tag string) (*result.File, error) {
	js := filepath.Join(r.logs, b.Key+"-"+tag+".json")
	logPath := filepath.Join(r.logs, b.Key+"-"+tag+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	name := filepath.Join(r.bins, filepath.Base(b.Dir))
	if b.Script != "" {
		name = b.Script
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append(slices.Clone(args), "-json", js)...)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	cmd.Stdout, cmd.Stderr = lf, lf
	if r.verbose {
		cmd.Stdout, cmd.Stderr = teeTo(lf), teeTo(lf)
	}
	// Its own process group, so that a timeout also ends the servers and
	// clients the benchmark started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	fmt.Fprintf(lf, "$ %s %s\n", name, strings.Join(cmd.Args[1:], " "))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", r.timeout)
		}
		return nil, fmt.Errorf("%w (log %s: %s)", err, logPath, tail(logPath, 3))
	}
	f, err := result.Read(js)
	if err != nil {
		return nil, fmt.Errorf("its -json output: %w (log %s)", err, logPath)
	}
	return f, nil
}

type teeWriter struct{ f *os.File }

func (t teeWriter) Write(b []byte) (int, error) {
	_, _ = os.Stderr.Write(b)
	return t.f.Write(b)
}

func teeTo(f *os.File) teeWriter { return teeWriter{f} }

// helpOf builds dir's program once and returns its -h output.
func (r *runner) helpOf(dir string) (string, error) {
	if h, ok := r.help[dir]; ok {
		return h, nil
	}
	bin := filepath.Join(r.bins, filepath.Base(dir))
	build := exec.Command("go", "build", "-o", bin, "./"+dir)
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	// flag prints the usage to stderr and exits 0 (or 2) for -h.
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	r.help[dir] = "\n" + string(out)
	return r.help[dir], nil
}

// flagNames lists the flags named in args ("-size", "-wan=false").
func flagNames(args []string) []string {
	var names []string
	for _, a := range args {
		if n, ok := strings.CutPrefix(a, "-"); ok && n != "" && (n[0] < '0' || n[0] > '9') {
			n, _, _ = strings.Cut(strings.TrimPrefix(n, "-"), "=")
			names = append(names, n)
		}
	}
	return names
}

// tail returns the last n lines of a file, joined.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench/run inside the ferry module")
	}
	return filepath.Dir(mod), nil
}

// machine describes this machine for the report.
func machine(quick bool) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, Quick: quick,
		Started: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			k, v, _ := strings.Cut(s.Text(), ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case k == "model name" && m.CPU == "":
				m.CPU = v
			case k == "flags" && m.Flags == "":
				m.Flags = cpuFlags(strings.Fields(v))
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	if out, err := exec.Command("df", "-hT", os.TempDir()).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		f := strings.Fields(lines[len(lines)-1])
		if len(f) >= 7 {
			m.Disk = fmt.Sprintf("%s (%s) %s, %s free, holding %s", f[0], f[1], f[2], f[4], os.TempDir())
		}
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// cpuFlags keeps the flags that matter to these benchmarks (hashing, copying,
// crypto) out of the hundred a CPU lists.
func cpuFlags(all []string) string {
	var keep []string
	for _, f := range all {
		switch f {
		case "sha_ni", "aes", "pclmulqdq", "avx", "avx2", "avx512f", "avx512bw", "avx512vl", "bmi2", "sse4_2", "erms", "fsrm", "hypervisor":
			keep = append(keep, f)
		}
	}
	return fmt.Sprintf("%s (of %d)", strings.Join(keep, " "), len(all))
}
