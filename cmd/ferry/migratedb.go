package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/server"
)

// newMigrateDBCmd copies a single machine's SQLite database into an empty
// PostgreSQL database, for the move to replicas (docs/deploy.md).
func newMigrateDBCmd(cfg *config.Config) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "migrate-db --to postgres://...",
		Short: "Copy the SQLite database of --data into an empty PostgreSQL database (stop the server first)",
		Long: "Copies every row of ferry's tables from <data>/ferry.db into the PostgreSQL database named by --to\n" +
			"(or FERRY_MIGRATE_TO, which keeps its password out of the process list), in one transaction.\n" +
			"The target must hold no ferry data; the SQLite file is only read. Jobs still queued (deliveries,\n" +
			"notifications) are not copied, so the command refuses while any is pending: let the server finish them.\n" +
			"Then start ferry with --database-url set to the same URL and the same secret key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				to, _ = os.LookupEnv("FERRY_MIGRATE_TO")
			}
			if !strings.HasPrefix(to, "postgres://") && !strings.HasPrefix(to, "postgresql://") {
				return usagef("--to must be a PostgreSQL URL (postgres://user:pass@host:5432/db)")
			}
			if cfg.DatabaseURL != "" {
				return usagef("migrate-db reads the SQLite database in --data; unset --database-url (FERRY_DATABASE_URL)")
			}
			log := server.NewLogger(*cfg)
			return migrateDB(cmd.Context(), filepath.Join(cfg.DataDir, "ferry.db"), to, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "PostgreSQL URL of the empty target database (or set FERRY_MIGRATE_TO)")
	return cmd
}

// migrateDB copies ferry's tables (not River's job tables, not goose's
// version table: the target's own migrations made those) from the SQLite
// file at src into the PostgreSQL database at dst.
func migrateDB(ctx context.Context, src, dst string, log *slog.Logger, out io.Writer) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no SQLite database to copy: %w", err)
	}
	// Both schemas at this binary's version: the same tables on both sides.
	from, err := db.OpenSQLite(ctx, src, db.Options{Logger: log})
	if err != nil {
		return err
	}
	defer from.Close()
	// One SQLite transaction for every read: a consistent snapshot even if
	// a server still writes (it then waits for the copy: ferry's SQLite
	// transactions take the write lock at BEGIN).
	s, err := from.SQLDB().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reading the SQLite database: %w", err)
	}
	defer s.Rollback()
	if n, err := pendingJobs(ctx, s); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("%d jobs (deliveries into iconik, notifications) are still queued in the SQLite database and would be lost: start ferry serve on it until they finish (or cancel them at /admin/jobs), then stop it and run migrate-db again", n)
	}
	target, err := db.OpenPostgres(ctx, dst, db.Options{Logger: log})
	if err != nil {
		return err
	}
	defer target.Close()
	d := target.SQLDB()

	tables, err := sqliteTables(ctx, s)
	if err != nil {
		return err
	}
	cols, order, err := postgresSchema(ctx, d)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, ok := cols[t]; !ok {
			return fmt.Errorf("table %s is not in the PostgreSQL schema; is the target at another ferry version?", t)
		}
		var any bool
		if err := d.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+quoteIdent(t)+")").Scan(&any); err != nil {
			return fmt.Errorf("checking the target's %s: %w", t, err)
		}
		if any {
			return fmt.Errorf("the target database already holds ferry data (table %s): migrate-db only copies into an empty one, and changes nothing there", t)
		}
	}
	// Parents before children, so every foreign key finds its row.
	slices.SortStableFunc(tables, func(a, b string) int { return order[a] - order[b] })

	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	counts := map[string]int{}
	for _, t := range tables {
		n, err := copyTable(ctx, s, tx, t, cols[t])
		if err != nil {
			return fmt.Errorf("copying %s: %w", t, err)
		}
		counts[t] = n
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing the copy: %w", err)
	}
	for _, t := range tables {
		var n int
		if err := d.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return err
		}
		if n != counts[t] {
			return fmt.Errorf("table %s: copied %d rows but the target holds %d", t, counts[t], n)
		}
		fmt.Fprintf(out, "%-24s %d rows\n", t, n)
	}
	fmt.Fprintln(out, "copied; start ferry with --database-url set to the target and the same secret key")
	return nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteTables lists ferry's own tables.
