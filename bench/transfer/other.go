package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
	"github.com/ferryhq/ferry/internal/transfer/transfertest"
)

// fixedSAS is an Azure target whose SAS URL lives longer than the run.
type fixedSAS string

func (fixedSAS) Method() string                                     { return "AZURE" }
func (s fixedSAS) AzureBlobURL(ctx context.Context) (string, error) { return string(s), nil }

func benchAzure(job Job, rounds int) {
	srv := testbed.Azurite(benchTB{})
	defer srv.Proc.Stop()
	cred, err := azblob.NewSharedKeyCredential(srv.Account, srv.AccountKey)
	if err != nil {
		log.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential(srv.BlobURL+"/", cred, nil)
	if err != nil {
		log.Fatal(err)
	}
	const container = "bench"
	if _, err := client.CreateContainer(context.Background(), container, nil); err != nil {
		log.Fatalf("create container: %v", err)
	}
	sasURL := func(key string) string {
		q, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(24 * time.Hour),
			Permissions: to.Ptr(sas.BlobPermissions{Read: true, Create: true, Write: true}).String(), ContainerName: container, BlobName: key}.SignWithSharedKey(cred)
		if err != nil {
			log.Fatal(err)
		}
		return srv.BlobURL + "/" + container + "/" + key + "?" + q.Encode()
	}
	log.Printf("Azure (Azurite %s), %s, ferry %d x %s blocks", srv.BlobURL, human(job.Size), transfer.Options{Parallelism: job.Parallel}.WithDefaults().Parallelism, human(job.PartSize))
	child := func(name string) func() (float64, float64, string, error) {
		return func() (float64, float64, string, error) {
			j := job
			j.Key = "bench-" + name
			j.URL = sasURL(j.Key)
			defer func() { _, _ = client.DeleteBlob(context.Background(), container, j.Key, nil) }()
			o, rss, err := runChildProcess(name, j)
			return o.Seconds, rss, o.Note, err
		}
	}
	ms := measure(job.Size, rounds, []Contender{
		{Name: "single Put Blob (ceiling)", Streams: 1, Run: child("azure-put")},
		{Name: "ferry azure", Streams: job.Parallel, Run: child("azure-ferry")},
	})
	report("Azure: "+human(job.Size)+" to Azurite", ms, [][2]string{{"ferry azure", "single Put Blob (ceiling)"}})
}

// gcsInit is a GCS target over fake-gcs-server's resumable initiation URL.
type gcsInit string

func (gcsInit) Method() string                                     { return "GCS" }
func (g gcsInit) GCSUploadURL(ctx context.Context) (string, error) { return string(g), nil }

// benchFakeGCS measures ferry on fake-gcs-server, capped at 64 MiB: it holds
// resumable uploads in memory (about 500 MB RSS per 64 MiB, TESTBED.md).
func benchFakeGCS(job Job, rounds int) {
	if job.Size > 64<<20 {
		log.Printf("fake-gcs-server: capping the file at 64 MiB (it holds uploads in memory); using the first 64 MiB")
		job.Size = 64 << 20
	}
	srv := testbed.FakeGCS(benchTB{})
	defer srv.Proc.Stop()
	resp, err := http.Post(srv.URL+"/storage/v1/b", "application/json", strings.NewReader(`{"name":"bench"}`))
	if err != nil {
		log.Fatalf("create bucket: %v", err)
	}
	resp.Body.Close()
	src, err := transfer.OpenFile(job.File)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	part := io.NewSectionReader(src, 0, job.Size)
	target := func(key string) transfer.GCSTarget {
		return gcsInit(srv.URL + "/upload/storage/v1/b/bench/o?uploadType=resumable&name=" + key)
	}
	up := gcs.New(transfer.Options{PartSize: job.PartSize})
	ferry := func() (float64, float64, string, error) {
		start := time.Now()
		res, err := up.Upload(context.Background(), sized{part}, target("ferry"), transfer.Params{})
		lastCPU = 0
		return time.Since(start).Seconds(), 0, fmt.Sprintf("%d chunks, checked %v", res.Parts, res.Checked), err
	}
	ref := func() (float64, float64, string, error) {
		start := time.Now()
		err := plainRequest(context.Background(), "gcs", sized{part}, target("ref"))
		lastCPU = 0
		return time.Since(start).Seconds(), 0, "", err
	}
	ms := measure(job.Size, rounds, []Contender{{Name: "one plain request (ceiling)", Streams: 1, Run: ref}, {Name: "ferry gcs", Streams: job.Parallel, Run: ferry}})
	report("GCS: "+human(job.Size)+" to fake-gcs-server (in process client, RSS not measured)", ms, [][2]string{{"ferry gcs", "one plain request (ceiling)"}})
}

// sized is a Source over a section of the bench file (no zero-copy reopen).
type sized struct{ *io.SectionReader }

