package s3_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/s3"
	"github.com/ferryhq/ferry/internal/transfer/transfertest"
)

func versityHarness(t *testing.T, signMD5 bool) transfertest.Harness {
	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	client := srv.Client()
	pre := &transfertest.S3Presigner{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: bucket, SignMD5: signMD5}
	return transfertest.Harness{
		New:      newS3,
		PartSize: s3.MinPartSize,
		NewTarget: func(t *testing.T, key string, size int64, via func(string) string) transfer.Target {
			return pre.Target(key, via)
		},
		Open: func(t *testing.T, key string) (io.ReadCloser, bool) {
			out, err := client.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			var nsk *types.NoSuchKey
			if errors.As(err, &nsk) {
				return nil, false
			}
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			return out.Body, true
		},
		Pending: versityPending(srv, bucket),
	}
}

func versityPending(srv *testbed.S3Server, bucket string) func(t *testing.T, key string) int {
	client := srv.Client()
	return func(t *testing.T, key string) int {
		out, err := client.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
		if err != nil {
			t.Fatalf("list multipart uploads: %v", err)
		}
		return len(out.Uploads)
	}
}

func TestConformanceVersity(t *testing.T) {
	transfertest.Run(t, versityHarness(t, false))
}

func TestConformanceVersityPartURLsSignedWithMD5(t *testing.T) {
	transfertest.Run(t, versityHarness(t, true))
}

func TestPartSizeGrowsSoFiveTiBFitsInTenThousandParts(t *testing.T) {
	u := s3.New(transfer.Options{})
	for _, size := range []int64{0, 1, 16 << 20, 160 << 30, 1 << 40, 5 << 40} {
		ps := u.PartSize(size)
		if n := (size + ps - 1) / ps; n > s3.MaxParts {
			t.Errorf("size %d: part size %d gives %d parts", size, ps, n)
		}
		if ps < s3.MinPartSize || ps > s3.MaxPartSize {
			t.Errorf("size %d: part size %d outside S3 limits", size, ps)
		}
	}
}

func newS3(o transfer.Options) transfer.Uploader { return s3.New(o) }

func TestConformanceEmulatorS3(t *testing.T) {
	dir := t.TempDir() // before the plane: cleanups run last-first, so the plane stops writing before dir goes
	p := transfertest.StartPlane(t, dataplane.Options{})
	st := dataplane.Storage{ID: "s3", Method: "S3", Dir: dir}
	transfertest.Run(t, p.Harness(st, newS3, s3.MinPartSize))
}

func TestConformanceEmulatorS3PartURLsSignedWithMD5(t *testing.T) {
	dir := t.TempDir() // before the plane: cleanups run last-first, so the plane stops writing before dir goes
	p := transfertest.StartPlane(t, dataplane.Options{})
	st := dataplane.Storage{ID: "s3", Method: "S3", Dir: dir, Settings: map[string]any{"presign_md5_checksum": true}}
	transfertest.Run(t, p.Harness(st, newS3, s3.MinPartSize))
}

// The emulator presigning for a real S3 server (Versity): what a tenant with
// an S3-compatible storage gets.
func TestConformanceEmulatorPresigningForVersity(t *testing.T) {
	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir() // before the plane: cleanups run last-first, so the plane stops writing before dir goes
	p := transfertest.StartPlane(t, dataplane.Options{})
	st := dataplane.Storage{ID: "ext", Method: "S3", Dir: dir, Settings: map[string]any{
		"endpoint": srv.Endpoint, "bucket": bucket, "region": srv.Region, "access_key": srv.AccessKey, "secret_key": srv.SecretKey}}
	h := p.Harness(st, newS3, s3.MinPartSize)
	h.Pending = versityPending(srv, bucket)
	transfertest.Run(t, h)
}
