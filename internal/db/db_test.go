package db_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/db/dbtest"
	"github.com/ferryhq/ferry/internal/testbed"
)

func openSQLite(t *testing.T) db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) db.Store {
	t.Helper()
	dsn := testbed.Postgres(t).CreateDatabase(t)
	s, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceSQLite(t *testing.T) { dbtest.Run(t, openSQLite) }

func TestConformancePostgres(t *testing.T) { dbtest.Run(t, openPostgres) }

func TestSQLiteReopenKeepsDataAndSkipsAppliedMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ferry.db")
	s, err := db.Open(ctx, "sqlite:"+path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserCreate(ctx, &db.UserCreateParams{Email: "a@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.UserCount(ctx); err != nil || n != 1 {
		t.Fatalf("after reopen: %d users, %v", n, err)
	}
	var mode string
	if err := s.SQLDB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.SQLDB().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if s.Dialect() != db.DialectSQLite {
		t.Fatalf("Dialect = %q", s.Dialect())
	}
}

func TestOpenRefusesUnusableSQLitePath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=ro", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := db.Open(context.Background(), p, db.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}
