package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
)

type config struct {
	files    int
	fileSize int64
	streams  int
	big      int64
	ferry    string
	dir      string
	jsonPath string
	keep     bool
}

func main() {
	var c config
	flag.IntVar(&c.files, "files", 64, "files uploaded and delivered per configuration")
	flag.Int64Var(&c.fileSize, "file-size", 8<<20, "bytes per file")
	flag.IntVar(&c.streams, "streams", 8, "uploads in flight at once")
	flag.Int64Var(&c.big, "big", 1<<30, "bytes of the one upload sent to the S3 store and to local disk")
	flag.StringVar(&c.ferry, "ferry", "", "ferry binary (default: go build ./cmd/ferry)")
	flag.StringVar(&c.dir, "dir", "", "work directory (default: a new temp dir, removed afterwards)")
	flag.StringVar(&c.jsonPath, "json", "", "also write the figures to this file as JSON (the shape of bench/internal/result), for bench/run")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// metric and output follow bench/internal/result's JSON.
type metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

type output struct {
	Bench   string   `json:"bench"`
	Metrics []metric `json:"metrics"`
	Notes   []string `json:"notes,omitempty"`
}

func run(c config) error {
	if c.dir == "" {
		d, err := os.MkdirTemp("", "ferry-scale-")
		if err != nil {
			return err
		}
		c.dir = d
		if !c.keep {
			defer os.RemoveAll(d)
		}
	}
	if c.ferry == "" {
		c.ferry = filepath.Join(c.dir, "ferry")
		b := exec.Command("go", "build", "-o", c.ferry, "./cmd/ferry")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building ferry: %w", err)
		}
	}
	out := &output{Bench: "scale"}
	help, _ := exec.Command(c.ferry, "serve", "--help").CombinedOutput()
	hasStore := bytes.Contains(help, []byte("--store"))

	pg := testbed.Postgres(panicTB{})
	emu, err := startEmulator(c)
	if err != nil {
		return err
	}
	defer emu.stop()

	var s3 *testbed.S3Server
	var store string
	if hasStore {
		s3 = testbed.Versity(panicTB{})
		bucket := s3.NewBucket(panicTB{})
		store = "s3://" + bucket + "/ferry?" + url.Values{"endpoint": {s3.Endpoint}, "region": {s3.Region}}.Encode()
		os.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
		os.Setenv("AWS_REGION", s3.Region)
	} else {
		out.Notes = append(out.Notes, "ferry serve has no --store in this build: replicas share one local data directory (one machine only), and the S3-vs-disk comparison was not run")
	}
	key := make([]byte, 32)
	rand.Read(key)
	os.Setenv("FERRY_SECRET_KEY", hex.EncodeToString(key))
	os.Unsetenv("AWS_CA_BUNDLE")

	fmt.Printf("%-44s %12s %12s\n", "configuration", "ingest MB/s", "deliver MB/s")
	rates := map[int][2]float64{}
	for _, n := range []int{1, 2} {
		cl, err := startCluster(c, pg.CreateDatabase(panicTB{}), store, n, emu, fmt.Sprintf("r%d", n))
		if err != nil {
			return err
		}
		in, del, err := cl.measure(c)
		cl.stop()
		if err != nil {
			return fmt.Errorf("%d replica(s): %w", n, err)
		}
		rates[n] = [2]float64{in, del}
		name := fmt.Sprintf("%d replica(s)", n)
		fmt.Printf("%-44s %12.1f %12.1f\n", name, in, del)
		out.Metrics = append(out.Metrics, metric{"ingest/" + name, in, "MB/s"}, metric{"delivery/" + name, del, "MB/s"})
	}
	fmt.Printf("two replicas / one: ingest %.2fx, delivery %.2fx\n", rates[2][0]/rates[1][0], rates[2][1]/rates[1][1])
	out.Metrics = append(out.Metrics, metric{"ingest/two replicas / one", rates[2][0] / rates[1][0], "x"},
		metric{"delivery/two replicas / one", rates[2][1] / rates[1][1], "x"})

	if hasStore {
		var disk, obj float64
		for _, s := range []struct {
			name, store string
			dst         *float64
		}{{"local disk", "", &disk}, {"S3 store (Versity)", store, &obj}} {
			cl, err := startCluster(c, pg.CreateDatabase(panicTB{}), s.store, 1, emu, "big-"+strings.Fields(s.name)[0])
			if err != nil {
				return err
			}
			mbs, err := cl.bigUpload(c)
			cl.stop()
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			*s.dst = mbs
			fmt.Printf("%-44s %12.1f\n", fmt.Sprintf("one %d MiB upload to %s", c.big>>20, s.name), mbs)
			out.Metrics = append(out.Metrics, metric{"big upload/" + s.name, mbs, "MB/s"})
		}
		fmt.Printf("S3 store / local disk: %.2fx\n", obj/disk)
		out.Metrics = append(out.Metrics, metric{"big upload/S3 store / local disk", obj / disk, "x"})
	}
	if c.jsonPath != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(c.jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, n := range out.Notes {
		fmt.Println("note:", n)
	}
	return nil
}

// ---- processes ----

type proc struct{ cmd *exec.Cmd }

func start(c config, log string, args ...string) (*proc, error) {
	f, err := os.OpenFile(filepath.Join(c.dir, log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.ferry, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd: cmd}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(u string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", u)
}

type emulatorProc struct {
	*proc
	url, appID, token, storage string
}

func startEmulator(c config) (*emulatorProc, error) {
	addr, dir := freeAddr(), filepath.Join(c.dir, "iconik")
	p, err := start(c, "iconik.log", "iconik-emulator", "--addr", addr, "--data", dir)
	if err != nil {
		return nil, err
	}
	e := &emulatorProc{proc: p, url: "http://" + addr}
	if err := waitHTTP(e.url + "/"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		return nil, err
	}
	var creds []struct {
		Name  string `json:"name"`
		AppID string `json:"app_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, err
	}
	for _, cr := range creds {
		if cr.Name == "admin" {
			e.appID, e.token = cr.AppID, cr.Token
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/API/files/v1/storages/?purpose=FILES&method=S3", nil)
	req.Header.Set("App-ID", e.appID)
	req.Header.Set("Auth-Token", e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Objects []struct {
			ID string `json:"id"`
		} `json:"objects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Objects) == 0 {
		return nil, fmt.Errorf("emulator storages: %v", err)
	}
	e.storage = st.Objects[0].ID
	return e, nil
}

// ---- a cluster of replicas behind a round-robin proxy ----

type cluster struct {
	replicas []*proc
	proxy    *http.Server
	base     string
	token    string
	emu      *emulatorProc
}

func startCluster(c config, dsn, store string, n int, emu *emulatorProc, name string) (*cluster, error) {
	dir := filepath.Join(c.dir, name)
	admin := func(args ...string) ([]byte, error) {
		cmd := exec.Command(c.ferry, append(append([]string{"admin"}, args...), "--data", filepath.Join(dir, "admin"), "--database-url", dsn)...)
		cmd.Stdin = strings.NewReader("scale-bench-password\n")
		return cmd.Output()
	}
	if _, err := admin("create-user", "--email", "bench@scale.test", "--password-file", "-"); err != nil {
		return nil, fmt.Errorf("create-user: %w", err)
	}
	tok, err := admin("create-token", "--email", "bench@scale.test")
	if err != nil {
		return nil, fmt.Errorf("create-token: %w", err)
	}
	cl := &cluster{token: strings.TrimSpace(string(tok)), emu: emu}
	var targets []*url.URL
	for i := range n {
		addr := freeAddr()
		args := []string{"serve", "--database-url", dsn, "--addr", addr, "--log-level", "warn", "--replicas", strconv.Itoa(n)}
		if store != "" {
			args = append(args, "--data", filepath.Join(dir, fmt.Sprintf("replica-%d", i)), "--store", store)
		} else {
			args = append(args, "--data", filepath.Join(dir, "shared"))
		}
		p, err := start(c, name+".log", args...)
		if err != nil {
			return nil, err
		}
		cl.replicas = append(cl.replicas, p)
		if err := waitHTTP("http://" + addr + "/healthz"); err != nil {
			cl.stop()
			return nil, err
		}
		u, _ := url.Parse("http://" + addr)
		targets = append(targets, u)
	}
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(targets))
	for i, u := range targets {
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cl.proxy = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[int(next.Add(1))%len(proxies)].ServeHTTP(w, r)
	})}
	go cl.proxy.Serve(ln)
	cl.base = "http://" + ln.Addr().String()
	return cl, nil
}

