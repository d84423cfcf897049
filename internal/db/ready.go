package db

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

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
