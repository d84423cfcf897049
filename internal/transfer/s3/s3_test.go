package s3_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
		New: func(o transfer.Options) transfer.Uploader {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			return s3.New(o)
		},
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
		Pending: func(t *testing.T, key string) int {
			out, err := client.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
			if err != nil {
				t.Fatalf("list multipart uploads: %v", err)
			}
			return len(out.Uploads)
		},
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
