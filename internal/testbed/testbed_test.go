package testbed

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// The peers start, answer, and are reachable the way the docs in TESTBED.md say.
func TestPeersStartAndAnswer(t *testing.T) {
	t.Run("versity", func(t *testing.T) {
		s := Versity(t)
		b := s.NewBucket(t)
		out, err := s.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, x := range out.Buckets {
			found = found || *x.Name == b
		}
		if !found {
			t.Fatalf("bucket %s not listed", b)
		}
	})
	t.Run("fake-gcs", func(t *testing.T) {
		s := FakeGCS(t)
		resp, err := http.Get(s.URL + "/storage/v1/b")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("list buckets: %v %v", err, resp)
		}
		resp.Body.Close()
	})
	t.Run("azurite", func(t *testing.T) {
		s := Azurite(t)
		resp, err := http.Get(s.BlobURL + "?comp=list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // 403 without a signature is the expected, living answer
	})
	t.Run("mailpit", func(t *testing.T) {
		s := Mailpit(t)
		resp, err := http.Get(s.APIURL + "/api/v1/messages")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("messages: %v %v", err, resp)
		}
		resp.Body.Close()
	})
	t.Run("postgres", func(t *testing.T) {
		s := Postgres(t)
		db, err := sql.Open("pgx", s.CreateDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var one int
		if err := db.QueryRow("select 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("select 1: %v %d", err, one)
		}
	})
	t.Run("chromium", func(t *testing.T) { Chromium(t) })
}

// TestPostgresToolsAreFoundOffThePath: Debian installs initdb under
// /usr/lib/postgresql/<version>/bin, on no PATH; a bare CI environment must
// still find it there.
func TestPostgresToolsAreFoundOffThePath(t *testing.T) {
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(found) == 0 {
		Missing(t, "postgresql", "no /usr/lib/postgresql/*/bin/initdb (install with scripts/peers)")
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("FERRY_CACHE", t.TempDir())
	p, err := LookBinary("initdb")
	if err != nil || !strings.HasPrefix(p, "/usr/lib/postgresql/") {
		t.Fatalf("LookBinary(initdb) with no PATH = %q, %v; want the one under /usr/lib/postgresql", p, err)
	}
}
