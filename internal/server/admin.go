package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
// its hash is stored, so this is the one time it can be shown.
func CreateAPIToken(ctx context.Context, cfg config.Config, email, name string) (string, error) {
	s, err := openDB(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer s.Close()
	addr, err := portal.NormalizeEmail(email)
	if err != nil {
		return "", fmt.Errorf("%q is not an email address like name@example.com", email)
	}
	u, err := s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: addr})
	if errors.Is(err, db.ErrNotFound) {
		return "", fmt.Errorf("no user has email %s; create it with `ferry admin create-user`", addr)
	}
	if err != nil {
		return "", fmt.Errorf("looking up user %s: %w", addr, err)
	}
	tok, _, err := portal.New(s, portal.Options{}).CreateAPIToken(ctx, u.ID, name)
	if err != nil {
		return "", fmt.Errorf("creating an API token for %s: %w", addr, err)
	}
	return tok, nil
}
