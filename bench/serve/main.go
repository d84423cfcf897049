package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/bench/internal/result"
)

func main() {
	bin := flag.String("ferry", "", "path to the ferry binary (required)")
	sizeFlag := flag.String("size", "10GiB", "upload size (e.g. 512MiB, 10GiB)")
	refFlag := flag.String("ref-size", "2GiB", "size of the direct-write reference")
	limitMB := flag.Int("limit-mb", 200, "fail if VmHWM exceeds this many MB")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed afterwards)")
	jsonPath := flag.String("json", "", "also write the figures to this file as JSON (bench/internal/result), for bench/run")
	flag.Parse()
	if *bin == "" {
		log.Fatal("serve-bench: -ferry is required")
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		log.Fatalf("serve-bench: -size: %v", err)
	}
	refSize, err := parseSize(*refFlag)
	if err != nil {
		log.Fatalf("serve-bench: -ref-size: %v", err)
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "ferry-serve-bench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(work)
	}
	if err := run(*bin, work, size, refSize, *limitMB, *jsonPath); err != nil {
		log.Fatalf("serve-bench: %v", err)
	}
}

func run(bin, work string, size, refSize int64, limitMB int, jsonPath string) error {
	data := filepath.Join(work, "data")
	env := append(os.Environ(), "FERRY_DATA="+data)
	admin := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"admin"}, args...)...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader("bench-password-123\n")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := admin("create-user", "--email", "bench@example.com", "--password-file", "-"); err != nil {
		return fmt.Errorf("create-user: %w", err)
	}
	token, err := admin("create-token", "--email", "bench@example.com")
	if err != nil {
		return fmt.Errorf("create-token: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := exec.Command(bin, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn")
	srv.Env = env
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	if err := waitReady(base + "/healthz"); err != nil {
		return err
	}
	idle, err := vmHWM(srv.Process.Pid)
	if err != nil {
		return err
	}

	// Create a portal-less package with the API token, then one tus upload:
	// creation, then a single PATCH streaming every byte.
	var created struct {
		Package     struct{ ID string }
		UploadToken string `json:"upload_token"`
	}
	if err := call("POST", base+"/api/v1/packages", token, `{"name":"bench"}`, &created); err != nil {
		return err
	}
	meta := "package_token " + b64(created.UploadToken) + ",relativePath " + b64("bench/big.bin") + ",filename " + b64("big.bin")
	req, _ := http.NewRequest("POST", base+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", meta)
	req.Header.Set("Authorization", "Bearer "+created.UploadToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("tus creation: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	start := time.Now()
	req, _ = http.NewRequest("PATCH", loc, io.LimitReader(newPattern(), size))
	req.ContentLength = size
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Authorization", "Bearer "+created.UploadToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("PATCH: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	upload := time.Since(start)
	if resp.StatusCode != 204 || resp.Header.Get("Upload-Offset") != strconv.FormatInt(size, 10) {
		return fmt.Errorf("PATCH: %s offset %s: %s", resp.Status, resp.Header.Get("Upload-Offset"), body)
	}
	peak, err := vmHWM(srv.Process.Pid)
	if err != nil {
		return err
	}

	// Then stream the package back as a zip through a download link.
	var fin struct{ Package struct{ State string } }
	if err := call("POST", base+"/api/v1/packages/"+created.Package.ID+"/finalize", token, "", &fin); err != nil {
		return err
	}
	var link struct{ URL string }
	if err := call("POST", base+"/api/v1/packages/"+created.Package.ID+"/links", token, `{"expires_in":"1h"}`, &link); err != nil {
		return err
	}
	zipStart := time.Now()
	zresp, err := http.Get(base + link.URL + "/zip")
	if err != nil {
		return err
	}
	zipped, err := io.Copy(io.Discard, zresp.Body)
	zresp.Body.Close()
	if err != nil || zresp.StatusCode != 200 || zipped < size {
		return fmt.Errorf("zip download: %s, %d bytes, %v", zresp.Status, zipped, err)
	}
	zipTime := time.Since(zipStart)
	peakZip, err := vmHWM(srv.Process.Pid)
	if err != nil {
		return err
	}

	// Reference: the same bytes written straight to a file with fsync,
	// which is the floor any server on this disk sits on.
	refStart := time.Now()
	if err := writeFile(filepath.Join(work, "ref.bin"), refSize); err != nil {
		return err
	}
	ref := time.Since(refStart)
	os.Remove(filepath.Join(work, "ref.bin"))

	mbps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	up, rf := mbps(size, upload), mbps(refSize, ref)
	fmt.Printf("upload: %s in %s = %.0f MB/s\n", human(size), upload.Round(time.Millisecond), up)
	fmt.Printf("reference direct write (%s, fsync): %.0f MB/s\n", human(refSize), rf)
	fmt.Printf("throughput ratio ferry/direct: %.2f\n", up/rf)
	fmt.Printf("zip download: %s in %s = %.0f MB/s\n", human(zipped), zipTime.Round(time.Millisecond), mbps(zipped, zipTime))
	fmt.Printf("VmHWM idle: %.1f MB, after upload: %.1f MB, after zip download: %.1f MB (limit %d MB), ratio to idle %.2f\n",
		idle/1e6, peak/1e6, peakZip/1e6, limitMB, peakZip/idle)
	out := result.New("serve")
	out.Add(result.Metric{Name: "upload", Value: up, Unit: "MB/s"})
	out.Add(result.Metric{Name: "direct write (reference)", Value: rf, Unit: "MB/s"})
	out.Add(result.Metric{Name: "zip download", Value: mbps(zipped, zipTime), Unit: "MB/s"})
	out.Add(result.Metric{Name: "VmHWM idle", Value: idle / 1e6, Unit: "MB"})
	out.Add(result.Metric{Name: "VmHWM after upload", Value: peak / 1e6, Unit: "MB"})
	out.Add(result.Metric{Name: "VmHWM after zip download", Value: peakZip / 1e6, Unit: "MB"})
	if err := out.Write(jsonPath); err != nil {
		return err
	}
	if peakZip > float64(limitMB)*1e6 {
		return fmt.Errorf("peak RSS %.1f MB exceeds the %d MB budget", peakZip/1e6, limitMB)
	}
	return nil
}

// pattern is an endless reader of pseudo-random bytes (one 1 MiB block
// repeated), cheap enough that the client is never the bottleneck.
type pattern struct {
	block []byte
	off   int
}

func newPattern() *pattern {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return &pattern{block: b}
}

func (p *pattern) Read(dst []byte) (int, error) {
	n := 0
	for n < len(dst) {
		c := copy(dst[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	return n, nil
}

func writeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, io.LimitReader(newPattern(), size), make([]byte, 1<<20)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// vmHWM reads the peak resident set size of pid, in bytes.
func vmHWM(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func call(method, url, token, body string, out any) error {
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

func waitReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("ferry serve did not answer %s within 30s", url)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("%q is not a size like 10GiB", s)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size like 10GiB", s)
	}
	return v, nil
}

func human(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }
