package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/bench/internal/result"
	wanlink "github.com/ferryhq/ferry/bench/internal/wan"
	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
	"github.com/ferryhq/ferry/internal/testbed"
)

func main() {
	lanSize := flag.String("lan-size", "1GiB", "file size of the LAN comparison")
	wanSize := flag.String("wan-size", "512MiB", "file size of the WAN comparison")
	rounds := flag.Int("rounds", 3, "runs of each contender (the median is reported)")
	delay := flag.Duration("wan-delay", 50*time.Millisecond, "one-way delay of the shaped link")
	rate := flag.Float64("wan-rate", 20e6, "bytes/s per connection per direction on the shaped link")
	lan := flag.Bool("lan", true, "run the LAN comparison")
	jsonPath := flag.String("json", "", "also write every row to this file as JSON (bench/internal/result), for bench/run")
	flag.Parse()
	if err := run(*lan, *lanSize, *wanSize, *rounds, *delay, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "bench/portal:", err)
		os.Exit(1)
	}
	if err := jsonOut.Write(*jsonPath); err != nil {
		fmt.Fprintln(os.Stderr, "bench/portal:", err)
		os.Exit(1)
	}
}

// jsonOut collects the rows row prints, for -json.
var jsonOut = result.New("portal")

func run(doLAN bool, lanSize, wanSize string, rounds int, delay time.Duration, rate float64) error {
	lanN, err := config.ParseByteSize(lanSize)
	if err != nil {
		return err
	}
	wanN, err := config.ParseByteSize(wanSize)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-portal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	ferryURL, stopFerry, err := startFerry(ctx, filepath.Join(dir, "ferry"))
	if err != nil {
		return err
	}
	defer stopFerry()
	tusdURL, stopTusd, err := startTusd(filepath.Join(dir, "tusd"))
	if err != nil {
		return err
	}
	defer stopTusd()
	plainURL, stopPlain, err := startPlainPage(filepath.Join(dir, "plain"))
	if err != nil {
		return err
	}
	defer stopPlain()

	lanFile := filepath.Join(dir, "lan.mov")
	wanFile := filepath.Join(dir, "wan.mov")
	for _, f := range []struct {
		path string
		n    int64
	}{{lanFile, int64(lanN)}, {wanFile, int64(wanN)}} {
		if err := makeFile(f.path, f.n); err != nil {
			return err
		}
	}

	chromium, err := testbed.LookBinary("chromium")
	if err != nil {
		return fmt.Errorf("chromium: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Env("LANG=C.UTF-8", "LC_ALL=C.UTF-8"))
	if os.Getuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx); err != nil {
		return fmt.Errorf("starting chromium: %w", err)
	}

	fmt.Printf("machine: %d CPUs; rounds: %d (median); every contender in one run\n\n", numCPU(), rounds)

	if doLAN {
		fmt.Printf("LAN: %s through the page in headless Chromium over loopback\n", lanSize)
		plain, err := measure(bctx, rounds, lanN, func(c context.Context) (float64, error) {
			return uploadPlain(c, plainURL+"/?endpoint="+tusdURL+"/files/", lanFile)
		})
		if err != nil {
			return fmt.Errorf("plain Uppy + tusd: %w", err)
		}
		ferry, err := measure(bctx, rounds, lanN, func(c context.Context) (float64, error) {
			return uploadFerry(c, ferryURL+"/p/bench", lanFile, false)
		})
		if err != nil {
			return fmt.Errorf("ferry's portal page: %w", err)
		}
		row("LAN/plain Uppy 6 + stock tusd (reference)", plain, plain, 0)
		row("LAN/ferry portal page + ferry serve", ferry, plain, 1.0)
	}
	p, err := wanlink.Start(ferryURL[len("http://"):], delay, rate, 4<<20)
	if err != nil {
		return err
	}
	defer p.Close()
	shaped := "http://" + p.Addr()
	fmt.Printf("\nWAN: %s through a shaped link (%v each way, %.0f MB/s per connection)\n", wanSize, delay, rate/1e6)
	wanRounds := max(1, rounds-1)
	one, err := measure(bctx, wanRounds, wanN, func(c context.Context) (float64, error) {
		return uploadFerry(c, shaped+"/p/bench", wanFile, true)
	})
	if err != nil {
		return fmt.Errorf("ferry's page, one stream: %w", err)
	}
	many, err := measure(bctx, wanRounds, wanN, func(c context.Context) (float64, error) {
		return uploadFerry(c, shaped+"/p/bench", wanFile, false)
	})
	if err != nil {
		return fmt.Errorf("ferry's page, parallel partials: %w", err)
	}
	row("WAN/ferry portal page, one stream per file (reference)", one, one, 0)
	row("WAN/ferry portal page (parallel partials)", many, one, 4.0)
	return nil
}

func row(name string, mibps, ref float64, target float64) {
	verdict := ""
	if target > 0 {
		verdict = fmt.Sprintf("  target >= %.1fx: %s", target, map[bool]string{true: "met", false: "NOT met"}[mibps/ref >= target])
	}
	jsonOut.Add(result.Metric{Name: name, Value: mibps * (1 << 20) / 1e6, Unit: "MB/s"})
	_, name, _ = strings.Cut(name, "/")
	fmt.Printf("  %-52s %7.1f MiB/s  %5.2fx%s\n", name, mibps, mibps/ref, verdict)
}

// measure runs one upload per round in a fresh tab and returns the median
// rate in MiB/s.
func measure(bctx context.Context, rounds int, size config.ByteSize, one func(context.Context) (float64, error)) (float64, error) {
	var rates []float64
	for i := range rounds {
		// A fresh browser context per run: no storage (Golden Retriever's
		// saved uploads, tus fingerprints) carries over between runs.
		tctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
		c, cancelT := context.WithTimeout(tctx, 10*time.Minute)
		secs, err := one(c)
		cancelT()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("round %d: %w", i+1, err)
		}
		rates = append(rates, float64(size)/(1<<20)/secs)
	}
	slices.Sort(rates)
	return rates[len(rates)/2], nil
}

