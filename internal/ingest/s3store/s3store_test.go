package s3store_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/ingest/store"
	"github.com/ferryhq/ferry/internal/ingest/store/storetest"
	"github.com/ferryhq/ferry/internal/testbed"
)

// versityClient is a client for the test Versity gateway, set up the way NewClient sets up
// the production one.
func versityClient(t *testing.T) (*testbed.S3Server, *s3.Client) {
	srv := testbed.Versity(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	c, err := s3store.NewClient(context.Background(), s3store.Config{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestS3StoreConformance(t *testing.T) {
	srv, c := versityClient(t)
	bucket := srv.NewBucket(t)
	storetest.Run(t, func(t *testing.T) storetest.Backing {
		// A prefix per case: cases share the bucket, never their uploads.
		prefix := "uploads/" + store.NewID()
		return func(t *testing.T) store.Store {
			s, err := s3store.New(c, s3store.Config{Bucket: bucket, Prefix: prefix, PartSize: s3store.MinPartSize})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
