package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// s3StoreURL gives a fresh bucket on the test Versity gateway as a --store URL, with the
// gateway's credentials in the environment the way an operator sets them.
func s3StoreURL(t *testing.T) string {
	t.Helper()
	srv := testbed.Versity(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CA_BUNDLE", "")
	return "s3://" + srv.NewBucket(t) + "/packages?endpoint=" + srv.Endpoint + "&region=" + srv.Region
}

// TestPublicFlowDeliveryFromTheS3PackageStore is the delivery end-to-end suite with package
// bytes on S3-compatible storage: the parallel upload's partials are objects of their own,
// delivery reads the final across them by ranges, and nothing lands in the data directory's
// upload folder.
//
// It runs on SQLite and on PostgreSQL: PostgreSQL + the S3 store is the replicas' configuration.
func TestPublicFlowDeliveryFromTheS3PackageStore(t *testing.T) {
	video := e2eVideo(t)
	t.Run("SQLite", func(t *testing.T) { testPublicFlowDeliveryFromTheS3PackageStore(t, video, "") })
	t.Run("PostgreSQL", func(t *testing.T) {
		testPublicFlowDeliveryFromTheS3PackageStore(t, video, testbed.Postgres(t).CreateDatabase(t))
	})
}

func testPublicFlowDeliveryFromTheS3PackageStore(t *testing.T, video []byte, dsn string) {
	url := s3StoreURL(t)
	h := newHarnessWith(t, func(c *config.Config) { c.Store, c.DatabaseURL = url, dsn })
	testPublicFlowDeliveryOn(t, newE2EOn(t, h, "s3"), "S3", video)
	ents, _ := os.ReadDir(filepath.Join(h.data, "uploads"))
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".bin" {
			t.Fatalf("with --store s3://..., upload bytes landed on local disk: %s", e.Name())
		}
	}
	if _, _, body := h.readyz(); !bytes.Contains(body, []byte(`"upload_store"`)) {
		t.Fatalf("/readyz does not check the S3 store: %s", body)
	}
}

// TestDownloadLinkReadsRangesFromTheS3PackageStore: a download link serves a file whose bytes
// are three partial objects in the bucket, whole and by ranges that cross the partials'
// boundaries, byte for byte.
func TestDownloadLinkReadsRangesFromTheS3PackageStore(t *testing.T) {
	url := s3StoreURL(t)
	h := newHarnessWith(t, func(c *config.Config) { c.Store = url })
	data := randomBytes(t, 7<<20+333)
	h.portal(map[string]any{"name": "P", "slug": "p"})
	pkg := h.newPackage("p")
	(&e2e{harness: h}).uploadParallel(pkg.UploadToken, "cam/a.mov", data, 3)
	h.upload(pkg.UploadToken, "b.txt", []byte("bee\n"))
	var fin struct{ Package web.Package }
	resp, body := h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, &fin)
	d := &dlPackage{h: h, id: pkg.Package.ID, files: map[string][]byte{"cam/a.mov": data, "b.txt": []byte("bee\n")}, ids: map[string]string{}}
	for _, f := range fin.Package.Files {
		d.ids[f.Path] = f.ID
	}
	u := h.srv.URL + d.fileURL(d.link(20), "cam/a.mov")
	third := int64(len(data) / 3) // the first partial's end
	cases := []struct {
		name       string
		rng        string
		from, to   int64 // inclusive
		wantStatus int
	}{
		{"the whole file", "", 0, int64(len(data)) - 1, 200},
		{"inside the first partial", "bytes=10-4009", 10, 4009, 206},
		{"across the first boundary", fmt.Sprintf("bytes=%d-%d", third-100, third+99), third - 100, third + 99, 206},
		{"from the middle to the end", fmt.Sprintf("bytes=%d-", third+7), third + 7, int64(len(data)) - 1, 206},
		{"the last bytes", "bytes=-50", int64(len(data)) - 50, int64(len(data)) - 1, 206},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", u, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !bytes.Equal(b, data[tc.from:tc.to+1]) {
				t.Fatalf("GET %s: %d, %d bytes; want %d and bytes %d-%d of the file", tc.rng, resp.StatusCode, len(b), tc.wantStatus, tc.from, tc.to)
			}
		})
	}
}

// TestReadyzSaysTheS3StoreIsNotWritableWithoutNamingIt: a bucket that stops taking writes
// (here: deleted under the running server) turns /readyz not ready with a message that names
// no bucket, host or key; uploads need the store, so the server must not take traffic.
func TestReadyzSaysTheS3StoreIsNotWritableWithoutNamingIt(t *testing.T) {
	srv := testbed.Versity(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CA_BUNDLE", "")
	bucket := srv.NewBucket(t)
	h := newHarnessWith(t, func(c *config.Config) {
		c.Store = "s3://" + bucket + "/p?endpoint=" + srv.Endpoint + "&region=" + srv.Region
	})
	if status, _, body := h.readyz(); status != http.StatusOK {
		t.Fatalf("/readyz on a healthy S3 store: %d %s", status, body)
	}
	if _, err := srv.Client().DeleteBucket(t.Context(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	status, rb, body := h.readyz()
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with an unwritable store: %d %s; want 503", status, body)
	}
	found := false
	for _, c := range rb.Checks {
		if c.Name == "upload_store" {
			found = true
			if c.OK {
				t.Fatalf("the upload_store check passes on a bucket that does not exist: %s", body)
			}
		}
		if c.Name == "disk_space" && !c.OK {
			t.Fatalf("an S3 store has no disk to fill, yet disk_space fails: %s", body)
		}
	}
	if !found {
		t.Fatalf("/readyz has no upload_store check: %s", body)
	}
	for _, secret := range []string{bucket, strings.TrimPrefix(srv.Endpoint, "http://"), srv.SecretKey, srv.AccessKey} {
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("/readyz names %q: %s", secret, body)
		}
	}
}