// uploadFerry fills ferry's portal form, drops the file and times from the
// upload click to the "received" screen (finalize included), in the page's
// own clock. oneStream removes the parallel-partial options from every file,
// as a page without them would send.
func uploadFerry(ctx context.Context, url, file string, oneStream bool) (float64, error) {
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "bench@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input:not([webkitdirectory])`), []string{file}),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	); err != nil {
		return 0, err
	}
	setup := `new MutationObserver((_, o) => { if (!document.getElementById('received').hidden) { window.__t1 = performance.now(); o.disconnect() } })
		.observe(document.getElementById('received'), {attributes: true}); true`
	if oneStream {
		setup = `for (const f of window.ferryUppy.getFiles()) window.ferryUppy.setFileState(f.id, {tus: {}}); ` + setup
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](setup)); err != nil {
		return 0, err
	}
	return clickAndWait(ctx)
}

// uploadPlain drops the file on the plain page and times from the upload
// click to Uppy's complete event.
func uploadPlain(ctx context.Context, url, file string) (float64, error) {
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input:not([webkitdirectory])`), []string{file}),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	); err != nil {
		return 0, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.benchUppy.on('complete', (r) => { window.__t1 = performance.now(); window.__failed = r.failed.length }); true`)); err != nil {
		return 0, err
	}
	return clickAndWait(ctx)
}

func clickAndWait(ctx context.Context) (float64, error) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__t0 = performance.now(); true`)); err != nil {
		return 0, err
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`))); err != nil {
		return 0, err
	}
	ms, err := chromedp.Run(ctx, chromedp.Poll[float64](`(() => {
		const s = document.getElementById('status');
		if (s && s.className === 'err') throw new Error(s.textContent);
		if (window.__failed) throw new Error('uploads failed');
		return window.__t1 !== undefined && (window.__t1 - window.__t0);
	})()`, chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		return 0, err
	}
	return ms / 1000, nil
}

// startFerry runs ferry in this process (SQLite, local disk) with a portal
// "bench" and returns its URL.
func startFerry(ctx context.Context, dir string) (string, func(), error) {
	cfg := config.Default("")
	cfg.DataDir = dir
	if _, err := server.CreateUser(ctx, cfg, "bench@example.com", "bench-password-123"); err != nil {
		return "", nil, err
	}
	tok, err := server.CreateAPIToken(ctx, cfg, "bench@example.com", "bench")
	if err != nil {
		return "", nil, err
	}
	app, err := server.Open(ctx, cfg, server.Options{})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: app.Handler()}
	go func() { _ = hs.Serve(ln) }()
	u := "http://" + ln.Addr().String()
	body, _ := json.Marshal(map[string]any{"name": "Bench", "slug": "bench"})
	req, _ := http.NewRequest("POST", u+"/api/v1/portals", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("creating the portal: %d %s", resp.StatusCode, b)
	}
	return u, func() { hs.Close(); app.Close() }, nil
}

// startTusd runs stock tusd (filestore) with its default CORS rules.
func startTusd(dir string) (string, func(), error) {
	bin, err := testbed.LookBinary("tusd")
	if err != nil {
		return "", nil, fmt.Errorf("tusd (scripts/peers installs it): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port), "-upload-dir", dir, "-verbose=false")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	for range 100 {
		if resp, err := http.Get(u + "/files/"); err == nil {
			resp.Body.Close()
			return u, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return "", nil, errors.New("tusd did not start")
}

// startPlainPage builds plain.js with web/'s esbuild and serves it.
func startPlainPage(dir string) (string, func(), error) {
	web, err := filepath.Abs("web")
	if err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules", ".bin", "esbuild")); err != nil {
		ci := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
		ci.Dir, ci.Stdout, ci.Stderr = web, os.Stdout, os.Stderr
		if err := ci.Run(); err != nil {
			return "", nil, fmt.Errorf("npm ci in web/ (run from the repository root): %w", err)
		}
	}
	b := exec.Command(filepath.Join(web, "node_modules", ".bin", "esbuild"), "bench/portal/plain.js",
		"--bundle", "--minify", "--log-level=warning", "--outdir="+dir)
	b.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(web, "node_modules"))
	b.Stdout, b.Stderr = os.Stdout, os.Stderr
	if err := b.Run(); err != nil {
		return "", nil, fmt.Errorf("building the plain page: %w", err)
	}
	page := `<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/plain.css"></head>
<body><div id="drop"></div><script src="/plain.js"></script></body></html>`
	mux := http.NewServeMux()
	mux.Handle("/plain.js", http.FileServer(http.Dir(dir)))
	mux.Handle("/plain.css", http.FileServer(http.Dir(dir)))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { hs.Close() }, nil
}

func makeFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			return err
		}
	}
	return f.Sync()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func numCPU() int { return runtime.NumCPU() }
