package db

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestMigrationsPendingSaysWhenTheSchemaIsOlderThanTheCode(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if pending, err := MigrationsPending(ctx, s); err != nil || pending {
		t.Fatalf("freshly migrated database: pending %v, %v; want false", pending, err)
	}
	// A database whose newest migration is not recorded: as if restored from an older backup.
	if _, err := s.SQLDB().ExecContext(ctx, "DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)"); err != nil {
		t.Fatal(err)
	}
	if pending, err := MigrationsPending(ctx, s); err != nil || !pending {
		t.Fatalf("database missing its newest migration: pending %v, %v; want true", pending, err)
	}
}

func TestDiskFullErrorsAreMarkedAndReadAsENOSPC(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *dialect
		err  error
		full bool
	}{
		{"postgres disk_full", postgresDialect, &pgconn.PgError{Code: "53100", Message: "could not extend file"}, true},
		{"postgres unique violation", postgresDialect, &pgconn.PgError{Code: "23505"}, false},
		{"an ENOSPC from the file system", sqliteDialect, fmt.Errorf("write wal: %w", syscall.ENOSPC), true},
		{"another error", sqliteDialect, errors.New("connection reset"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.classify(tc.err)
			if got := errors.Is(err, ErrDiskFull) && errors.Is(err, syscall.ENOSPC); got != tc.full {
				t.Fatalf("classify(%v) = %v: marked full %v, want %v", tc.err, err, got, tc.full)
			}
		})
	}
}
