package replicatest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read River's jobs on failure

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/testbed/child"
)

var (
	bigSize  = flag.Int64("replicas.big", 200<<20, "bytes of the upload whose PATCH requests alternate between the replicas")
	packages = flag.Int("replicas.packages", 20, "packages uploaded across both replicas and delivered while one is killed")
	// sharedDir is for working on this harness without the S3 store: both
	// replicas on one local data directory (one machine only).
	sharedDir = flag.Bool("replicas.shared-dir", false, "run both replicas on one local data directory instead of the S3 store (harness development only)")
)

var ferryBin string

// TestMain builds the ferry binary once.
func TestMain(m *testing.M) {
	flag.Parse()
	child.Main(m, &ferryBin)
}

// cluster is two replicas on one database and one bucket, an iconik
// emulator in its own process, and a round-robin proxy in front.
type cluster struct {
	t        *testing.T
	logPath  string
	replicas []*replica
	proxy    *httptest.Server
	api      *child.API // through the proxy
	emu      *child.Proc
	emuDir   string
	emuURL   string
	dsn      string
	ic       *iconik.Client
	admin    struct{ AppID, Token string }
	storage  string
}

type replica struct {
	base string
	proc *child.Proc
	dead atomic.Bool
}

// storeFlagKnown says whether this build of ferry serve has the S3 upload
// store (--store); without it two replicas cannot share uploads.
func storeFlagKnown(t *testing.T) bool {
	out, err := exec.Command(ferryBin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("ferry serve --help: %v: %s", err, out)
	}
	return bytes.Contains(out, []byte("--store"))
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs two real ferry replicas, PostgreSQL, the S3 gateway and an iconik emulator")
	}
	if !*sharedDir && !storeFlagKnown(t) {
		t.Skip("ferry serve has no --store flag in this build: replicas need the S3 upload store to share uploads (uploads on one replica's local disk cannot be read by another)")
	}
	dir := t.TempDir()
	c := &cluster{t: t, logPath: filepath.Join(dir, "processes.log")}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(c.logPath)
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, "Invalid data found") { // ffmpeg on test bytes that are no video
					keep = append(keep, l)
				}
			}
			b = []byte(strings.Join(keep, "\n"))
			t.Logf("process logs (last 12000 bytes):\n%s", b[max(0, len(b)-12000):])
		}
	})
	dsn := testbed.Postgres(t).CreateDatabase(t)
	c.dsn = dsn
	s3 := testbed.Versity(t)
	bucket := s3.NewBucket(t)
	store := "s3://" + bucket + "/ferry?" + url.Values{"endpoint": {s3.Endpoint}, "region": {s3.Region}}.Encode()

	// What every replica shares besides the database: the master key (it
	// seals iconik tokens) and the bucket's credentials. Children inherit
	// the environment.
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv("FERRY_SECRET_KEY", hex.EncodeToString(key))
	t.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	t.Setenv("AWS_REGION", s3.Region)
	os.Unsetenv("AWS_CA_BUNDLE")

	// iconik in its own process, which the kill never touches; its latency
	// stretches the deliveries so the kill lands in the middle of them.
	c.emuDir = filepath.Join(dir, "iconik")
	e := child.StartEmulator(t, ferryBin, c.logPath, c.emuDir, "--latency", "30ms")
	c.emu, c.emuURL, c.ic, c.storage = e.Proc, e.URL, e.Client, e.S3Storage
	c.admin.AppID, c.admin.Token = e.AppID, e.Token

	token := child.AdminToken(t, ferryBin, "admin@replicas.test", "--data", filepath.Join(dir, "admin"), "--database-url", dsn)

	for i := range 2 {
		r := &replica{base: "http://" + child.FreeAddr(t)}
		args := []string{"serve", "--data", filepath.Join(dir, fmt.Sprintf("replica-%d", i)), "--store", store}
		if *sharedDir {
			args = []string{"serve", "--data", filepath.Join(dir, "shared")}
		}
		r.proc = child.Start(t, ferryBin, c.logPath, append(args,
			"--database-url", dsn, "--addr", strings.TrimPrefix(r.base, "http://"), "--log-level", "warn",
			"--replicas", "2", "--delivery-lease", "4s", "--delivery-index-grace", "500ms")...)
		child.WaitHTTP(t, r.base+"/healthz", r.proc)
		c.replicas = append(c.replicas, r)
	}
	c.proxy = httptest.NewServer(c.roundRobin())
	t.Cleanup(c.proxy.Close)
	c.api = &child.API{T: t, Base: c.proxy.URL, Token: token}
	return c
}

