package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

// dialect is what differs between databases: opening, migrating, and
// recognising constraint errors. The queries are shared.
type dialect struct {
	name       string
	goose      goose.Dialect
	migrations string // directory under migrations/
	constraint func(error) bool
	outOfRange func(error) bool
}

var (
	sqliteDialect = &dialect{
		name: DialectSQLite, goose: goose.DialectSQLite3, migrations: "migrations/sqlite",
		constraint: func(err error) bool {
			var se *sqlite.Error
			if !errors.As(err, &se) {
				return false
			}
			switch se.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
				return true
			}
			return false
		},
		outOfRange: func(err error) bool {
			// Raised by the triggers of migration 00004 (sizes stay integers).
			var se *sqlite.Error
			return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_TRIGGER &&
				strings.Contains(se.Error(), "out of range")
		},
	}
	postgresDialect = &dialect{
		name: DialectPostgres, goose: goose.DialectPostgres, migrations: "migrations/postgres",
		constraint: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "23503")
		},
		outOfRange: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "22003" // numeric_value_out_of_range
		},
	}
)

// classify marks constraint violations with ErrConflict, integer overflow
// with ErrOutOfRange and a full disk with ErrDiskFull, keeping the driver's error in the chain for
// the details.
func (d *dialect) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case d.constraint(err):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case d.outOfRange(err):
		return fmt.Errorf("%w: %w", ErrOutOfRange, err)
	case diskFull(err):
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// Options tune Open. The zero value is fine.
type Options struct {
	Logger *slog.Logger // migration progress; nil = slog.Default()
}

// Open opens the database named by dsn and brings its schema up to date
// (goose; on PostgreSQL under an advisory lock, so replicas may start
// together). dsn is a PostgreSQL URL ("postgres://..." or "postgresql://...")
// or a SQLite file path (optionally "sqlite:" + path), created if missing.
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn, opts)
	default:
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), opts)
	}
}

// SQLiteDSN is the modernc.org/sqlite DSN ferry uses for the file at path:
// WAL (readers never block the writer), a busy timeout (another process such
// as `ferry admin` may hold the lock briefly), foreign keys on, transactions
// that take the write lock at BEGIN (no deadlocking read->write upgrades),
// and times written in a fixed UTC text form whose order is time order.
func SQLiteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode()
}

// OpenSQLite opens (creating if needed) the SQLite database file at path and
// migrates it. The pool holds one connection, as River's SQLite driver
// wants when it shares the handle: SQLite has one writer anyway.
func OpenSQLite(ctx context.Context, path string, opts Options) (Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("db: open sqlite %q: need a file path without '?' or '#'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db: open sqlite %q: %w", path, err)
	}
	sqldb, err := sql.Open("sqlite", SQLiteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("db: open sqlite %q: %w", abs, err)
	}
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxIdleTime(0)
	sqldb.SetConnMaxLifetime(0)
	s, err := finishOpen(ctx, sqldb, sqliteDialect, "sqlite "+abs, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenPostgres opens the PostgreSQL database at dsn on a pgx pool and
// migrates it. ferry's queries go through database/sql on that same pool
// (stdlib.OpenDBFromPool), and River's listener takes its LISTEN connection
// from it too, so one process keeps one set of connections. Without
// pool_max_conns in the DSN the pool holds up to 32 connections: River's
// workers, uploads and the API all query at once, and pgx's default (the CPU
// count, at least 4) would queue them behind each other.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password and all: say what
		// kind of mistake it is without echoing it.
		return nil, errors.New("db: open postgres: the database URL does not parse")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 32
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open postgres: %w", err)
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	s, err := finishOpen(ctx, sqldb, postgresDialect, "postgres", opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.pool = pool
	return s, nil
}

func finishOpen(ctx context.Context, sqldb *sql.DB, d *dialect, what string, opts Options) (*store, error) {
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("db: connect to %s: %w", what, err)
	}
	if err := migrate(ctx, sqldb, d, opts.Logger); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("db: migrate %s: %w", what, err)
	}
	return &store{queries: queries{ex: sqldb, d: d}, sqldb: sqldb}, nil
}

func migrate(ctx context.Context, sqldb *sql.DB, d *dialect, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	fsys, err := fs.Sub(migrations, d.migrations)
	if err != nil {
		return err
	}
	popts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if d == postgresDialect {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(d.goose, sqldb, fsys, popts...)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		logger.Info("db: applied migration", "dialect", d.name, "source", r.Source.Path, "duration", r.Duration)
	}
	return nil
}
