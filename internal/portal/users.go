package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/db"
)

// MinAccountPasswordLen is the shortest password an account may have
// (NIST SP 800-63B asks for at least 8; ferry guards large uploads).
const MinAccountPasswordLen = 12

// CreateUser creates an account with an argon2id-hashed password.
func (s *Service) CreateUser(ctx context.Context, email, password string, admin bool) (*db.User, error) {
	addr, err := NormalizeEmail(email)
	if err != nil {
		return nil, invalid("email", "invalid_email", "%q is not an email address like name@example.com.", email)
	}
	if utf8.RuneCountInString(password) < MinAccountPasswordLen {
		return nil, invalid("password", "weak_password", "A password needs at least %d characters.", MinAccountPasswordLen)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u, err := s.db.UserCreate(ctx, &db.UserCreateParams{Email: addr, PasswordHash: hash, IsAdmin: admin, CreatedAt: s.now()})
	if errors.Is(err, db.ErrConflict) {
		return nil, refuse(http.StatusConflict, "email_taken", "An account for %s already exists.", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("portal: creating user %s: %w", addr, err)
	}
	return u, nil
}

// CreateFirstAdmin creates the first admin account, and only while there
// is no account at all: two visitors racing through a fresh server's
// first-run form cannot both become admin (the count and the insert run in
// one transaction under UsersLock).
func (s *Service) CreateFirstAdmin(ctx context.Context, email, password string) (*db.User, error) {
	addr, hash, err := s.checkNewAccount(email, password)
	if err != nil {
		return nil, err
	}
	var u *db.User
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		if err := tx.UsersLock(ctx); err != nil {
			return err
		}
		n, err := tx.UserCount(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return refuse(http.StatusConflict, "admin_exists", "An admin already exists; sign in instead.")
		}
		u, err = tx.UserCreate(ctx, &db.UserCreateParams{Email: addr, PasswordHash: hash, IsAdmin: true, CreatedAt: s.now()})
		return err
	})
	if err != nil {
		if AsError(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("portal: creating the first admin %s: %w", addr, err)
	}
	return u, nil
}

func (s *Service) checkNewAccount(email, password string) (string, string, error) {
	addr, err := NormalizeEmail(email)
	if err != nil {
		return "", "", invalid("email", "invalid_email", "%q is not an email address like name@example.com.", email)
	}
	if utf8.RuneCountInString(password) < MinAccountPasswordLen {
		return "", "", invalid("password", "weak_password", "A password needs at least %d characters.", MinAccountPasswordLen)
	}
	hash, err := HashPassword(password)
	return addr, hash, err
}

// DeleteUser removes an account with its sessions and API tokens, but never
// the last one: a server nobody can sign in to would need the CLI again.
// Counting and deleting run under UsersLock, so two admins removing each
// other at once cannot leave none.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		if err := tx.UsersLock(ctx); err != nil {
			return err
		}
		if _, err := tx.UserGetByID(ctx, &db.UserGetByIDParams{ID: id}); err != nil {
			return err
		}
		n, err := tx.UserCount(ctx)
		if err != nil {
			return err
		}
		if n <= 1 {
			return refuse(http.StatusConflict, "last_admin", "This is the only admin; add another before removing it.")
		}
		return tx.UserDelete(ctx, &db.UserDeleteParams{ID: id})
	})
	if err != nil && AsError(err) == nil && !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("portal: deleting user %s: %w", id, err)
	}
	return err
}

// Authenticate returns the user whose email and password these are. A wrong
// email and a wrong password fail the same way, in about the same time.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*db.User, error) {
	bad := errUnauthorized("The email or password is not correct.")
	addr, err := NormalizeEmail(email)
	if err != nil {
		_, _ = CheckPassword(dummyHash(), password)
		return nil, bad
	}
	u, err := s.db.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: addr})
	if errors.Is(err, db.ErrNotFound) {
		_, _ = CheckPassword(dummyHash(), password)
		return nil, bad
	}
	if err != nil {
		return nil, fmt.Errorf("portal: looking up user %s: %w", addr, err)
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("portal: checking the password of user %s: %w", u.ID, err)
	}
	if !ok {
		return nil, bad
	}
	return u, nil
}

// SetPassword replaces a user's password.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	if utf8.RuneCountInString(password) < MinAccountPasswordLen {
		return invalid("password", "weak_password", "A password needs at least %d characters.", MinAccountPasswordLen)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if _, err := s.db.UserSetPassword(ctx, &db.UserSetPasswordParams{ID: userID, PasswordHash: hash}); err != nil {
		return fmt.Errorf("portal: setting the password of user %s: %w", userID, err)
	}
	return nil
}

