package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
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

// Authenticate returns the user whose email and password these are. A wrong
// email and a wrong password fail the same way, in about the same time.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*db.User, error) {
	bad := errUnauthorized("The email or password is not correct.")
	addr, err := NormalizeEmail(email)
	if err != nil {
		_, _ = CheckPassword(dummyHash, password)
		return nil, bad
	}
	u, err := s.db.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: addr})
	if errors.Is(err, db.ErrNotFound) {
		_, _ = CheckPassword(dummyHash, password)
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

// CreateAPIToken makes a named API token for userID and returns it (shown
// once) with its row.
func (s *Service) CreateAPIToken(ctx context.Context, userID, name string) (string, *db.APIToken, error) {
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen {
		return "", nil, invalid("name", "invalid_name", "An API token needs a name of 1 to %d characters, to recognise it later.", MaxNameLen)
	}
	tok, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	t, err := s.db.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: userID, Name: name, TokenHash: hash, CreatedAt: s.now()})
	if err != nil {
		return "", nil, fmt.Errorf("portal: creating API token %q for user %s: %w", name, userID, err)
	}
	return tok, t, nil
}

// UserByAPIToken returns the user an API token belongs to, and notes its use
// (best effort: bookkeeping never refuses a caller).
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
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: t.UserID})
	if errors.Is(err, db.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, fmt.Errorf("portal: loading the user of API token %s: %w", t.ID, err)
	}
	_ = s.db.APITokenTouch(ctx, &db.APITokenTouchParams{ID: t.ID, LastUsedAt: s.now()})
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