// benchEmulator measures ferry against the emulator's GCS or B2 data plane,
// in process (the plane has no server of its own), with one plain request of
// the whole file through the same plane as the reference.
func benchEmulator(job Job, which string, rounds int) {
	dir, err := os.MkdirTemp("", "ferry-bench-plane-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	defer func() {
		for _, f := range cleanups {
			f()
		}
	}()
	p := transfertest.StartPlane(benchT{}, dataplane.Options{URLTTL: 24 * time.Hour})
	method := map[string]string{"gcs": "GCS", "b2": "B2"}[which]
	st := dataplane.Storage{ID: which, Method: method, Dir: dir}
	log.Printf("%s (emulator data plane %s, in process), %s", method, p.URL, human(job.Size))
	o := transfer.Options{PartSize: job.PartSize, Parallelism: job.Parallel}
	var up transfer.Uploader
	switch which {
	case "gcs":
		up = gcs.New(o)
	default:
		up = b2.New(o)
	}
	run := func(key string, f func(src *transfer.FileSource, t transfer.Target) (string, error)) func() (float64, float64, string, error) {
		return func() (float64, float64, string, error) {
			src, err := transfer.OpenFile(job.File)
			if err != nil {
				return 0, 0, "", err
			}
			defer src.Close()
			start := time.Now()
			note, err := f(src, p.Target(st, key, job.Size, nil))
			lastCPU = 0 // in process: not measured
			return time.Since(start).Seconds(), 0, note, err
		}
	}
	ferry := run("bench/ferry", func(src *transfer.FileSource, t transfer.Target) (string, error) {
		res, err := up.Upload(context.Background(), src, t, transfer.Params{})
		return fmt.Sprintf("%d parts, checked %v", res.Parts, res.Checked), err
	})
	ref := run("bench/ref", func(src *transfer.FileSource, t transfer.Target) (string, error) {
		return "", plainRequest(context.Background(), which, src, t)
	})
	ms := measure(job.Size, rounds, []Contender{{Name: "one plain request (ceiling)", Streams: 1, Run: ref}, {Name: "ferry " + which, Streams: job.Parallel, Run: ferry}})
	report(method+": "+human(job.Size)+" to the emulator (RSS not measured: in process)", ms, [][2]string{{"ferry " + which, "one plain request (ceiling)"}})
}

// plainRequest sends the whole file in one request, hashing nothing but
// what the protocol demands (B2's SHA-1 header).
func plainRequest(ctx context.Context, which string, src transfer.Source, t transfer.Target) error {
	var req *http.Request
	switch which {
	case "gcs":
		u, err := t.(transfer.GCSTarget).GCSUploadURL(ctx)
		if err != nil {
			return err
		}
		start, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
		start.Header.Set("x-goog-resumable", "start")
		resp, err := http.DefaultClient.Do(start)
		if err != nil {
			return err
		}
		resp.Body.Close()
		req, _ = http.NewRequestWithContext(ctx, http.MethodPut, resp.Header.Get("Location"), io.NewSectionReader(src, 0, src.Size()))
		req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", src.Size()-1, src.Size()))
	default:
		up, err := t.(transfer.B2Target).B2Upload(ctx)
		if err != nil {
			return err
		}
		h := sha1.New()
		if _, err := io.Copy(h, io.NewSectionReader(src, 0, src.Size())); err != nil {
			return err
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, up.URL, io.NewSectionReader(src, 0, src.Size()))
		req.Header.Set("Authorization", up.AuthorizationToken)
		req.Header.Set("X-Bz-File-Name", b2.EncodeFileName(up.FileName))
		req.Header.Set("X-Bz-Content-Sha1", hex.EncodeToString(h.Sum(nil)))
	}
	req.ContentLength = src.Size()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// benchT lends transfertest.StartPlane the one testing.TB method it uses
// (Cleanup); the embedded nil interface is never called.
type benchT struct{ testing.TB }

var cleanups []func()

func (benchT) Cleanup(f func()) { cleanups = append(cleanups, f) }

func childRunOther(name string, job Job) (string, string, error) {
	ctx := context.Background()
	switch name {
	case "azure-put":
		f, err := os.Open(job.File)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, job.URL, f)
		req.ContentLength = job.Size
		req.Header.Set("x-ms-blob-type", "BlockBlob")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", "", err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return "", "", fmt.Errorf("put blob: HTTP %d", resp.StatusCode)
		}
		return "", "", nil
	case "azure-ferry":
		src, err := transfer.OpenFile(job.File)
		if err != nil {
			return "", "", err
		}
		defer src.Close()
		up := azure.New(transfer.Options{PartSize: job.PartSize, Parallelism: job.Parallel, Logger: childLogger()})
		res, err := up.Upload(ctx, src, fixedSAS(job.URL), transfer.Params{})
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%d blocks, checked %v", res.Parts, res.Checked), res.SHA256, nil
	}
	return "", "", fmt.Errorf("unknown child %q", name)
}
