package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/s3"
	"github.com/ferryhq/ferry/internal/transfer/transfertest"
)

// benchTB lets testbed start peers outside a test.
type benchTB struct{}

func (benchTB) Helper()                   {}
func (benchTB) Logf(f string, a ...any)   { log.Printf(f, a...) }
func (benchTB) Skipf(f string, a ...any)  { log.Fatalf("SKIP: "+f, a...) }
func (benchTB) Fatalf(f string, a ...any) { log.Fatalf(f, a...) }

func benchS3(job Job, rounds int, contenders string) {
	srv := testbed.Versity(benchTB{})
	defer srv.Proc.Stop()
	bucket := srv.NewBucket(benchTB{})
	job.Endpoint, job.Region, job.AccessKey, job.SecretKey, job.Bucket = srv.Endpoint, srv.Region, srv.AccessKey, srv.SecretKey, bucket
	client := srv.Client()
	cleanup := func(key string) {
		_, _ = client.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	}
	log.Printf("S3 (Versity %s), %s, ferry %d x %s parts", srv.Endpoint, human(job.Size), job.Parallel, human(job.PartSize))
	child := func(name string) func() (float64, float64, string, error) {
		return func() (float64, float64, string, error) {
			j := job
			j.Key = "bench/" + name
			defer cleanup(j.Key)
			o, rss, err := runChildProcess(name, j)
			return o.Seconds, rss, o.Note, err
		}
	}
	var cs []Contender
	for _, c := range strings.Split(contenders, ",") {
		switch c {
		case "put":
			cs = append(cs, Contender{"single presigned PUT (ceiling)", child("s3-put")})
		case "ferry":
			cs = append(cs, Contender{"ferry s3", child("s3-ferry")})
		case "ferry4", "ferry16", "ferry16m", "ferry32m":
			// variants to choose the defaults: fewer/more parts in flight, bigger parts
			v := job
			switch c {
			case "ferry4":
				v.Parallel = 4
			case "ferry16":
				v.Parallel = 16
			case "ferry16m":
				v.PartSize = 16 << 20
			case "ferry32m":
				v.PartSize = 32 << 20
			}
			cs = append(cs, Contender{fmt.Sprintf("ferry s3 %d x %s", v.Parallel, human(v.PartSize)), func() (float64, float64, string, error) {
				j := v
				j.Key = "bench/" + c
				defer cleanup(j.Key)
				o, rss, err := runChildProcess("s3-ferry", j)
				return o.Seconds, rss, o.Note, err
			}})
		case "tm":
			cs = append(cs, Contender{"aws transfermanager 16MiB x 8", child("s3-tm")})
		case "rclone":
			rclone, err := testbed.LookBinary("rclone")
			if err != nil {
				log.Printf("  rclone: not installed (apt-get install rclone): %v", err)
				continue
			}
			cs = append(cs, Contender{"rclone copyto (best flags)", func() (float64, float64, string, error) {
				key := "bench/rclone"
				defer cleanup(key)
				env := []string{"RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_VERS_TYPE=s3", "RCLONE_CONFIG_VERS_PROVIDER=Other",
					"RCLONE_CONFIG_VERS_ACCESS_KEY_ID=" + srv.AccessKey, "RCLONE_CONFIG_VERS_SECRET_ACCESS_KEY=" + srv.SecretKey,
					"RCLONE_CONFIG_VERS_ENDPOINT=" + srv.Endpoint, "RCLONE_CONFIG_VERS_REGION=" + srv.Region,
					"RCLONE_CONFIG_VERS_FORCE_PATH_STYLE=true"}
				secs, rss, err := runExternal("rclone", env, rclone, "copyto", job.File, "vers:"+bucket+"/"+key,
					"--s3-upload-concurrency", "4", "--s3-chunk-size", "16M", "--s3-disable-checksum", "--expect-continue-timeout", "0")
				return secs, rss, "", err
			}})
		default:
			log.Fatalf("unknown contender %q", c)
		}
	}
	ms := measure(job.Size, rounds, cs)
	report("S3: "+human(job.Size)+" to Versity", ms, [][2]string{
		{"ferry s3", "rclone copyto (best flags)"},
		{"ferry s3", "single presigned PUT (ceiling)"},
		{"ferry s3", "aws transfermanager 16MiB x 8"},
	})
}

func presigner(job Job) *transfertest.S3Presigner {
	return &transfertest.S3Presigner{Endpoint: job.Endpoint, Region: job.Region, AccessKey: job.AccessKey, SecretKey: job.SecretKey, Bucket: job.Bucket}
}

func runChild(name, spec string) {
	if path := os.Getenv("FERRY_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + name)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	var job Job
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		log.Fatalf("child %s: bad spec: %v", name, err)
	}
	start := time.Now()
	note, sum, err := childRun(name, job)
	o := Outcome{Seconds: time.Since(start).Seconds(), Note: note, SHA256: sum}
	if err != nil {
		o.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(o)
}

func childRun(name string, job Job) (note, sum string, err error) {
	ctx := context.Background()
	switch name {
	case "s3-put":
		f, err := os.Open(job.File)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		u, err := presigner(job).Presign(ctx, http.MethodPut, job.Key, nil, "")
		if err != nil {
			return "", "", err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u, f)
		req.ContentLength = job.Size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", "", err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", "", fmt.Errorf("PUT: HTTP %d", resp.StatusCode)
		}
		return "", "", nil
	case "s3-ferry":
		src, err := transfer.OpenFile(job.File)
		if err != nil {
			return "", "", err
		}
		defer src.Close()
		up := s3.New(transfer.Options{PartSize: job.PartSize, Parallelism: job.Parallel, Logger: childLogger()})
		start := time.Now()
		var sentAll time.Duration
		res, err := up.Upload(ctx, src, presigner(job).Target(job.Key, nil), transfer.Params{Progress: func(n int64) {
			if n == job.Size {
				sentAll = time.Since(start)
			}
		}})
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%d parts (bytes sent at %.2fs, then complete), checked %v", res.Parts, sentAll.Seconds(), res.Checked), res.SHA256, nil
	case "s3-tm":
		f, err := os.Open(job.File)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		client := awss3.New(awss3.Options{BaseEndpoint: aws.String(job.Endpoint), Region: job.Region, UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(job.AccessKey, job.SecretKey, ""),
			HTTPClient:  &http.Client{Transport: timedTransport{http.DefaultTransport}}})
		tm := transfermanager.New(client, func(o *transfermanager.Options) {
			o.PartSizeBytes = 16 << 20
			o.Concurrency = 8
		})
		if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(job.Bucket), Key: aws.String(job.Key), Body: f}); err != nil {
			return "", "", err
		}
		return "", "", nil
	}
	return childRunOther(name, job)
}

func childLogger() *slog.Logger {
	if os.Getenv("FERRY_BENCH_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// timedTransport logs how long CompleteMultipartUpload takes (FERRY_BENCH_DEBUG),
// to split a contender's time between parts and the server's assembly.
type timedTransport struct{ rt http.RoundTripper }

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if os.Getenv("FERRY_BENCH_DEBUG") == "" || r.Method != http.MethodPost || !r.URL.Query().Has("uploadId") {
		return t.rt.RoundTrip(r)
	}
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	log.Printf("  transfermanager: complete took %.2fs", time.Since(start).Seconds())
	return resp, err
}
