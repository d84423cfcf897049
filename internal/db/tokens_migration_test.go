package db

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/ferryhq/ferry/internal/testbed"
)

// TestAPITokensFromBeforeExpiryKeepWorking builds a database as it was before
// migration 00006 (tokens with no expiry or revocation, one with an empty
// name), then opens it the normal way: every old token still resolves, never
// expires, is not revoked, and the nameless one gets a name saying where it
// came from.
func TestAPITokensFromBeforeExpiryKeepWorking(t *testing.T) {
	cases := []struct {
		name string
		d    *dialect
		open func(t *testing.T) (dsn string, raw *sql.DB)
	}{
		{"sqlite", sqliteDialect, func(t *testing.T) (string, *sql.DB) {
			path := filepath.Join(t.TempDir(), "ferry.db")
			raw, err := sql.Open("sqlite", SQLiteDSN(path))
			if err != nil {
				t.Fatal(err)
			}
			return path, raw
		}},
		{"postgres", postgresDialect, func(t *testing.T) (string, *sql.DB) {
			dsn := testbed.Postgres(t).CreateDatabase(t)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			return dsn, raw
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn, raw := tc.open(t)
			defer raw.Close()
			fsys, err := fs.Sub(migrations, tc.d.migrations)
			if err != nil {
				t.Fatal(err)
			}
			p, err := goose.NewProvider(tc.d.goose, raw, fsys, goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 5); err != nil { // every migration before this change
				t.Fatal(err)
			}
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			if _, err := raw.ExecContext(ctx, "INSERT INTO users (id, email, password_hash, is_admin, created_at) VALUES ('u1', 'a@example.com', 'h', true, $1)", created); err != nil {
				t.Fatal(err)
			}
			for _, row := range []struct{ id, name, hash string }{{"t1", "", "hash-1"}, {"t2", "cli", "hash-2"}} {
				if _, err := raw.ExecContext(ctx, "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, 'u1', $2, $3, $4)",
					row.id, row.name, []byte(row.hash), created); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()

			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for hash, name := range map[string]string{"hash-1": "token created before names", "hash-2": "cli"} {
				tok, err := s.APITokenGetByHash(ctx, &APITokenGetByHashParams{TokenHash: []byte(hash)})
				if err != nil {
					t.Fatalf("old token %s: %v", hash, err)
				}
				if tok.Name != name || tok.ExpiresAt != nil || tok.RevokedAt != nil || tok.UserID != "u1" || !tok.CreatedAt.Equal(created) {
					t.Fatalf("old token %s after the migration: %+v", hash, tok)
				}
			}
		})
	}
}
