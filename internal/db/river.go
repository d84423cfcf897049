package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverDriver returns the River driver for s's dialect on s's own *sql.DB,
// with River's tables migrated: jobs are then inserted in ferry's own
// transactions (River's InsertTx with Tx.SQLTx()). Every River client of
// ferry (delivery, notify) starts from here.
func RiverDriver(ctx context.Context, s Store) (riverdriver.Driver[*sql.Tx], error) {
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(s.SQLDB())
	if s.Dialect() == DialectPostgres {
		driver = riverdatabasesql.New(s.SQLDB())
	}
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("db: River migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("db: migrating River's tables: %w", err)
	}
	return driver, nil
}