// CreateSession starts a session of ttl for userID and returns its cookie
// token (shown once) and row, which holds the session's CSRF secret.
func (s *Service) CreateSession(ctx context.Context, userID string, ttl time.Duration) (string, *db.Session, error) {
	tok, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	csrf, _, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	sess, err := s.db.SessionCreate(ctx, &db.SessionCreateParams{TokenHash: hash, UserID: userID, CSRFSecret: []byte(csrf), CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return "", nil, fmt.Errorf("portal: creating a session for user %s: %w", userID, err)
	}
	return tok, sess, nil
}

// SessionByToken returns a live session and its user; unknown or expired
// tokens are unauthorized (an expired row is deleted on the way).
func (s *Service) SessionByToken(ctx context.Context, token string) (*db.Session, *db.User, error) {
	bad := errUnauthorized("Your session has ended; sign in again.")
	if token == "" {
		return nil, nil, bad
	}
	sess, err := s.db.SessionGetByHash(ctx, &db.SessionGetByHashParams{TokenHash: HashToken(token)})
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, bad
	}
	if err != nil {
		return nil, nil, fmt.Errorf("portal: looking up a session: %w", err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		_ = s.db.SessionDelete(ctx, &db.SessionDeleteParams{TokenHash: sess.TokenHash}) // tidy up; the answer is the same
		return nil, nil, bad
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: sess.UserID})
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, bad
	}
	if err != nil {
		return nil, nil, fmt.Errorf("portal: loading the user of session %s: %w", sess.ID, err)
	}
	return sess, u, nil
}

// DeleteSession signs a session out; an unknown token is not an error.
func (s *Service) DeleteSession(ctx context.Context, token string) error {
	if err := s.db.SessionDelete(ctx, &db.SessionDeleteParams{TokenHash: HashToken(token)}); err != nil {
		return fmt.Errorf("portal: deleting a session: %w", err)
	}
	return nil
}

// apiTokenTouchEvery bounds how often a token's last use is written: every
// admin request authenticates, and a write per request would turn reads into
// writes (SQLite has one writer; PostgreSQL would churn a row per call). A
// last use known to within a minute answers "is this token still in use?".
const apiTokenTouchEvery = time.Minute

// CreateAPIToken makes a named API token for userID, valid until expiresAt
// (nil: until revoked), and returns it (shown once) with its row.
func (s *Service) CreateAPIToken(ctx context.Context, userID, name string, expiresAt *time.Time) (string, *db.APIToken, error) {
	// No control characters: a name is printed in the CLI's token table and
	// in logs, where a tab or newline could fake a column or a row.
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > MaxNameLen || strings.ContainsFunc(name, unicode.IsControl) {
		return "", nil, invalid("name", "invalid_name", "An API token needs a name of 1 to %d characters without control characters, to recognise it later.", MaxNameLen)
	}
	now := s.now()
	if expiresAt != nil && !expiresAt.After(now) {
		return "", nil, invalid("expires_at", "invalid_expires_at", "An API token's expiry must be in the future.")
	}
	tok, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	t, err := s.db.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: userID, Name: name, TokenHash: hash, CreatedAt: now, ExpiresAt: expiresAt})
	if err != nil {
		return "", nil, fmt.Errorf("portal: creating API token %q for user %s: %w", name, userID, err)
	}
	return tok, t, nil
}

// APITokenState says whether a token is "active", "expired" or "revoked" at now.
func APITokenState(t *db.APIToken, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

// APITokenView is a token as the admin list shows it: its row (the hash
// stays behind in callers' wire types) and its user's email.
type APITokenView struct {
	*db.APIToken
	UserEmail string
	State     string
}

// ListAPITokens lists every user's tokens, oldest first, revoked ones too.
func (s *Service) ListAPITokens(ctx context.Context) ([]APITokenView, error) {
	rows, err := s.db.APITokenList(ctx, &db.APITokenListParams{})
	if err != nil {
		return nil, fmt.Errorf("portal: listing API tokens: %w", err)
	}
	now := s.now()
	emails := map[string]string{}
	out := make([]APITokenView, 0, len(rows))
	for _, t := range rows {
		email, ok := emails[t.UserID]
		if !ok {
			u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: t.UserID})
			if err != nil {
				return nil, fmt.Errorf("portal: loading the user of API token %s: %w", t.ID, err)
			}
			email = u.Email
			emails[t.UserID] = email
		}
		out = append(out, APITokenView{APIToken: t, UserEmail: email, State: APITokenState(t, now)})
	}
	return out, nil
}

