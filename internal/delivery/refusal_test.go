package delivery_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestAFileNoStorageCanTakeFailsAtOnceWithTheLimit is issue 9 item 5 at
// delivery: a file admitted before object names were checked (here:
// admitted without the check) whose key passes S3's 1,024-byte limit was
// retried for about 8.5 minutes (the emulator cannot sign its upload URL;
// a real S3 answers KeyTooLongError). No retry can change a key, so the
// file fails on its first attempt, naming the limit, before anything is
// created in iconik or stored, and the package's other file is delivered.
// Run on the emulator's own S3 and on a real S3 server (Versity) behind
// the emulator's presigned URLs, which would store the key: ferry keeps to
// S3's limit whatever one server accepts.
func TestAFileNoStorageCanTakeFailsAtOnceWithTheLimit(t *testing.T) {
	for _, storage := range []string{"s3", "versity"} {
		t.Run(storage, func(t *testing.T) {
			seed := emulator.DefaultSeed()
			var listed func(prefix string) int
			if storage == "versity" {
				srv := testbed.Versity(t)
				bucket := srv.NewBucket(t)
				seed.Storages = append(seed.Storages, emulator.SeedStorage{Name: "versity", Method: "S3", Purpose: "FILES", Status: "ACTIVE", Path: "ferry",
					Settings: map[string]any{"endpoint": srv.Endpoint, "bucket": bucket, "region": srv.Region, "access_key": srv.AccessKey, "secret_key": srv.SecretKey}})
				listed = func(prefix string) int {
					out, err := srv.Client().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
					if err != nil {
						t.Fatal(err)
					}
					return len(out.Contents)
				}
			}
			e := newEnv(t, envOptions{seed: seed})
			conn := e.connect("c", storage)
			e.createPortal("Keys", conn.ID)
			h := e.newPackage("keys", "Long", "k@example.com")
			// 1,263 bytes, every segment far below 255: accepted by pathsafe.
			long := strings.Repeat(strings.Repeat("k", 99)+"/", 12) + strings.Repeat("f", 59) + ".mov"
			if len(long) != 1263 {
				t.Fatalf("test path is %d bytes", len(long))
			}
			e.put(h, long, []byte("never stored"))
			e.put(h, "short.txt", []byte("delivered"))
			e.finalize(h)

			st := e.settled(h, conn.ID)
			if st.Delivery.State != db.DeliveryPartiallyFailed {
				t.Fatalf("delivery %s (%s), want partially failed", st.Delivery.State, st.Delivery.Error)
			}
			for _, f := range st.Files {
				switch f.Path {
				case "short.txt":
					if f.State != db.DeliveryFileDelivered {
						t.Errorf("short.txt: %s %s", f.State, f.Error)
					}
				case long:
					if f.State != db.DeliveryFileFailed || f.Attempts != 1 {
						t.Errorf("the file: %s after %d attempts, want failed after 1 (no retries)", f.State, f.Attempts)
					}
					if !strings.Contains(f.Error, "S3 object keys are at most 1,024 bytes") {
						t.Errorf("the file's error %q does not name S3's 1,024-byte key limit", f.Error)
					}
					if f.AssetID != "" || f.IconikFileID != "" {
						t.Errorf("iconik objects were created for a file that cannot be stored: asset %q file %q", f.AssetID, f.IconikFileID)
					}
				}
			}
			if listed != nil {
				if n := listed("ferry/Portal Downloads/Keys/Long/kkk"); n != 0 {
					t.Errorf("the S3 server holds %d objects of the refused file", n)
				}
				if n := listed("ferry/Portal Downloads/Keys/Long/short.txt"); n != 1 {
					t.Errorf("the S3 server holds %d objects of short.txt, want 1", n)
				}
			}
		})
	}
}

// TestAProviderRefusalFailsTheFileAtOnceWithItsReason: when the storage
// itself refuses a file for a reason no retry changes (S3's 400
// KeyTooLongError; none of the test servers enforces the key limit, so the
// answer is injected in front of the emulator's S3 data plane, on a real
// socket, for one file's PUTs), the file fails on its first attempt with
// the provider's code and message, instead of being retried for minutes.
func TestAProviderRefusalFailsTheFileAtOnceWithItsReason(t *testing.T) {
	var refused atomic.Int64
	e := newEnv(t, envOptions{noSpec: true, wrap: func(h http.Handler) http.Handler {
		checked := emulatortest.Checked(t, h, 0)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_storage/s3/") && strings.Contains(r.URL.Path, "refused.mov") {
				refused.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>KeyTooLongError</Code><Message>Your key is too long</Message></Error>`))
				return
			}
			checked.ServeHTTP(w, r)
		})
	}})
	conn := e.connect("c", "s3")
	e.createPortal("Refusals", conn.ID)
	h := e.newPackage("refusals", "Pkg", "r@example.com")
	e.put(h, "refused.mov", []byte("the provider refuses this one"))
	e.put(h, "fine.txt", []byte("delivered"))
	e.finalize(h)
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryPartiallyFailed {
		t.Fatalf("delivery %s (%s), want partially failed", st.Delivery.State, st.Delivery.Error)
	}
	for _, f := range st.Files {
		if f.Path != "refused.mov" {
			if f.State != db.DeliveryFileDelivered {
				t.Errorf("%s: %s %s", f.Path, f.State, f.Error)
			}
			continue
		}
		if f.State != db.DeliveryFileFailed || f.Attempts != 1 {
			t.Errorf("refused.mov: %s after %d attempts, want failed after 1", f.State, f.Attempts)
		}
		if !strings.Contains(f.Error, "HTTP 400 KeyTooLongError: Your key is too long") {
			t.Errorf("refused.mov's error %q does not carry the provider's reason", f.Error)
		}
		job, err := e.cl.JobGet(e.ctx, f.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if job.Status != "FAILED" || !strings.Contains(job.ErrorMessage, "KeyTooLongError") {
			t.Errorf("in iconik: job %s %q, want FAILED with the provider's reason", job.Status, job.ErrorMessage)
		}
	}
	if n := refused.Load(); n != 1 {
		t.Errorf("the provider was asked %d times, want once", n)
	}
}