func (cl *cluster) stop() {
	if cl.proxy != nil {
		cl.proxy.Close()
	}
	for _, p := range cl.replicas {
		p.stop()
	}
}

func (cl *cluster) do(method, p, bearer string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, cl.base+p, body)
	req.Header.Set("Content-Type", "application/json")
	if bearer == "" {
		bearer = cl.token
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, p, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type created struct {
	Package struct {
		ID string `json:"id"`
	} `json:"package"`
	UploadToken string `json:"upload_token"`
}

// tusUpload sends one file in one creation-with-upload request, declaring
// its SHA-256 (ferry checks it on arrival).
func tusUpload(base, token, rel string, data []byte) error {
	sum := sha256.Sum256(data)
	var meta []string
	for k, v := range map[string]string{"package_token": token, "filename": filepath.Base(rel), "relativePath": rel, "sha256": hex.EncodeToString(sum[:])} {
		meta = append(meta, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req, _ := http.NewRequest("POST", base+"/uploads/", bytes.NewReader(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Upload-Metadata", strings.Join(meta, ","))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("uploading %s: %d %s", rel, resp.StatusCode, b)
	}
	return nil
}

// measure uploads c.files files through the proxy, c.streams at a time,
// into a package whose portal delivers to the emulator, then waits for the
// delivery: ingest MB/s from first byte to last upload, delivery MB/s from
// finalize to delivered.
func (cl *cluster) measure(c config) (ingest, delivery float64, err error) {
	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	if err := cl.do("POST", "/api/v1/connections", "", map[string]any{"name": "emulator", "base_url": cl.emu.url, "app_id": cl.emu.appID,
		"token": cl.emu.token, "storage_id": cl.emu.storage}, &conn); err != nil {
		return 0, 0, err
	}
	slug := fmt.Sprintf("scale-%d", time.Now().UnixNano())
	if err := cl.do("POST", "/api/v1/portals", "", map[string]any{"name": slug, "slug": slug, "active": true, "connection_ids": []string{conn.Connection.ID}}, nil); err != nil {
		return 0, 0, err
	}
	var p created
	if err := cl.do("POST", "/p/"+slug+"/packages", "", map[string]any{"name": "Scale", "sender_email": "bench@example.com"}, &p); err != nil {
		return 0, 0, err
	}
	data := make([]byte, c.fileSize)
	rand.Read(data)
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c.files)
	sem := make(chan struct{}, c.streams)
	for i := range c.files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Each file differs in its first bytes, so no two share a SHA-256.
			b := append([]byte(fmt.Sprintf("%08d", i)), data[8:]...)
			if err := tusUpload(cl.base, p.UploadToken, fmt.Sprintf("d%d/f%04d.bin", i%4, i), b); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	total := float64(c.fileSize) * float64(c.files)
	ingest = total / 1e6 / time.Since(begin).Seconds()
	// Deliveries start as files complete; the delivery figure counts from
	// finalize, when the last file's job is queued at the latest.
	if err := cl.do("POST", "/p/"+slug+"/packages/"+p.Package.ID+"/finalize", p.UploadToken, nil, nil); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(30 * time.Minute)
	for {
		var list struct {
			Deliveries []struct {
				State string `json:"state"`
			} `json:"deliveries"`
		}
		if err := cl.do("GET", "/api/v1/packages/"+p.Package.ID+"/deliveries", "", nil, &list); err != nil {
			return 0, 0, err
		}
		if len(list.Deliveries) == 1 {
			switch list.Deliveries[0].State {
			case "delivered":
				return ingest, total / 1e6 / time.Since(begin).Seconds(), nil
			case "failed", "partially failed":
				return 0, 0, fmt.Errorf("delivery %s", list.Deliveries[0].State)
			}
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("delivery did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bigUpload sends one c.big upload (a portal without connections) in one
// request and returns MB/s.
func (cl *cluster) bigUpload(c config) (float64, error) {
	slug := fmt.Sprintf("big-%d", time.Now().UnixNano())
	if err := cl.do("POST", "/api/v1/portals", "", map[string]any{"name": slug, "slug": slug, "active": true}, nil); err != nil {
		return 0, err
	}
	var p created
	if err := cl.do("POST", "/p/"+slug+"/packages", "", map[string]any{"name": "Big", "sender_email": "bench@example.com"}, &p); err != nil {
		return 0, err
	}
	data := make([]byte, c.big)
	rand.Read(data)
	begin := time.Now()
	if err := tusUpload(cl.base, p.UploadToken, "big.bin", data); err != nil {
		return 0, err
	}
	return float64(c.big) / 1e6 / time.Since(begin).Seconds(), nil
}

// panicTB lets testbed helpers run outside a test.
type panicTB struct{}

func (panicTB) Helper()                   {}
func (panicTB) Logf(string, ...any)       {}
func (panicTB) Skipf(f string, a ...any)  { panic(fmt.Sprintf(f, a...)) }
func (panicTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