func sqliteTables(ctx context.Context, s querier) ([]string, error) {
	rows, err := s.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'river_%' AND name <> 'goose_db_version' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// pendingJobs counts River jobs that have not reached a final state.
func pendingJobs(ctx context.Context, s querier) (int, error) {
	var exists int
	if err := s.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'river_job'`).Scan(&exists); err != nil || exists == 0 {
		return 0, err
	}
	var n int
	err := s.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n)
	return n, err
}

// postgresSchema reads each table's column types and a depth per table
// such that every table referenced by a foreign key has a smaller one.
func postgresSchema(ctx context.Context, d *sql.DB) (map[string]map[string]string, map[string]int, error) {
	cols := map[string]map[string]string{}
	rows, err := d.QueryContext(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var t, c, typ string
		if err := rows.Scan(&t, &c, &typ); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if cols[t] == nil {
			cols[t] = map[string]string{}
		}
		cols[t][c] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	refs := map[string][]string{}
	rows, err = d.QueryContext(ctx, `SELECT DISTINCT tc.table_name, ccu.table_name
		FROM information_schema.table_constraints tc
		JOIN information_schema.constraint_column_usage ccu
		  ON ccu.constraint_name = tc.constraint_name AND ccu.constraint_schema = tc.constraint_schema
		WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if child != parent {
			refs[child] = append(refs[child], parent)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	depth := map[string]int{}
	var visit func(t string, seen int) int
	visit = func(t string, seen int) int {
		if d, ok := depth[t]; ok || seen > len(cols) {
			return d
		}
		n := 0
		for _, p := range refs[t] {
			n = max(n, visit(p, seen+1)+1)
		}
		depth[t] = n
		return n
	}
	for t := range cols {
		visit(t, 0)
	}
	return cols, depth, nil
}

// copyTable copies every row of table, converting SQLite's storage classes
// to the PostgreSQL column types (0/1 to booleans, text times to
// timestamps).
func copyTable(ctx context.Context, s querier, tx *sql.Tx, table string, types map[string]string) (int, error) {
	rows, err := s.QueryContext(ctx, "SELECT * FROM "+quoteIdent(table))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	quoted, marks := make([]string, len(names)), make([]string, len(names))
	for i, n := range names {
		if _, ok := types[n]; !ok {
			return 0, fmt.Errorf("column %s is not in the PostgreSQL table", n)
		}
		quoted[i], marks[i] = quoteIdent(n), "$"+strconv.Itoa(i+1)
	}
	ins, err := tx.PrepareContext(ctx, "INSERT INTO "+quoteIdent(table)+" ("+strings.Join(quoted, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals, ptrs := make([]any, len(names)), make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		args := make([]any, len(vals))
		for i, v := range vals {
			if args[i], err = convert(v, types[names[i]]); err != nil {
				return n, fmt.Errorf("column %s: %w", names[i], err)
			}
		}
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// sqliteTimeLayouts are the text forms SQLite columns may hold times in
// (ferry writes the first; modernc.org/sqlite usually hands back time.Time).
var sqliteTimeLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func convert(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		}
	case "timestamp with time zone", "timestamp without time zone", "date":
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case []byte:
			v = string(x)
		}
		if s, ok := v.(string); ok {
			for _, l := range sqliteTimeLayouts {
				if t, err := time.Parse(l, s); err == nil {
					return t, nil
				}
			}
			return nil, fmt.Errorf("%q is not a time", s)
		}
	case "bytea":
		if s, ok := v.(string); ok {
			return []byte(s), nil
		}
		return v, nil
	case "text", "character varying", "json", "jsonb":
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
		return v, nil
	default:
		return v, nil
	}
	return nil, fmt.Errorf("cannot store %T as %s", v, pgType)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
