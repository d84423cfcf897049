package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestNginxExampleCarriesLargeResumableUploads runs deploy/nginx as
// written (only addresses, ports and certificate paths changed) in front of
// a real ferry server, over HTTPS, and sends a tus upload through it whose
// PATCH is far past nginx's 1 MiB default body limit and the example's own
// 16 MiB limit outside /uploads/, resumed after a HEAD; nginx must not have
// spooled the body to its disk first (it logs when it does).
func TestNginxExampleCarriesLargeResumableUploads(t *testing.T) {
	runNginxExample(t, false)
}

// TestNginxExampleWithoutLocationRewriteWhenFerryTrustsIt runs the same
// upload with the example's proxy_redirect line taken out and ferry started
// with --trusted-proxies naming nginx: ferry's own tus Location must then
// be the https one on nginx's address (the upload fails otherwise).
func TestNginxExampleWithoutLocationRewriteWhenFerryTrustsIt(t *testing.T) {
	runNginxExample(t, true)
}

func runNginxExample(t *testing.T, trustNginx bool) {
	t.Helper()
	bin := systemBinary(t, "nginx")
	var ferryAddr, adminTok string
	proxyConf := map[string]string(nil)
	if trustNginx {
		ferryAddr, adminTok = startFerry(t, func(c *config.Config) { c.TrustedProxies = "127.0.0.1" })
		proxyConf = map[string]string{"proxy_redirect http://$http_host/ $scheme://$http_host/;\n": ""}
	} else {
		ferryAddr, adminTok = startFerry(t, nil)
	}
	dir := t.TempDir()
	cert, key, pool := testbed.SelfSignedCert(t, dir)
	port := testbed.FreePort(t)

	site := readReplacing(t, "nginx/ferry.conf", map[string]string{
		"server 127.0.0.1:8080;":                                "server " + ferryAddr + ";",
		"listen 80;\n\tlisten [::]:80;":                         "listen 127.0.0.1:" + strconv.Itoa(testbed.FreePort(t)) + ";",
		"listen 443 ssl http2;\n\tlisten [::]:443 ssl http2;":   "listen 127.0.0.1:" + strconv.Itoa(port) + " ssl http2;",
		"/etc/letsencrypt/live/ferry.example.com/fullchain.pem": cert,
		"/etc/letsencrypt/live/ferry.example.com/privkey.pem":   key,
		"/etc/nginx/ferry-proxy.conf":                           filepath.Join(dir, "ferry-proxy.conf"),
	})
	writeFile(t, filepath.Join(dir, "ferry.conf"), site)
	writeFile(t, filepath.Join(dir, "ferry-proxy.conf"), readReplacing(t, "nginx/ferry-proxy.conf", proxyConf))
	// The main file is the machine's, not the example's: only what a test
	// run needs (one process, everything under dir).
	writeFile(t, filepath.Join(dir, "nginx.conf"), strings.ReplaceAll(`daemon off;
master_process off;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log info;
events { worker_connections 256; }
http {
	access_log DIR/access.log;
	client_body_temp_path DIR/body;
	proxy_temp_path DIR/proxy;
	fastcgi_temp_path DIR/fastcgi;
	uwsgi_temp_path DIR/uwsgi;
	scgi_temp_path DIR/scgi;
	include DIR/ferry.conf;
}
`, "DIR", dir))
	if out, err := exec.Command(bin, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t refuses the example: %v\n%s", err, out)
	}
	p, err := testbed.StartIn(dir, testbed.StartOpts{Name: "nginx", Bin: bin,
		Args: []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := testbed.WaitTCP(p, "127.0.0.1:"+strconv.Itoa(port), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	errorLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return string(b)
	}
	uploadThroughProxy(t, "https://127.0.0.1:"+strconv.Itoa(port), pool, adminTok, errorLog)
	if log := errorLog(); strings.Contains(log, "buffered to a temporary file") {
		t.Fatalf("nginx spooled an upload to its own disk before passing it on (proxy_request_buffering):\n%s", log)
	}
}

// TestCaddyExampleCarriesLargeResumableUploads does the same through
// deploy/caddy/Caddyfile: Caddy runs it as written, with its two
// placeholders set as compose.yaml sets them and a certificate given to
// the site (the example gets one from Let's Encrypt).
func TestCaddyExampleCarriesLargeResumableUploads(t *testing.T) {
	bin := systemBinary(t, "caddy")
	ferryAddr, adminTok := startFerry(t, nil)
	dir := t.TempDir()
	cert, key, pool := testbed.SelfSignedCert(t, dir)
	port := testbed.FreePort(t)

	site := readReplacing(t, "caddy/Caddyfile", map[string]string{
		"{$FERRY_SITE:ferry.example.com} {\n": "{$FERRY_SITE:ferry.example.com} {\n\ttls " + cert + " " + key + "\n",
	})
	// Global options for a test run: no admin endpoint, no port 80
	// redirect listener, state under dir, no HTTP/3 (UDP).
	global := "{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system " + filepath.Join(dir, "storage") +
		"\n\tservers {\n\t\tprotocols h1 h2\n\t}\n}\n\n"
	file := filepath.Join(dir, "Caddyfile")
	writeFile(t, file, global+site)
	env := []string{"FERRY_SITE=https://127.0.0.1:" + strconv.Itoa(port), "FERRY_UPSTREAMS=" + ferryAddr,
		"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	validate := exec.Command(bin, "validate", "--config", file, "--adapter", "caddyfile")
	validate.Env = append(os.Environ(), env...)
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate refuses the example: %v\n%s", err, out)
	}
	p, err := testbed.StartIn(dir, testbed.StartOpts{Name: "caddy", Bin: bin, Env: env,
		Args: []string{"run", "--config", file, "--adapter", "caddyfile"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := testbed.WaitTCP(p, "127.0.0.1:"+strconv.Itoa(port), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	uploadThroughProxy(t, "https://127.0.0.1:"+strconv.Itoa(port), pool, adminTok, p.LogTail)
}

// uploadThroughProxy creates a portal and a package and sends one file
// through the proxy at base the way tus clients do: a creation, a PATCH of
// 20 MiB, a HEAD to learn the offset (what a client does to resume), the
// rest, then the finalize. The server must hold the file whole.
func uploadThroughProxy(t *testing.T, base string, pool *x509.CertPool, adminTok string, proxyLog func() string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	do := func(method, url string, hdr map[string]string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\nproxy log:\n%s", method, url, err, proxyLog())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	want := func(resp *http.Response, body []byte, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("%s %s: %s (want %d): %s\nproxy log:\n%s", resp.Request.Method, resp.Request.URL, resp.Status, status, body, proxyLog())
		}
	}
	admin := map[string]string{"Authorization": "Bearer " + adminTok, "Content-Type": "application/json"}

	slug := "proxy-" + strconv.Itoa(mrand.IntN(1e9))
	resp, body := do("POST", base+"/api/v1/portals", admin, []byte(`{"name":"Through the proxy","slug":"`+slug+`"}`))
	want(resp, body, http.StatusCreated)
	resp, body = do("POST", base+"/p/"+slug+"/packages", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"name":"Day 1","sender_email":"dop@example.com"}`))
	want(resp, body, http.StatusCreated)
	var created struct {
		Package     struct{ ID string }
		UploadToken string `json:"upload_token"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}

	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(mrand.IntN(256))
	}
	sum := sha256.Sum256(data)
	b64 := base64.StdEncoding.EncodeToString
	tus := func(extra map[string]string) map[string]string {
		h := map[string]string{"Tus-Resumable": "1.0.0", "Authorization": "Bearer " + created.UploadToken}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	resp, body = do("POST", base+"/uploads/", tus(map[string]string{
		"Upload-Length":   strconv.Itoa(len(data)),
		"Upload-Metadata": "relativePath " + b64([]byte("day1/clip.mov")) + ",filename " + b64([]byte("clip.mov")),
	}), nil)
	want(resp, body, http.StatusCreated)
	loc := resp.Header.Get("Location")
	// The client must be sent back through the proxy, on the scheme it
	// used: an http:// Location is one a browser on https refuses.
	if !strings.HasPrefix(loc, base+"/uploads/") {
		t.Fatalf("the upload's Location %q does not lead back through the proxy at %s", loc, base)
	}
	first := 20 << 20 // past nginx's 1 MiB default and the example's 16 MiB outside /uploads/
	patch := func(off, end int) {
		t.Helper()
		resp, body := do("PATCH", loc, tus(map[string]string{"Upload-Offset": strconv.Itoa(off),
			"Content-Type": "application/offset+octet-stream"}), data[off:end])
		want(resp, body, http.StatusNoContent)
		if got := resp.Header.Get("Upload-Offset"); got != strconv.Itoa(end) {
			t.Fatalf("after PATCH %d..%d the server is at offset %s", off, end, got)
		}
	}
	patch(0, first)
	resp, body = do("HEAD", loc, tus(nil), nil)
	want(resp, body, http.StatusOK)
	if got := resp.Header.Get("Upload-Offset"); got != strconv.Itoa(first) {
		t.Fatalf("HEAD to resume: offset %s, want %d", got, first)
	}
	patch(first, len(data))

	resp, body = do("POST", base+"/p/"+slug+"/packages/"+created.Package.ID+"/finalize", tus(nil), nil)
	if resp.StatusCode >= 300 {
		want(resp, body, http.StatusOK)
	}
	resp, body = do("GET", base+"/api/v1/packages/"+created.Package.ID, admin, nil)
	want(resp, body, http.StatusOK)
	var got struct {
		Package struct {
			State string
			Files []struct {
				Path, State, SHA256 string
				Size                int64
			}
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Package.State != "finalized" || len(got.Package.Files) != 1 {
		t.Fatalf("package after the upload: %s", body)
	}
	f := got.Package.Files[0]
	if f.Path != "day1/clip.mov" || f.State != "complete" || f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the file arrived as %+v, want day1/clip.mov complete, %d bytes, sha256 %x", f, len(data), sum)
	}
}

// startFerry runs the real server (ferry serve's Open and Serve) on a free
// loopback port with an admin and an API token, its Config changed by edit
// (nil: none); it stops with the test.
func startFerry(t *testing.T, edit func(*config.Config)) (addr, adminToken string) {
	t.Helper()
	cfg := config.Default("")
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	cfg.DiskReserve = 0 // the test machine's free space is not what is tested
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := server.CreateUser(ctx, cfg, "ops@example.com", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := server.CreateExpiringAPIToken(ctx, cfg, "ops@example.com", "proxy test", 0)
	if err != nil {
		t.Fatal(err)
	}
	app, err := server.Open(ctx, cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- app.Serve(ctx, func(a string) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		app.Close()
	})
	select {
	case a := <-ready:
		return a, tok
	case err := <-done:
		t.Fatalf("ferry serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("ferry serve did not start in 30s")
	}
	return "", ""
}

// readReplacing reads an example and makes the replacements a test run
// needs; each must be found, so an example that changes shape fails here
// rather than being tested half-changed.
func readReplacing(t *testing.T, path string, repl map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, new := range repl {
		if !strings.Contains(s, old) {
			t.Fatalf("%s no longer contains %q: adapt the test to the example", path, old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	return s
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// systemBinary finds a Debian-installed server, also in the sbin
// directories a bare PATH lacks.
func systemBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := testbed.LookBinary(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	testbed.Missing(t, name, fmt.Sprintf("Debian's %s package", name))
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
