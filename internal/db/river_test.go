package db_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/ferryhq/ferry/internal/db"
)

type deliverArgs struct {
	PackageID string `json:"package_id"`
}

func (deliverArgs) Kind() string { return "ferry_test_deliver" }

// TestRiverSharesTheSQLiteTransaction proves the promise delivery relies on:
// River (riversqlite) runs on the Store's own *sql.DB, and a job inserted
// with the Tx's *sql.Tx commits or rolls back with ferry's own writes.
func TestRiverSharesTheSQLiteTransaction(t *testing.T) {
	ctx := context.Background()
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	driver := riversqlite.New(s.SQLDB())
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
	client, err := river.NewClient(driver, &river.Config{}) // insert-only
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, commit := range []bool{false, true} {
		err := s.InTx(ctx, func(tx db.Tx) error {
			p, err := tx.PackageCreate(ctx, &db.PackageCreateParams{Name: "p", UploadTokenHash: []byte{boolByte(commit)}})
			if err != nil {
				return err
			}
			if _, err := client.InsertTx(ctx, tx.SQLTx(), deliverArgs{PackageID: p.ID}, nil); err != nil {
				return err
			}
			if !commit {
				return boom
			}
			return nil
		})
		if commit != (err == nil) {
			t.Fatalf("commit=%v: %v", commit, err)
		}
	}
	var jobs, packages int
	if err := s.SQLDB().QueryRowContext(ctx, "SELECT count(*) FROM river_job WHERE kind = 'ferry_test_deliver'").Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if err := s.SQLDB().QueryRowContext(ctx, "SELECT count(*) FROM packages").Scan(&packages); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 || packages != 1 {
		t.Fatalf("%d jobs and %d packages; want exactly the committed one of each", jobs, packages)
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
