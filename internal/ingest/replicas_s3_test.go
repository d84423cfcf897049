package ingest

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/ingest/store"
	"github.com/ferryhq/ferry/internal/testbed"
)

// versityStore is an S3 store configuration on a new bucket of the Versity
// gateway (credentials in the environment, as ferry serve takes them), with
// the smallest parts S3 allows.
func versityStore(t *testing.T) s3store.Config {
	t.Helper()
	srv := testbed.Versity(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CA_BUNDLE", "")
	return s3store.Config{Bucket: srv.NewBucket(t), Prefix: "uploads", Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, PartSize: s3store.MinPartSize}
}

// s3Replicas are two ingest engines, each with its own tus handler, gate and store instance,
// on one bucket prefix of the Versity gateway: what two ferry replicas behind a load balancer
// share. Requests here never overlap, so tusd's in-process lockers suffice.
func s3Replicas(t *testing.T) (a, b *rig) {
	t.Helper()
	cfg := versityStore(t)
	replica := func() *rig {
		st, err := s3store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return newRigIn(t, "", &recGate{}, func(c *Config) {
			c.Store = st
			c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		})
	}
	return replica(), replica()
}

// on rewrites an upload URL of one replica to the other's address.
func on(rg *rig, url string) string { return rg.srv.URL + url[strings.Index(url, "/uploads/"):] }

// TestAnUploadMovesBetweenReplicasOnTheS3Store: every PATCH of one upload goes to the other
// replica, which learns the offset from the bucket alone (HEAD), continues the hash from the
// recorded state, and the one receiving the last byte completes it with the right SHA-256.
func TestAnUploadMovesBetweenReplicasOnTheS3Store(t *testing.T) {
	a, b := s3Replicas(t)
	data := randBytes(t, 13<<20+5)
	url := a.create(len(data), fileMeta(data, true), nil)
	cuts := []int{0, 1<<20 + 3, 8<<20 + 3, 9 << 20, len(data)}
	replicas := []*rig{b, a, b, a}
	for i, rg := range replicas {
		u := on(rg, url)
		if off := rg.offset(u); off != cuts[i] {
			t.Fatalf("replica %d says the upload is at %d, want %d", i%2, off, cuts[i])
		}
		if res := rg.patch(u, cuts[i], data[cuts[i]:cuts[i+1]]); res.Status != http.StatusNoContent {
			t.Fatalf("PATCH %d: %d %s", i, res.Status, res.Body)
		}
	}
	if len(b.gate.completions()) != 0 {
		t.Fatalf("the replica that did not receive the last byte completed the upload")
	}
	cs := a.gate.completions()
	if len(cs) != 1 || hex.EncodeToString(cs[0].Sum.SHA256) != sha(data) {
		t.Fatalf("completions on the last replica: %+v; want one with SHA-256 %s", cs, sha(data))
	}
	if !bytes.Equal(b.readBack(idOf(url)), data) {
		t.Fatalf("the other replica reads back other bytes than were sent")
	}
}

// TestParallelPartialsOnBothReplicasConcatenateOnTheS3Store: partials created and sent on
// alternate replicas, the final created on one of them: the final reads across the partials'
// objects from either replica.
func TestParallelPartialsOnBothReplicasConcatenateOnTheS3Store(t *testing.T) {
	a, b := s3Replicas(t)
	data := randBytes(t, 11<<20+9)
	cuts := []int{0, 5<<20 + 1, 6 << 20, len(data)}
	var parts []string
	for i := range 3 {
		rg := []*rig{a, b, a}[i]
		part := data[cuts[i]:cuts[i+1]]
		u := rg.create(len(part), partialMeta(i, part), map[string]string{"Upload-Concat": "partial"})
		if res := rg.patch(u, 0, part); res.Status != http.StatusNoContent {
			t.Fatalf("partial %d: %d %s", i, res.Status, res.Body)
		}
		parts = append(parts, u[strings.Index(u, "/uploads/"):])
	}
	final := b.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, true),
		Header: map[string]string{"Upload-Concat": "final;" + strings.Join(parts, " ")}})
	if final.Status != http.StatusCreated {
		t.Fatalf("final: %d %s", final.Status, final.Body)
	}
	fid := idOf(final.Header.Get("Location"))
	if cs := b.gate.completions(); len(cs) != 1 || cs[0].U.ID != fid {
		t.Fatalf("completions on the replica that made the final: %+v", cs)
	}
	for name, rg := range map[string]*rig{"a": a, "b": b} {
		if !bytes.Equal(rg.readBack(fid), data) {
			t.Fatalf("replica %s reads the final as other bytes than were sent", name)
		}
	}
	// Nothing was copied: the bucket holds the partials' objects and no object for the final.
	if info, _ := a.ing.store.Info(fid); !store.Finished(info) || info.Storage["Key"] != "" {
		t.Fatalf("the final upload names an object of its own: %+v", info.Storage)
	}
}
