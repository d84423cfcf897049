package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/bench/internal/result"
	"github.com/ferryhq/ferry/bench/internal/wan"
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

// link is the network between ferry and the store: loopback (LAN) or the
// shaping proxy of bench/internal/wan (a server uploading to cloud storage
// over a long link, issue 12 section 4).
type link struct {
	name  string // "lan" or "wan"
	delay time.Duration
	rate  float64 // bytes/s per connection per direction
}

func (l link) String() string {
	if l.name == "lan" {
		return "loopback"
	}
	return fmt.Sprintf("a proxy adding %v each way, %.0f MB/s per connection", l.delay, l.rate/1e6)
}

// Contender names that ratios and bench/run's targets refer to.
const (
	nameFerry     = "ferry s3"
	namePut       = "single presigned PUT (ceiling)"
	nameOne       = "one stream (presigned PUT)" // the same over the WAN, where it is the slow reference
	nameTM        = "aws transfermanager 16MiB x 8"
	nameRclone    = "rclone copyto (best flags)"
	nameRcloneDef = "rclone copyto (default flags)"
)

func benchS3(job Job, rounds int, contenders string, l link, out *result.File) {
	srv := testbed.Versity(benchTB{})
	defer srv.Proc.Stop()
	bucket := srv.NewBucket(benchTB{})
	job.Endpoint, job.Region, job.AccessKey, job.SecretKey, job.Bucket = srv.Endpoint, srv.Region, srv.AccessKey, srv.SecretKey, bucket
	if l.name == "wan" {
		u, err := url.Parse(srv.Endpoint)
		if err != nil {
			log.Fatal(err)
		}
		// 4 MiB in flight per direction: above the 1 MB bandwidth-delay
		// product of one 20 MB/s, 50 ms RTT connection, as a TCP window is.
		p, err := wan.Start(u.Host, l.delay, l.rate, 4<<20)
		if err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		// Every contender, presigned or SigV4, signs the proxy's host: the
		// proxy forwards bytes, so the Host header the gateway checks is it.
		job.Endpoint = "http://" + p.Addr()
	}
	client := srv.Client()
	cleanup := func(key string) {
		_, _ = client.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	}
	inFlight := fmt.Sprint(job.Parallel)
	if job.Parallel == 0 {
		d := transfer.Options{}.WithDefaults()
		inFlight = fmt.Sprintf("%d-%d (adaptive)", d.Parallelism, d.MaxParallelism)
	}
	log.Printf("S3 (Versity %s) over %s, %s, ferry %s x %s parts", srv.Endpoint, l, human(job.Size), inFlight, human(job.PartSize))
	child := func(name string) func() (float64, float64, string, error) {
		return func() (float64, float64, string, error) {
			j := job
			j.Key = "bench/" + name
			defer cleanup(j.Key)
			o, rss, err := runChildProcess(name, j)
			return o.Seconds, rss, o.Note, err
		}
	}
	ferryVariant := func(c string, v Job) Contender {
		inFlight := fmt.Sprint(v.Parallel)
		if v.Parallel == 0 {
			inFlight = "adaptive"
		}
		return Contender{Name: fmt.Sprintf("ferry s3 %s x %s", inFlight, human(v.PartSize)), Streams: v.Parallel, Run: func() (float64, float64, string, error) {
			j := v
			j.Key = "bench/" + strings.ReplaceAll(c, ":", "-")
			defer cleanup(j.Key)
			o, rss, err := runChildProcess("s3-ferry", j)
			return o.Seconds, rss, o.Note, err
		}}
	}
	rclone := func(name string, flags ...string) (Contender, bool) {
		bin, err := testbed.LookBinary("rclone")
		if err != nil {
			log.Printf("  rclone: not installed (apt-get install rclone): %v", err)
			out.Note(name + ": not run: rclone not installed")
			return Contender{}, false
		}
		// rclone's default --s3-upload-concurrency is 4.
		streams := 4
		for i, f := range flags {
			if f == "--s3-upload-concurrency" {
				streams, _ = strconv.Atoi(flags[i+1])
			}
		}
		return Contender{Name: name, Streams: streams, Run: func() (float64, float64, string, error) {
			key := "bench/rclone"
			defer cleanup(key)
			env := []string{"RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_VERS_TYPE=s3", "RCLONE_CONFIG_VERS_PROVIDER=Other",
				"RCLONE_CONFIG_VERS_ACCESS_KEY_ID=" + srv.AccessKey, "RCLONE_CONFIG_VERS_SECRET_ACCESS_KEY=" + srv.SecretKey,
				"RCLONE_CONFIG_VERS_ENDPOINT=" + job.Endpoint, "RCLONE_CONFIG_VERS_REGION=" + srv.Region,
				"RCLONE_CONFIG_VERS_FORCE_PATH_STYLE=true"}
			args := append([]string{bin, "copyto", job.File, "vers:" + bucket + "/" + key}, flags...)
			secs, rss, err := runExternal("rclone", env, args...)
			return secs, rss, "", err
		}}, true
	}
	var cs []Contender
	for _, c := range strings.Split(contenders, ",") {
		switch c = strings.TrimSpace(c); c {
		case "put":
			name := namePut
			if l.name == "wan" {
				name = nameOne
			}
			cs = append(cs, Contender{Name: name, Streams: 1, Run: child("s3-put")})
		case "ferry":
			// Adaptive by default: charted at the most parts it had in flight.
			var inFlight int
			cs = append(cs, Contender{Name: nameFerry, Streams: job.Parallel, InFlight: &inFlight, Run: func() (float64, float64, string, error) {
				j := job
				j.Key = "bench/s3-ferry"
				defer cleanup(j.Key)
				o, rss, err := runChildProcess("s3-ferry", j)
				inFlight = o.InFlight
				return o.Seconds, rss, o.Note, err
			}})
		case "ferry4", "ferry16", "ferry16m", "ferry32m":
			// (ferry16m and ferry32m keep the adaptive parts in flight)
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
			cs = append(cs, ferryVariant(c, v))
		case "tm":
			cs = append(cs, Contender{Name: nameTM, Streams: 8, Run: child("s3-tm")})
		case "rclone":
			if r, ok := rclone(nameRclone, "--s3-upload-concurrency", "4", "--s3-chunk-size", "16M", "--s3-disable-checksum", "--expect-continue-timeout", "0"); ok {
				cs = append(cs, r)
			}
		case "rclone-default":
			if r, ok := rclone(nameRcloneDef); ok {
				cs = append(cs, r)
			}
		default:
			// ferry:N is ferry with N parts in flight (throughput against streams).
			n, err := strconv.Atoi(strings.TrimPrefix(c, "ferry:"))
			if !strings.HasPrefix(c, "ferry:") || err != nil || n < 1 {
				log.Fatalf("unknown contender %q", c)
			}
			v := job
			v.Parallel = n
			cs = append(cs, ferryVariant(c, v))
		}
	}
	ms := measure(job.Size, rounds, cs)
	title := "S3: " + human(job.Size) + " to Versity over " + l.String()
	ratios := [][2]string{{nameFerry, nameRclone}, {nameFerry, nameRcloneDef}, {nameFerry, namePut}, {nameFerry, nameOne}, {nameFerry, nameTM}}
	report(title, ms, ratios)
	if l.name == "wan" {
		wanTargets(ms)
	}
	record(out, l.name, ms)
}

