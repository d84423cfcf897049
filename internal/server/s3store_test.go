package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/testbed"
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
func TestPublicFlowDeliveryFromTheS3PackageStore(t *testing.T) {
	video := e2eVideo(t)
	url := s3StoreURL(t)
	h := newHarnessWith(t, func(c *config.Config) { c.Store = url })
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