// RevokeAPIToken stops a token from working, from its very next request; its
// row stays for the list. Revoking a revoked token changes nothing.
func (s *Service) RevokeAPIToken(ctx context.Context, id string) (APITokenView, error) {
	t, err := s.db.APITokenRevoke(ctx, &db.APITokenRevokeParams{ID: id, RevokedAt: s.now()})
	if errors.Is(err, db.ErrNotFound) {
		return APITokenView{}, refuse(http.StatusNotFound, "token_not_found", "There is no API token with id %q.", id)
	}
	if err != nil {
		return APITokenView{}, fmt.Errorf("portal: revoking API token %s: %w", id, err)
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: t.UserID})
	if err != nil {
		return APITokenView{}, fmt.Errorf("portal: loading the user of API token %s: %w", t.ID, err)
	}
	return APITokenView{APIToken: t, UserEmail: u.Email, State: APITokenState(t, s.now())}, nil
}

// UserByAPIToken returns the user an API token belongs to. The row is read on
// every request, so a revocation or expiry takes effect on the very next one
// (no cache keeps a dead token alive). Its use is noted at most once per
// apiTokenTouchEvery, best effort: bookkeeping never refuses a caller.
func (s *Service) UserByAPIToken(ctx context.Context, token string) (*db.User, error) {
	bad := errUnauthorized("The API token is not valid.")
	if token == "" {
		return nil, bad
	}
	t, err := s.db.APITokenGetByHash(ctx, &db.APITokenGetByHashParams{TokenHash: HashToken(token)})
	if errors.Is(err, db.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, fmt.Errorf("portal: looking up an API token: %w", err)
	}
	now := s.now()
	switch APITokenState(t, now) {
	case "revoked":
		return nil, refuse(http.StatusUnauthorized, "token_revoked", "This API token was revoked on %s; ask an admin for a new one.",
			t.RevokedAt.UTC().Format(time.RFC3339))
	case "expired":
		return nil, refuse(http.StatusUnauthorized, "token_expired", "This API token expired on %s; create a new one.",
			t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: t.UserID})
	if errors.Is(err, db.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, fmt.Errorf("portal: loading the user of API token %s: %w", t.ID, err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= apiTokenTouchEvery {
		_ = s.db.APITokenTouch(ctx, &db.APITokenTouchParams{ID: t.ID, LastUsedAt: now})
	}
	return u, nil
}

// LinkOptions shape a download link. Zero values: no expiry, no password,
// unlimited downloads.
type LinkOptions struct {
	TTL           time.Duration
	Password      string
	DownloadLimit int
}

// CreateDownloadLink makes a link to a finalized package and returns its
// token (shown once) with its row.
func (s *Service) CreateDownloadLink(ctx context.Context, packageID string, o LinkOptions) (string, *db.DownloadLink, error) {
	if o.TTL < 0 || o.DownloadLimit < 0 {
		return "", nil, invalid("link", "invalid_link", "Expiry and download limit must be 0 (none) or positive.")
	}
	pkg, err := s.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: packageID})
	if errors.Is(err, db.ErrNotFound) {
		return "", nil, refuse(http.StatusNotFound, "package_not_found", "There is no such package.")
	}
	if err != nil {
		return "", nil, fmt.Errorf("portal: loading package %s: %w", packageID, err)
	}
	if pkg.State != db.PackageFinalized {
		return "", nil, refuse(http.StatusConflict, "package_not_finalized", "Only a finished package can be shared; this one is %s.", pkg.State)
	}
	var pwHash string
	if o.Password != "" {
		if pwHash, err = HashPassword(o.Password); err != nil {
			return "", nil, err
		}
	}
	tok, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	var exp *time.Time
	if o.TTL > 0 {
		t := now.Add(o.TTL)
		exp = &t
	}
	l, err := s.db.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: packageID, TokenHash: hash, PasswordHash: pwHash,
		DownloadLimit: o.DownloadLimit, CreatedAt: now, ExpiresAt: exp})
	if err != nil {
		return "", nil, fmt.Errorf("portal: creating a download link for package %s: %w", packageID, err)
	}
	return tok, l, nil
}
