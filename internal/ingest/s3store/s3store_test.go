package s3store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestCredentialsComeFromASharedCredentialsFile: with no key in the environment, the store
// signs with the profile of a shared credentials file, as the AWS tools do.
func TestCredentialsComeFromASharedCredentialsFile(t *testing.T) {
	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	body := "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[ferry]\naws_access_key_id = " +
		srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n"
	if err := os.WriteFile(creds, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config")) // absent: nothing from the real home
	t.Setenv("AWS_PROFILE", "ferry")
	cfg, err := s3store.ParseURL("s3://" + bucket + "/p?endpoint=" + srv.Endpoint + "&region=" + srv.Region)
	if err != nil {
		t.Fatal(err)
	}
	s, err := s3store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(context.Background()); err != nil {
		t.Fatalf("writing with the shared credentials file's profile: %v", err)
	}
}

func TestStoreURLsAreReadOrRefusedWithAReason(t *testing.T) {
	cases := []struct {
		url     string
		want    s3store.Config
		wantErr string
	}{
		{"s3://bucket", s3store.Config{Bucket: "bucket"}, ""},
		{"s3://bucket/a/b/?region=eu-west-1", s3store.Config{Bucket: "bucket", Prefix: "a/b", Region: "eu-west-1"}, ""},
		{"s3://bucket/p?endpoint=http://127.0.0.1:7070&region=us-east-1",
			s3store.Config{Bucket: "bucket", Prefix: "p", Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", PathStyle: true}, ""},
		{"s3://bucket/p?endpoint=https://s3.example&path_style=false",
			s3store.Config{Bucket: "bucket", Prefix: "p", Endpoint: "https://s3.example"}, ""},
		{"file:///srv/ferry", s3store.Config{}, "s3://bucket"},
		{"s3:///prefix", s3store.Config{}, "no bucket"},
		{"s3://AKIA:s3cret@bucket/p", s3store.Config{}, "must not carry credentials"},
		{"s3://bucket/p?endpoint=127.0.0.1:7070", s3store.Config{}, "http:// or https://"},
		{"s3://bucket/p?secret=x", s3store.Config{}, "unknown parameter"},
		{"s3://bucket/p?path_style=perhaps", s3store.Config{}, "path_style"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			got, err := s3store.ParseURL(tc.url)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseURL error %v; want one saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error repeats a secret: %v", err)
			}
		})
	}
}
