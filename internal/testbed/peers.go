package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a running Versity S3 gateway (a real S3 server: SigV4,
// presigned URLs, multipart, EntityTooSmall).
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Root      string // the posix backend's directory: bucket/key on disk
	Proc      *Process
}

var versity shared[*S3Server]

// Versity returns the test binary's Versity S3 gateway, starting it on first use.
func Versity(t TB) *S3Server {
	t.Helper()
	bin := Binary(t, "versitygw")
	return versity.get(t, func() (*S3Server, error) {
		dir, err := peerDir("versity")
		if err != nil {
			return nil, err
		}
		root, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
		for _, d := range []string{root, meta} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		port := freePortNoT()
		s := &S3Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: "us-east-1",
			AccessKey: "ferrytest", SecretKey: "ferrytestsecret", Root: root}
		p, err := StartIn(dir, StartOpts{Name: "versitygw", Bin: bin,
			Env:  []string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey},
			Args: []string{"-q", "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", "--sidecar", meta, root}})
		if err != nil {
			return nil, err
		}
		s.Proc = p
		return s, WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second)
	})
}

// Client returns an aws-sdk-go-v2 S3 client for the server (path-style).
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *S3Server) NewBucket(t TB) string {
	t.Helper()
	name := "ferry-" + randHex(6)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testbed: create bucket %s: %v", name, err)
	}
	return name
}

// GCSServer is a running fake-gcs-server (the GCS JSON and resumable upload API).
type GCSServer struct {
	URL  string // http://127.0.0.1:PORT
	Root string
	Proc *Process
}

var fakeGCS shared[*GCSServer]

// FakeGCS returns the test binary's fake-gcs-server. It holds resumable uploads
// in memory: keep objects small (TESTBED.md).
func FakeGCS(t TB) *GCSServer {
	t.Helper()
	bin := Binary(t, "fake-gcs-server")
	return fakeGCS.get(t, func() (*GCSServer, error) {
		dir, err := peerDir("gcs")
		if err != nil {
			return nil, err
		}
		root := filepath.Join(dir, "data")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		port := freePortNoT()
		host := fmt.Sprintf("127.0.0.1:%d", port)
		p, err := StartIn(dir, StartOpts{Name: "fake-gcs-server", Bin: bin, Args: []string{
			"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port), "-backend", "filesystem",
			"-filesystem-root", root, "-public-host", host, "-external-url", "http://" + host, "-log-level", "warn"}})
		if err != nil {
			return nil, err
		}
		s := &GCSServer{URL: "http://" + host, Root: root, Proc: p}
		return s, WaitHTTP(p, s.URL+"/storage/v1/b", 30*time.Second)
	})
}

// AzureServer is a running Azurite blob service.
type AzureServer struct {
	Account    string
	AccountKey string // Azurite's well-known development key
	BlobURL    string // http://127.0.0.1:PORT/devstoreaccount1
	Proc       *Process
}

var azurite shared[*AzureServer]

// Azurite returns the test binary's Azurite blob server.
func Azurite(t TB) *AzureServer {
	t.Helper()
	bin := Binary(t, "azurite-blob")
	return azurite.get(t, func() (*AzureServer, error) {
		dir, err := peerDir("azurite")
		if err != nil {
			return nil, err
		}
		port := freePortNoT()
		p, err := StartIn(dir, StartOpts{Name: "azurite", Bin: bin, Args: []string{
			"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--location", filepath.Join(dir, "data"),
			"--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"}})
		if err != nil {
			return nil, err
		}
		s := &AzureServer{Account: "devstoreaccount1",
			AccountKey: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
			BlobURL:    fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", port), Proc: p}
		return s, WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	})
}

// MailServer is a running Mailpit: SMTP in, REST API to read what arrived.
type MailServer struct {
	SMTPHost string
	SMTPPort int
	APIURL   string // http://127.0.0.1:PORT (GET /api/v1/messages, /api/v1/search?query=)
	Proc     *Process
}

var mailpit shared[*MailServer]

// Mailpit returns the test binary's Mailpit server.
func Mailpit(t TB) *MailServer {
	t.Helper()
	bin := Binary(t, "mailpit")
	return mailpit.get(t, func() (*MailServer, error) {
		dir, err := peerDir("mailpit")
		if err != nil {
			return nil, err
		}
		smtpPort, httpPort := freePortNoT(), freePortNoT()
		p, err := StartIn(dir, StartOpts{Name: "mailpit", Bin: bin, Args: []string{
			"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
			"--database", filepath.Join(dir, "mail.db"), "--disable-version-check",
			"--smtp-auth-accept-any", "--smtp-auth-allow-insecure"}})
		if err != nil {
			return nil, err
		}
		s := &MailServer{SMTPHost: "127.0.0.1", SMTPPort: smtpPort, APIURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Proc: p}
		if err := WaitHTTP(p, s.APIURL+"/api/v1/messages", 30*time.Second); err != nil {
			return nil, err
		}
		return s, WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", smtpPort), 10*time.Second)
	})
}

// PostgresServer is a running PostgreSQL cluster with a superuser "postgres"
// and trust authentication on 127.0.0.1.
type PostgresServer struct {
	Host string
	Port int
	Proc *Process
}

// DSN returns a connection string for database db.
func (s *PostgresServer) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", s.Host, s.Port, db)
}

