package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/testbed"
)

// TestServeWithS3StoreReceivesAParallelSendAndDeliversIt runs `ferry serve --demo --store
// s3://...` as its own process on the Versity gateway, with the credentials in the AWS
// environment variables as an operator sets them: `ferry send --wait` of a file large enough
// to go as parallel partials exits 0 once it is delivered into iconik, the partials' bytes are
// objects in the bucket (none in the data directory), and no log line carries the secret key.
func TestServeWithS3StoreReceivesAParallelSendAndDeliversIt(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	old := waitPoll
	waitPoll = 200 * time.Millisecond
	defer func() { waitPoll = old }()

	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	data := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFerryProcess$", "--", "serve", "--demo", "--data", data,
		"--addr", "127.0.0.1:0", "--log-level", "debug",
		"--store", "s3://"+bucket+"/ferry/packages?endpoint="+srv.Endpoint+"&region="+srv.Region)
	cmd.Env = append(os.Environ(), helperEnv+"=1", "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey, "AWS_CA_BUNDLE=")
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	portalURL := ""
	for portalURL == "" {
		line, err := out.ReadString('\n')
		if err != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("ferry serve --store s3://... ended before printing its portal: %v\n%s", err, b)
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "portal:" {
			portalURL = f[1]
		}
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(logf) }()

	dir := t.TempDir()
	big := make([]byte, 65<<20) // past ferry send's 64 MiB: sent as parallel partials
	_, _ = rand.Read(big)
	if err := os.MkdirAll(filepath.Join(dir, "proj"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proj", "big.mov"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proj", "notes.txt"), []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCaptured(t, "send", filepath.Join(dir, "proj"), "--to", portalURL, "--email", "me@example.com", "--name", "S3 day", "--wait")
	if code != 0 || !strings.Contains(stderr, "delivered, 2 of 2 files delivered") {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("send --wait to a server on the S3 store: exit %d, stderr:\n%s\nserver log:\n%s", code, stderr, b)
	}

	// The bytes live in the bucket: one object per partial, the final read across them.
	var bins int
	var binBytes int64
	pg := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("ferry/packages/")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".bin") {
				bins++
				binBytes += aws.ToInt64(o.Size)
			}
		}
	}
	if bins < 3 || binBytes != int64(len(big))+6 {
		t.Fatalf("the bucket holds %d data objects of %d bytes; want the partials of big.mov and notes.txt, %d bytes", bins, binBytes, len(big)+6)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "uploads")); len(ents) > 0 {
		t.Fatalf("with --store s3://..., the data directory's uploads folder holds %d entries", len(ents))
	}

	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 {
		t.Fatalf("the server logged nothing: the secret check below would prove nothing")
	}
	if strings.Contains(string(log), srv.SecretKey) {
		t.Fatalf("the server's log contains the S3 secret key")
	}
}