// wanTargets prints issue 12's WAN verdicts: ferry >= 6x one stream,
// >= 1.5x rclone with its defaults, peak RSS <= 64 MB.
func wanTargets(ms []Measure) {
	by := map[string]Measure{}
	for _, m := range ms {
		by[m.Name] = m
	}
	f := by[nameFerry]
	if f.MBps == 0 {
		return
	}
	for _, t := range []struct {
		ref  string
		want float64
	}{{nameOne, 6}, {nameRcloneDef, 1.5}} {
		if r := by[t.ref]; r.MBps > 0 {
			fmt.Printf("WAN target: ferry / %s = %.2fx (target >= %gx): %s\n", t.ref, f.MBps/r.MBps, t.want, verdict(f.MBps/r.MBps >= t.want))
		}
	}
	rss := f.RSSMiB * (1 << 20) / 1e6
	fmt.Printf("WAN target: ferry peak RSS %.1f MB (target <= 64 MB): %s\n", rss, verdict(rss <= 64))
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// record adds each contender's best throughput and peak RSS to out, named
// "<link>/<contender>" and "<link>/<contender> RSS".
func record(out *result.File, prefix string, ms []Measure) {
	for _, m := range ms {
		if m.MBps == 0 {
			out.Note(prefix + "/" + m.Name + ": " + m.Note)
			continue
		}
		out.Add(result.Metric{Name: prefix + "/" + m.Name, Value: m.MBps, Unit: "MB/s", Streams: m.Streams})
		if m.RSSMiB > 0 {
			out.Add(result.Metric{Name: prefix + "/" + m.Name + " RSS", Value: m.RSSMiB * (1 << 20) / 1e6, Unit: "MB"})
		}
	}
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
	o := Outcome{Seconds: time.Since(start).Seconds(), Note: note, SHA256: sum, InFlight: childInFlight, PeakMiB: vmHWMMiB("self")}
	if err != nil {
		o.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(o)
}

// childInFlight is what the s3-ferry child reports as Outcome.InFlight.
var childInFlight int

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
		childInFlight = res.InFlight
		return fmt.Sprintf("%d parts, at most %d in flight (bytes sent at %.2fs, then complete), checked %v", res.Parts, res.InFlight, sentAll.Seconds(), res.Checked), res.SHA256, nil
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