// roundRobin sends each request to the next live replica, as a load
// balancer without affinity would. The Host header stays the proxy's, so
// the upload URLs tus hands out point at the proxy.
func (c *cluster) roundRobin() http.Handler {
	var n atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(c.replicas))
	for i, r := range c.replicas {
		u, _ := url.Parse(r.base)
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for range len(c.replicas) {
			i := int(n.Add(1)) % len(c.replicas)
			if !c.replicas[i].dead.Load() {
				proxies[i].ServeHTTP(w, req)
				return
			}
		}
		http.Error(w, "no live replica", http.StatusBadGateway)
	})
}

// kill is SIGKILL of replica i; the proxy stops sending it requests.
func (c *cluster) kill(i int) {
	c.replicas[i].dead.Store(true)
	c.replicas[i].proc.Kill()
}

// content is the deterministic byte stream of the big upload.
func content(off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		x := uint64(off+int64(i)) * 0x9E3779B97F4A7C15
		b[i] = byte(x >> 56)
	}
	return b
}

type createdPackage struct {
	Package struct {
		ID string `json:"id"`
	} `json:"package"`
	UploadToken string `json:"upload_token"`
}

// TestAnUploadWhosePATCHesAlternateBetweenReplicasCompletes: one tus
// upload created on replica 0, its PATCH requests sent alternately to
// replica 0 and replica 1, ends complete with the SHA-256 of what was sent
// (declared on creation and checked by the replica that received the last
// byte).
func TestAnUploadWhosePATCHesAlternateBetweenReplicasCompletes(t *testing.T) {
	c := newCluster(t)
	c.api.Do("POST", "/api/v1/portals", "", map[string]any{"name": "Big", "slug": "big", "active": true}, nil)
	var p createdPackage
	c.api.Do("POST", "/p/big/packages", "", map[string]any{"name": "Big one", "sender_email": "big@example.com"}, &p)

	size := *bigSize
	const chunk = 16 << 20
	h := sha256.New()
	for off := int64(0); off < size; off += chunk {
		h.Write(content(off, min(chunk, size-off)))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	meta := []string{}
	for k, v := range map[string]string{"package_token": p.UploadToken, "filename": "big.bin", "relativePath": "big.bin", "sha256": sum} {
		meta = append(meta, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req, _ := http.NewRequest("POST", c.replicas[0].base+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", strings.Join(meta, ","))
	req.Header.Set("Authorization", "Bearer "+p.UploadToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating the upload: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	for i, off := 0, int64(0); off < size; i, off = i+1, off+chunk {
		r := c.replicas[i%2]
		req, _ := http.NewRequest("PATCH", r.base+loc.Path, bytes.NewReader(content(off, min(chunk, size-off))))
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Authorization", "Bearer "+p.UploadToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := strconv.FormatInt(min(off+chunk, size), 10)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != want {
			t.Fatalf("PATCH %d at offset %d on replica %d: %d offset %q (want %s): %s", i, off, i%2, resp.StatusCode, resp.Header.Get("Upload-Offset"), want, b)
		}
	}
	var got struct {
		Package struct {
			Files []struct {
				Path, SHA256, State string
				Size                int64
			} `json:"files"`
		} `json:"package"`
	}
	c.api.Do("GET", "/api/v1/packages/"+p.Package.ID, "", nil, &got)
	if len(got.Package.Files) != 1 {
		t.Fatalf("package holds %d files, want 1", len(got.Package.Files))
	}
	f := got.Package.Files[0]
	if f.State != "complete" || f.SHA256 != sum || f.Size != size {
		t.Fatalf("the upload ended %s with %d bytes and SHA-256 %s; sent %d bytes with %s", f.State, f.Size, f.SHA256, size, sum)
	}
}

// TestPackagesAcrossReplicasAreDeliveredOnceWhileOneIsKilled: packages
// uploaded through a round-robin proxy (every request may reach either
// replica) are delivered into iconik; one replica is killed with SIGKILL
// while deliveries run, and the other finishes every one of them. iconik's
// whole tenant then holds nothing twice.
func TestPackagesAcrossReplicasAreDeliveredOnceWhileOneIsKilled(t *testing.T) {
	c := newCluster(t)
	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	c.api.Do("POST", "/api/v1/connections", "", map[string]any{"name": "emulator", "base_url": c.emuURL, "app_id": c.admin.AppID,
		"token": c.admin.Token, "storage_id": c.storage}, &conn)
	c.api.Do("POST", "/api/v1/portals", "", map[string]any{"name": "Replicated", "slug": "replicated", "active": true, "connection_ids": []string{conn.Connection.ID}}, nil)

	var ids []string
	for i := range *packages {
		var p createdPackage
		// Every fifth package shares a name, so "(n)" is decided across replicas.
		name := fmt.Sprintf("Shoot %02d", i)
		if i%5 == 0 {
			name = "Shoot"
		}
		c.api.Do("POST", "/p/replicated/packages", "", map[string]any{"name": name, "sender_email": fmt.Sprintf("s%d@example.com", i)}, &p)
		for j := range 3 {
			child.TusUpload(t, c.proxy.URL, p.UploadToken, fmt.Sprintf("card %d/clip %d.bin", j%2, j), content(int64(i*1000+j), 4096+int64(j)*1000))
		}
		c.api.Do("POST", "/p/replicated/packages/"+p.Package.ID+"/finalize", p.UploadToken, nil, nil)
		ids = append(ids, p.Package.ID)
	}

	type delivery struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		PackageTitle string `json:"title"`
	}
	states := func() (delivered int, all []delivery) {
		for _, id := range ids {
			var list struct {
				Deliveries []delivery `json:"deliveries"`
			}
			c.api.Do("GET", "/api/v1/packages/"+id+"/deliveries", "", nil, &list)
			if len(list.Deliveries) != 1 {
				t.Fatalf("package %s has %d deliveries, want 1", id, len(list.Deliveries))
			}
			switch list.Deliveries[0].State {
			case "delivered":
				delivered++
			case "failed", "partially failed":
				t.Fatalf("delivery of package %s ended %s", id, list.Deliveries[0].State)
			}
			all = append(all, list.Deliveries[0])
		}
		return delivered, all
	}
	// Kill replica 0 once deliveries are under way and before they end.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		n, _ := states()
		if n == len(ids) {
			t.Fatalf("all %d deliveries ended before the kill: the test proved nothing (slow the emulator down)", n)
		}
		if n >= 1 {
			t.Logf("SIGKILL of replica 0 with %d of %d deliveries done", n, len(ids))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery ended in 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.kill(0)

	deadline = time.Now().Add(4 * time.Minute)
	var all []delivery
	for {
		var n int
		n, all = states()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			c.dumpJobs()
			t.Fatalf("replica 1 alone delivered %d of %d packages: %+v", n, len(ids), all)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var titles []string
	for _, d := range all {
		titles = append(titles, d.PackageTitle)
	}
	slices.Sort(titles)
	if len(slices.Compact(slices.Clone(titles))) != len(titles) {
		t.Fatalf("two packages share a collection: %q", titles)
	}

	// The whole tenant, from the state the emulator writes when it stops.
	c.emu.Stop(t)
	dups, err := emulator.DuplicatesIn(c.emuDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) != 0 {
		t.Fatalf("iconik holds duplicates:\n%s", strings.Join(dups, "\n"))
	}
}

// dumpJobs logs River's unfinished jobs, for a failure's story.
func (c *cluster) dumpJobs() {
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		c.t.Log(err)
		return
	}
	defer db.Close()
	rows, err := db.Query("SELECT id, kind, state, attempt, args::text, coalesce(errors::text, '') FROM river_job WHERE state <> 'completed' ORDER BY id")
	if err != nil {
		c.t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, attempt int
		var kind, state, args, errs string
		rows.Scan(&id, &kind, &state, &attempt, &args, &errs)
		c.t.Logf("river job %d %s %s attempt %d %s errors %.400s", id, kind, state, attempt, args, errs)
	}
}
