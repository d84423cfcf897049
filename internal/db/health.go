package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDiskFull marks a write the database refused because its disk is full
// (SQLite's SQLITE_FULL, PostgreSQL's disk_full). It wraps syscall.ENOSPC, so
// callers that know nothing of databases (the HTTP layer answering 507) can
// test for a full disk with errors.Is(err, syscall.ENOSPC).
var ErrDiskFull = fmt.Errorf("the database's disk is full: %w", syscall.ENOSPC)

func diskFull(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" { // disk_full
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}

// MigrationsPending reports whether s lacks migrations this binary carries (a
// replica started on an older schema than its code, or a database restored
// from an old backup): /readyz is not ready then. It only reads goose's table.
func MigrationsPending(ctx context.Context, s Store) (bool, error) {
	d := sqliteDialect
	if s.Dialect() == DialectPostgres {
		d = postgresDialect
	}
	fsys, err := fs.Sub(migrations, d.migrations)
	if err != nil {
		return false, err
	}
	p, err := goose.NewProvider(d.goose, s.SQLDB(), fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return false, fmt.Errorf("db: reading migration state: %w", err)
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("db: reading migration state: %w", err)
	}
	return pending, nil
}
