package shutdowntest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the stopped server's River table

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/testbed/child"
)

var ferryBin string

// TestMain builds the ferry binary once for the package.
func TestMain(m *testing.M) {
	child.Main(m, &ferryBin)
}

// grace is the --shutdown-timeout the server runs with.
const grace = 6 * time.Second

type deliveryJSON struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	CollectionID string `json:"collection_id"`
	Files        []struct {
		Path  string `json:"path"`
		State string `json:"state"`
		Error string `json:"error"`
		Asset string `json:"asset_id"`
	} `json:"files"`
}

// TestSIGTERMMidUploadAndMidDeliveryExitsZeroAndNothingIsLost sends `ferry serve` SIGTERM
// while a PATCH is half sent (its client stalls) and a delivery into iconik is running. The
// process exits 0 within its grace period, having answered the stalled PATCH (its bytes
// kept). After a restart the upload resumes from the offset the server reports and
// completes, and the delivery completes with every file delivered exactly once.
func TestSIGTERMMidUploadAndMidDeliveryExitsZeroAndNothingIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "processes.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("process logs (last 8000 bytes):\n%s", b[max(0, len(b)-8000):])
		}
	})

	// iconik in its own process, which the SIGTERM never touches; its latency stretches the
	// delivery so the signal lands in the middle of it.
	emuDir := filepath.Join(dir, "iconik")
	e := child.StartEmulator(t, ferryBin, logPath, emuDir, "--latency", "40ms")
	emu, storageID := e.Proc, e.S3Storage

	data := filepath.Join(dir, "ferry")
	tok := child.AdminToken(t, ferryBin, "admin@shutdown.test", "--data", data)
	addr := child.FreeAddr(t)
	base := "http://" + addr
	serve := func() *child.Proc {
		p := child.Start(t, ferryBin, logPath, "serve", "--data", data, "--addr", addr, "--log-level", "info",
			"--shutdown-timeout", grace.String())
		child.WaitHTTP(t, base+"/healthz", p)
		return p
	}
	ferry := serve()
	a := &child.API{T: t, Base: base, Token: tok}
	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	a.Do("POST", "/api/v1/connections", "", map[string]any{"name": "emulator", "base_url": e.URL, "app_id": e.AppID,
		"token": e.Token, "storage_id": storageID}, &conn)
	a.Do("POST", "/api/v1/portals", "", map[string]any{"name": "Term", "slug": "term", "active": true, "connection_ids": []string{conn.Connection.ID}}, nil)
	type created struct {
		Package struct {
			ID string `json:"id"`
		} `json:"package"`
		UploadToken string `json:"upload_token"`
	}

	// A package whose delivery will be running when the signal comes.
	var delivered created
	a.Do("POST", "/p/term/packages", "", map[string]any{"name": "Delivered", "sender_email": "d@example.com"}, &delivered)
	const files = 24
	for i := range files {
		child.TusUpload(t, base, delivered.UploadToken, fmt.Sprintf("reel %d/clip-%02d.bin", i%3, i), bytes.Repeat([]byte{byte(i)}, 64<<10+i))
	}
	a.Do("POST", "/p/term/packages/"+delivered.Package.ID+"/finalize", delivered.UploadToken, nil, nil)
	var list struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	a.Do("GET", "/api/v1/packages/"+delivered.Package.ID+"/deliveries", "", nil, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("%d deliveries, want 1", len(list.Deliveries))
	}
	deliveryID := list.Deliveries[0].ID

	// An upload whose client stalls halfway through its PATCH.
	var stalled created
	a.Do("POST", "/p/term/packages", "", map[string]any{"name": "Stalled", "sender_email": "s@example.com"}, &stalled)
	body := make([]byte, 8<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	const sentBefore = 3 << 20
	uploadURL := createUpload(t, base, stalled.UploadToken, "big.mov", body)
	patch, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer patch.Close()
	fmt.Fprintf(patch, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n"+
		"Content-Type: application/offset+octet-stream\r\nAuthorization: Bearer %s\r\n\r\n", strings.TrimPrefix(uploadURL, base), addr, len(body), stalled.UploadToken)
	if _, err := patch.Write(body[:sentBefore]); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, "ferry_upload_bytes_received_total", 64<<10*files+sentBefore)

	var d struct {
		Delivery deliveryJSON `json:"delivery"`
	}
	a.Do("GET", "/api/v1/deliveries/"+deliveryID, "", nil, &d)
	if d.Delivery.State != "queued" && d.Delivery.State != "running" {
		t.Fatalf("the delivery is %s before the signal: the test would prove nothing", d.Delivery.State)
	}
	started := time.Now()
	ferry.Cmd.Process.Signal(syscall.SIGTERM)

	// The stalled PATCH is answered (handed back) rather than cut.
	patch.SetReadDeadline(time.Now().Add(2 * grace))
	resp, err := http.ReadResponse(bufio.NewReader(patch), nil)
	if err != nil {
		t.Fatalf("the stalled PATCH got no answer: %v", err)
	}
	t.Logf("the stalled PATCH was answered %d after %s", resp.StatusCode, time.Since(started).Round(time.Millisecond))
	select {
	case <-ferry.Done():
	case <-time.After(3 * grace):
		t.Fatalf("ferry serve did not exit after SIGTERM")
	}
	took := time.Since(started)
	if code := ferry.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("ferry serve exited %d after SIGTERM, want 0", code)
	}
	// A bound from the flag's promise, with two seconds for the process to be reaped on a busy
	// machine: a shutdown that ignores the grace takes far longer (River alone waits for jobs).
	if took > grace+2*time.Second {
		t.Errorf("ferry serve took %s to exit, beyond its %s grace period", took.Round(time.Millisecond), grace)
	}
	t.Logf("exited 0 after %s (grace %s)", took.Round(time.Millisecond), grace)
	logs, _ := os.ReadFile(logPath)
	if !regexp.MustCompile(`handing in-flight uploads back`).Match(logs) {
		t.Errorf("no hand-back logged")
	}

	// River's jobs finished or went back to the queue: none is left marked running.
	jobs, err := sql.Open("sqlite", filepath.Join(data, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	var running, waiting int
	if err := jobs.QueryRow(`SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state IN ('available', 'retryable', 'scheduled'))
		FROM river_job`).Scan(&running, &waiting); err != nil {
		t.Fatal(err)
	}
	jobs.Close()
	if running != 0 {
		t.Errorf("%d River jobs left running after the graceful shutdown", running)
	}
	t.Logf("after the shutdown: %d jobs waiting in the queue, none running", waiting)

	// Restart: the upload resumes where the server says, and completes.
	ferry = serve()
	offset := headOffset(t, uploadURL, stalled.UploadToken)
	if offset <= 0 || offset > sentBefore {
		t.Fatalf("after the restart the upload is at %d, want the bytes that arrived (0 < offset <= %d)", offset, sentBefore)
	}
	t.Logf("resuming the upload at %d of %d bytes", offset, len(body))
	req, _ := http.NewRequest("PATCH", uploadURL, bytes.NewReader(body[offset:]))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Authorization", "Bearer "+stalled.UploadToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(body)) {
		t.Fatalf("resumed PATCH: %d offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	var pkg struct {
		Package struct {
			Files []struct {
				Path, State, SHA256 string
			} `json:"files"`
		} `json:"package"`
	}
	a.Do("GET", "/api/v1/packages/"+stalled.Package.ID, "", nil, &pkg)
	sum := sha256.Sum256(body)
	if f := pkg.Package.Files; len(f) != 1 || f[0].State != "complete" || f[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the resumed upload: %+v, want complete with sha256 %x", f, sum)
	}

	// The delivery completes, every file exactly once.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		a.Do("GET", "/api/v1/deliveries/"+deliveryID, "", nil, &d)
		if d.Delivery.State != "queued" && d.Delivery.State != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery is still %s", d.Delivery.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d.Delivery.State != "delivered" || len(d.Delivery.Files) != files {
		for _, f := range d.Delivery.Files {
			t.Logf("%s: %s %s", f.Path, f.State, f.Error)
		}
		t.Fatalf("delivery %s with %d files, want delivered with %d", d.Delivery.State, len(d.Delivery.Files), files)
	}
	ferry.Stop(t)
	emu.Stop(t)
	dups, err := emulator.DuplicatesIn(emuDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) != 0 {
		t.Errorf("iconik holds duplicates after the SIGTERM and restart:\n%s", strings.Join(dups, "\n"))
	}
}

