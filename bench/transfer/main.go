package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/bench/internal/result"
	"github.com/ferryhq/ferry/internal/transfer"
)

func main() {
	log.SetFlags(0)
	var (
		sizeFlag   = flag.String("size", "2GiB", "source file size (B, KiB, MiB, GiB)")
		parallel   = flag.Int("parallel", 0, "ferry: parts in flight (default: internal/transfer's, which S3 adapts to the link)")
		partSize   = flag.String("part", "", "ferry: minimum part size (default: internal/transfer's)")
		providers  = flag.String("providers", "s3", "comma list: s3 (Versity: ferry, rclone, transfermanager, single PUT), azure (Azurite), fakegcs (fake-gcs-server, <= 64 MiB), gcs, b2 (emulator data plane)")
		contenders = flag.String("contenders", "put,ferry,tm,rclone", "S3 contenders to run, in order")
		rounds     = flag.Int("rounds", 1, "measurements per contender (the best is kept)")
		links      = flag.String("links", "lan,wan", "s3 only: comma list of links to Versity: lan (loopback), wan (through the shaping proxy)")
		wanSize    = flag.String("wan-size", "1GiB", "source file size of the WAN run")
		wanDelay   = flag.Duration("wan-delay", 25*time.Millisecond, "WAN one-way delay (each direction)")
		wanRate    = flag.Float64("wan-rate", 20e6, "WAN per-connection rate cap, bytes/s per direction")
		wanCont    = flag.String("wan-contenders", "put,ferry,rclone-default,tm", "S3 contenders of the WAN run, in order (ferry:N = ferry with N parts in flight)")
		jsonOut    = flag.String("json", "", "also write the figures to this file as JSON (bench/internal/result), for bench/run")
		child      = flag.String("child", "", "internal: run one contender in this process and print its JSON result")
		spec       = flag.String("spec", "", "internal: JSON job for -child")
	)
	flag.Parse()
	if *child != "" {
		runChild(*child, *spec)
		return
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		log.Fatal(err)
	}
	ps := transfer.Options{}.WithDefaults().PartSize
	if *partSize != "" {
		if ps, err = parseSize(*partSize); err != nil {
			log.Fatal(err)
		}
	}
	os.Unsetenv("AWS_CA_BUNDLE") // rclone 1.60 fails with it (TESTBED.md)

	dir, err := os.MkdirTemp("", "ferry-bench-transfer-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src.bin")
	// A WAN-only run (bench/run) needs no LAN source file.
	if *providers != "s3" || strings.Contains(*links, "lan") {
		log.Printf("writing %s source file...", human(size))
		if err := writeRandom(src, size); err != nil {
			log.Fatal(err)
		}
	}
	job := Job{File: src, Size: size, Parallel: *parallel, PartSize: ps}
	out := result.New("transfer")
	for _, p := range strings.Split(*providers, ",") {
		switch strings.TrimSpace(p) {
		case "s3":
			for _, l := range strings.Split(*links, ",") {
				switch strings.TrimSpace(l) {
				case "lan":
					benchS3(job, *rounds, *contenders, link{name: "lan"}, out)
				case "wan":
					wj := job
					if wj.Size, err = parseSize(*wanSize); err != nil {
						log.Fatal(err)
					}
					wj.File = filepath.Join(dir, "wan.bin")
					log.Printf("writing %s WAN source file...", human(wj.Size))
					if err := writeRandom(wj.File, wj.Size); err != nil {
						log.Fatal(err)
					}
					benchS3(wj, *rounds, *wanCont, link{name: "wan", delay: *wanDelay, rate: *wanRate}, out)
					os.Remove(wj.File)
				default:
					log.Fatalf("unknown link %q", l)
				}
			}
		case "azure":
			benchAzure(job, *rounds)
		case "fakegcs":
			benchFakeGCS(job, *rounds)
		case "gcs", "b2":
			benchEmulator(job, strings.TrimSpace(p), *rounds)
		default:
			log.Fatalf("unknown provider %q", p)
		}
	}
	if err := out.Write(*jsonOut); err != nil {
		log.Fatal(err)
	}
}

// Job is what a child needs to run one contender.
type Job struct {
	File     string
	Size     int64
	Parallel int
	PartSize int64
	Key      string
	// S3
	Endpoint, Region, AccessKey, SecretKey, Bucket string
	// URLs for emulator and Azure targets
	URL string
}

// Outcome is a child's answer.
type Outcome struct {
	Seconds float64
	// InFlight is the most parts ferry had in flight (S3 adapts them).
	InFlight int `json:",omitempty"`
	// PeakMiB is the child's own VmHWM, read by itself as it ends (see
	// vmHWMMiB for why getrusage is not enough).
	PeakMiB float64 `json:",omitempty"`
	SHA256  string  `json:",omitempty"`
	Note    string  `json:",omitempty"`
	Error   string  `json:",omitempty"`
}

// Measure is one contender's figures.
type Measure struct {
	Name    string
	Streams int
	Seconds float64
	MBps    float64
	RSSMiB  float64
	CPU     float64
	Note    string
}

// runChildProcess runs this binary as a child for contender name, returning
// its outcome and peak RSS.
func runChildProcess(name string, job Job) (Outcome, float64, error) {
	b, _ := json.Marshal(job)
	self, err := os.Executable()
	if err != nil {
		return Outcome{}, 0, err
	}
	cmd := exec.Command(self, "-child", name, "-spec", string(b))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	rss := rssMiB(cmd.ProcessState)
	var o Outcome
	if json.Unmarshal(out, &o) == nil && o.PeakMiB > 0 {
		rss = o.PeakMiB
	}
	defer func() { lastCPU = cpuSeconds(cmd.ProcessState) }()
	if err != nil {
		return Outcome{}, rss, fmt.Errorf("%s: %w", name, err)
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return o, rss, fmt.Errorf("%s: bad child output %q: %w", name, out, err)
	}
	if o.Error != "" {
		return o, rss, fmt.Errorf("%s: %s", name, o.Error)
	}
	return o, rss, nil
}

// runExternal times an external command and reads its peak RSS.
func runExternal(name string, env []string, args ...string) (float64, float64, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	// Poll the command's own VmHWM (see vmHWMMiB) while it runs.
	var peak float64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			peak = max(peak, vmHWMMiB(strconv.Itoa(cmd.Process.Pid)))
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	secs := time.Since(start).Seconds()
	close(stop)
	<-polled
	rss := rssMiB(cmd.ProcessState)
	if peak > 0 {
		rss = peak
	}
	lastCPU = cpuSeconds(cmd.ProcessState)
	if err != nil {
		return 0, rss, fmt.Errorf("%s: %w", name, err)
	}
	return secs, rss, nil
}

// cpuSeconds is the child's user+system CPU time: on a 2-core machine every
// client cycle is taken from the server.
func cpuSeconds(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// vmHWMMiB reads the peak resident memory of process pid ("self" for this
// one) from /proc, 0 when it cannot. A child's getrusage maxrss is not its
// own: Go starts children with vfork (CLONE_VM), and exec records the
// parent's resident size of that moment as the child's high-water mark, so
// a bench process grown by the WAN proxy's buffers (4 MiB per connection
// per direction) made ferry's child read 134 MiB though its Go runtime held
// 28 MiB. VmHWM belongs to the child's own address space, set up by exec.
func vmHWMMiB(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// rssMiB is the child's maxrss from getrusage: an upper bound only (see
// vmHWMMiB), used when /proc cannot be read.
func rssMiB(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return 0
}

// lastCPU is the CPU time of the last child run (the runs are sequential).
var lastCPU float64

// Contender is one way of uploading the source file.
type Contender struct {
	Name string
	// Streams is how many connections it uploads over at once (the x of
	// bench/run's throughput-against-streams chart).
	Streams int
	Run     func() (secs, rssMiB float64, note string, err error)
	// InFlight, when set, is where Run leaves the most parts its upload
	// had in flight (ferry adapts them): it replaces Streams.
	InFlight *int
}

// measure runs every contender rounds times, round-robin so that a slow
// moment of the shared machine hits all of them, flushing dirty pages before
// each run so that one contender's writeback does not slow the next. The best
// time of each is kept; RSS is the highest seen.
func measure(size int64, rounds int, cs []Contender) []Measure {
	ms := make([]Measure, len(cs))
	for i, c := range cs {
		ms[i].Name, ms[i].Streams = c.Name, c.Streams
	}
	for r := 0; r < rounds; r++ {
		for i, c := range cs {
			if strings.HasPrefix(ms[i].Note, "failed") {
				continue
			}
			syscall.Sync()
			secs, rss, note, err := c.Run()
			if err != nil {
				log.Printf("  %s: FAILED: %v", c.Name, err)
				ms[i].Note = "failed: " + err.Error()
				continue
			}
			log.Printf("  round %d %-34s %7.2f s %8.1f MB/s  peak RSS %6.1f MiB  client CPU %5.2f s %s", r+1, c.Name, secs, float64(size)/1e6/secs, rss, lastCPU, note)
			if ms[i].Seconds == 0 || secs < ms[i].Seconds {
				ms[i].Seconds, ms[i].Note = secs, note
				if c.InFlight != nil && *c.InFlight > 0 {
					ms[i].Streams = *c.InFlight
				}
				ms[i].MBps = float64(size) / 1e6 / secs
				ms[i].CPU = lastCPU
			}
			ms[i].RSSMiB = max(ms[i].RSSMiB, rss)
		}
	}
	return ms
}

func report(title string, ms []Measure, ratios [][2]string) {
	fmt.Printf("\n== %s\n", title)
	by := map[string]Measure{}
	for _, m := range ms {
		by[m.Name] = m
		fmt.Printf("%-34s %8.1f MB/s  %7.2f s  peak RSS %6.1f MiB  client CPU %5.2f s  %s\n", m.Name, m.MBps, m.Seconds, m.RSSMiB, m.CPU, m.Note)
	}
	for _, r := range ratios {
		a, b := by[r[0]], by[r[1]]
		if a.MBps > 0 && b.MBps > 0 {
			fmt.Printf("ratio %s / %s = %.2fx\n", r[0], r[1], a.MBps/b.MBps)
		}
	}
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suf string
		n   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return int64(n * float64(u.n)), nil
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	seed := uint64(0x9e3779b97f4a7c15)
	for off := int64(0); off < size; {
		// xorshift: fast, incompressible enough for storage servers that do not compress.
		for i := 0; i+8 <= len(buf); i += 8 {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(seed >> (8 * j))
			}
		}
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		off += n
	}
	return f.Sync()
}
