package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/portal"
)

// openDB opens the database the way Open does, without the rest.
func openDB(ctx context.Context, cfg config.Config) (db.Store, error) {
	dsn := cfg.DatabaseURL
	if dsn == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating data directory %s: %w", cfg.DataDir, err)
		}
		dsn = filepath.Join(cfg.DataDir, "ferry.db")
	}
	s, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	return s, nil
}

// CreateUser adds an admin user (the domain checks the email and password
// and hashes the password with argon2id).
func CreateUser(ctx context.Context, cfg config.Config, email, password string) (*db.User, error) {
	s, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	u, err := portal.New(s, portal.Options{}).CreateUser(ctx, email, password, true)
	if err != nil {
		return nil, fmt.Errorf("creating user %s: %w", email, err)
	}
	return u, nil
}

// CreateAPIToken makes a token for the user with email and returns it; only
// its hash is stored, so this is the one time it can be shown. It works
// until revoked.
func CreateAPIToken(ctx context.Context, cfg config.Config, email, name string) (string, error) {
	tok, _, err := CreateExpiringAPIToken(ctx, cfg, email, name, 0)
	return tok, err
}

// CreateExpiringAPIToken is CreateAPIToken for a token that expires after
// ttl (0: never), returning its row too.
func CreateExpiringAPIToken(ctx context.Context, cfg config.Config, email, name string, ttl time.Duration) (string, *db.APIToken, error) {
	if ttl < 0 {
		return "", nil, fmt.Errorf("a token's lifetime must be positive, not %s", ttl)
	}
	s, err := openDB(ctx, cfg)
	if err != nil {
		return "", nil, err
	}
	defer s.Close()
	addr, err := portal.NormalizeEmail(email)
	if err != nil {
		return "", nil, fmt.Errorf("%q is not an email address like name@example.com", email)
	}
	u, err := s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: addr})
	if errors.Is(err, db.ErrNotFound) {
		return "", nil, fmt.Errorf("no user has email %s; create it with `ferry admin create-user`", addr)
	}
	if err != nil {
		return "", nil, fmt.Errorf("looking up user %s: %w", addr, err)
	}
	var exp *time.Time
	if ttl > 0 {
		t := time.Now().Add(ttl)
		exp = &t
	}
	tok, row, err := portal.New(s, portal.Options{}).CreateAPIToken(ctx, u.ID, name, exp)
	if err != nil {
		return "", nil, fmt.Errorf("creating an API token for %s: %w", addr, err)
	}
	return tok, row, nil
}

// ListAPITokens lists every user's API tokens, oldest first (never a secret:
// only hashes are stored).
func ListAPITokens(ctx context.Context, cfg config.Config) ([]portal.APITokenView, error) {
	s, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return portal.New(s, portal.Options{}).ListAPITokens(ctx)
}

// RevokeAPIToken stops the token with id from working, from its next
// request on, on every server sharing the database.
func RevokeAPIToken(ctx context.Context, cfg config.Config, id string) (portal.APITokenView, error) {
	s, err := openDB(ctx, cfg)
	if err != nil {
		return portal.APITokenView{}, err
	}
	defer s.Close()
	v, err := portal.New(s, portal.Options{}).RevokeAPIToken(ctx, id)
	if pe := portal.AsError(err); pe != nil && pe.Code == "token_not_found" {
		return portal.APITokenView{}, fmt.Errorf("no API token has id %q; `ferry admin list-tokens` shows them", id)
	}
	return v, err
}