// createUpload creates a tus upload of len(body) bytes and returns its URL.
func createUpload(t *testing.T, base, token, relPath string, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	var meta []string
	for k, v := range map[string]string{"filename": filepath.Base(relPath), "relativePath": relPath, "sha256": hex.EncodeToString(sum[:])} {
		meta = append(meta, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req, _ := http.NewRequest("POST", base+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(body)))
	req.Header.Set("Upload-Metadata", strings.Join(meta, ","))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || loc == "" {
		t.Fatalf("creating the upload: %d %q", resp.StatusCode, loc)
	}
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	return loc
}

func headOffset(t *testing.T, url, token string) int64 {
	t.Helper()
	req, _ := http.NewRequest("HEAD", url, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("HEAD %s: %d offset %q", url, resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	return n
}

// waitMetric waits (a minute at most) until the counter name on /metrics reaches at least min.
func waitMetric(t *testing.T, base, name string, min float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, name+" "); ok {
					last = v
					if f, err := strconv.ParseFloat(v, 64); err == nil && f >= min {
						return
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s stayed at %s, want at least %v", name, last, min)
}

// TestASecondSIGTERMEndsTheShutdownAtOnce: an operator who will not wait out the grace period
// signals again, and the process ends then (killed by the signal), however long the grace.
func TestASecondSIGTERMEndsTheShutdownAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "serve.log")
	addr := child.FreeAddr(t)
	p := child.Start(t, ferryBin, logPath, "serve", "--data", filepath.Join(dir, "data"), "--addr", addr, "--log-level", "info",
		"--shutdown-timeout", "10m")
	child.WaitHTTP(t, "http://"+addr+"/healthz", p)
	// A connection with a request still arriving holds the graceful shutdown.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", addr)
	time.Sleep(100 * time.Millisecond) // let the server start reading it (not an assertion)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(time.Minute)
	for {
		if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("shutting down")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no graceful shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-p.Done():
		t.Fatal("the first SIGTERM did not wait for the request in flight")
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(time.Minute): // a deadlock guard: the grace is ten minutes
		t.Fatal("a second SIGTERM did not end the process")
	}
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("after the second SIGTERM: %v, want killed by SIGTERM", p.Cmd.ProcessState)
	}
}
