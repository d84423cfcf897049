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
//
// On PostgreSQL the driver is database/sql's (ferry's transactions are
// *sql.Tx) with riverpgxv5's listener on the same pgx pool: an insert, in
// ferry's transaction, sends River's NOTIFY when that transaction commits,
// and every replica's client LISTENs, so a job is fetched as soon as it
// exists instead of at the next poll. Each running client keeps one pool
// connection for its LISTEN.
func RiverDriver(ctx context.Context, s Store) (riverdriver.Driver[*sql.Tx], error) {
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(s.SQLDB())
	if s.Dialect() == DialectPostgres {
		st, ok := s.(*store)
		if !ok || st.pool == nil {
			return nil, fmt.Errorf("db: River on PostgreSQL needs a Store opened by OpenPostgres")
		}
		driver = riverdatabasesql.NewWithPgxListener(s.SQLDB(), st.pool)
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