var postgres shared[*PostgresServer]

// Postgres returns the test binary's PostgreSQL server. As root it runs the
// server as "nobody", since PostgreSQL refuses to run as root.
func Postgres(t TB) *PostgresServer {
	t.Helper()
	initdb := Binary(t, "initdb")
	pgBin := filepath.Dir(initdb)
	if resolved, err := filepath.EvalSymlinks(initdb); err == nil {
		pgBin = filepath.Dir(resolved)
	}
	return postgres.get(t, func() (*PostgresServer, error) {
		dir, err := peerDir("pg")
		if err != nil {
			return nil, err
		}
		var cred *syscall.Credential
		if os.Getuid() == 0 {
			cred = &syscall.Credential{Uid: 65534, Gid: 65534}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				return nil, err
			}
		}
		data := filepath.Join(dir, "data")
		cmd := exec.Command(filepath.Join(pgBin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, out)
		}
		port := freePortNoT()
		p, err := StartIn(dir, StartOpts{Name: "postgres", Bin: filepath.Join(pgBin, "postgres"), As: cred, Args: []string{
			"-D", data, "-k", dir, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"}})
		if err != nil {
			return nil, err
		}
		s := &PostgresServer{Host: "127.0.0.1", Port: port, Proc: p}
		if err := WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
			return nil, err
		}
		return s, s.waitReady(30 * time.Second)
	})
}

// waitReady waits until the server answers a query: PostgreSQL listens
// before its startup is over, and refuses connections until then ("the
// database system is starting up").
func (s *PostgresServer) waitReady(limit time.Duration) error {
	psql, err := LookBinary("psql")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		out, err := exec.Command(psql, s.DSN("postgres"), "-Atc", "SELECT 1").CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not answer within %v: %v: %s", limit, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateDatabase creates a fresh database and returns its DSN.
func (s *PostgresServer) CreateDatabase(t TB) string {
	t.Helper()
	name := "ferry_" + randHex(6)
	psql, err := LookBinary("psql")
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	out, err := exec.Command(psql, s.DSN("postgres"), "-c", "CREATE DATABASE "+name).CombinedOutput()
	if err != nil {
		t.Fatalf("testbed: create database: %v: %s", err, out)
	}
	return s.DSN(name)
}

// Chromium returns the path of Debian's chromium, for chromedp.
func Chromium(t TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := LookBinary(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium", "apt-get install chromium")
	return ""
}

// NodeModules returns the directory holding the npm peers (tus-js-client, azurite).
func NodeModules(t TB) string {
	t.Helper()
	d := filepath.Join(CacheDir(), "node", "node_modules")
	if _, err := os.Stat(filepath.Join(d, "tus-js-client")); err != nil {
		Missing(t, "tus-js-client", "npm peers not installed in "+d)
	}
	return d
}

func freePortNoT() int {
	p := FreePort(panicTB{})
	return p
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// panicTB lets helpers that take a TB run where no test is at hand.
type panicTB struct{}

func (panicTB) Helper()                   {}
func (panicTB) Logf(string, ...any)       {}
func (panicTB) Skipf(f string, a ...any)  { panic(fmt.Sprintf(f, a...)) }
func (panicTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (panicTB) String() string            { return strings.TrimSpace("panicTB") }
