package server

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
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

// CreateUser adds an admin user with an argon2id password hash.
func CreateUser(ctx context.Context, cfg config.Config, email, password string) (*db.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return nil, fmt.Errorf("%q is not an email address like name@example.com", email)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return nil, err
	}
	s, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	u, err := s.UserCreate(ctx, &db.UserCreateParams{Email: email, PasswordHash: hash, IsAdmin: true})
	if errors.Is(err, db.ErrConflict) {
		return nil, fmt.Errorf("a user with email %s already exists", email)
	}
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
	u, err := s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: strings.ToLower(strings.TrimSpace(email))})
	if errors.Is(err, db.ErrNotFound) {
		return "", fmt.Errorf("no user has email %s; create it with `ferry admin create-user`", email)
	}
	if err != nil {
		return "", fmt.Errorf("looking up user %s: %w", email, err)
	}
	tok, hash, err := newToken()
	if err != nil {
		return "", err
	}
	if _, err := s.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: u.ID, Name: name, TokenHash: hash}); err != nil {
		return "", fmt.Errorf("storing an API token for %s: %w", email, err)
	}
	return tok, nil
}
