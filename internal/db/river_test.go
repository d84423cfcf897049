package db_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/testbed"
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

type wakeArgs struct{}

func (wakeArgs) Kind() string { return "ferry_test_wake" }

type wakeWorker struct {
	river.WorkerDefaults[wakeArgs]
	worked chan struct{}
}

func (w *wakeWorker) Work(context.Context, *river.Job[wakeArgs]) error {
	w.worked <- struct{}{}
	return nil
}

// TestRiverOnPostgreSQLWakesForAJobInsertedInFerrysTransaction proves River
// listens on PostgreSQL: the working client polls only once an hour, so a
// job inserted in ferry's own transaction (InsertTx with Tx.SQLTx()) is
// worked only if the insert's NOTIFY reaches the listener. River must not
// say it fell back to poll-only mode.
func TestRiverOnPostgreSQLWakesForAJobInsertedInFerrysTransaction(t *testing.T) {
	ctx := context.Background()
	s := openPostgres(t)
	driver, err := db.RiverDriver(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var logs testbed.Buffer
	workers := river.NewWorkers()
	w := &wakeWorker{worked: make(chan struct{}, 2)}
	river.AddWorker(workers, w)
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchPollInterval: time.Hour,
		Logger:            slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	insert := func() {
		t.Helper()
		if err := s.InTx(ctx, func(tx db.Tx) error {
			_, err := client.InsertTx(ctx, tx.SQLTx(), wakeArgs{}, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The first job may be found by the fetch every client makes at start;
	// once it is worked, the next fetch without a notification is an hour away.
	for i, what := range []string{"first", "second"} {
		insert()
		select {
		case <-w.worked:
		case <-time.After(30 * time.Second):
			t.Fatalf("the %s job inserted in ferry's transaction was not worked (job %d; River polls hourly here, so it was never notified); River said:\n%s", what, i+1, logs.String())
		}
	}
	if strings.Contains(logs.String(), "poll only mode") {
		t.Fatalf("River fell back to poll-only mode on PostgreSQL:\n%s", logs.String())
	}
}
