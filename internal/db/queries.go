package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements Queries once for every dialect. The SQL is the common
// subset of SQLite and PostgreSQL: $n placeholders (modernc.org/sqlite binds
// $n by number), RETURNING, JSON lists in TEXT, times passed from Go.
type queries struct {
	ex execer
	d  *dialect
}

type rowScanner interface{ Scan(dest ...any) error }

func newID(id string) string {
	if id != "" {
		return id
	}
	return uuid.Must(uuid.NewV7()).String()
}

// ts is how every time is stored: UTC, microseconds (PostgreSQL's
// precision, so a round trip compares equal), "now" when zero.
func ts(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonText(list []string) string {
	if len(list) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(list) // []string always marshals
	return string(b)
}

// timeScan reads a time whatever the driver hands over: PostgreSQL gives
// time.Time; SQLite gives time.Time for a declared TIMESTAMP column but text
// where it cannot see the declaration (RETURNING, expressions).
type timeScan struct {
	dst *time.Time
	ptr **time.Time // nullable column
}

var sqliteTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

func parseTime(s string) (time.Time, error) {
	var err error
	for _, f := range sqliteTimeFormats {
		var t time.Time
		if t, err = time.Parse(f, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("db: parse time %q: %w", s, err)
}

func (s timeScan) Scan(v any) error {
	var t time.Time
	switch x := v.(type) {
	case nil:
		if s.ptr != nil {
			*s.ptr = nil
			return nil
		}
		return errors.New("db: NULL in a NOT NULL time column")
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = parseTime(x); err != nil {
			return err
		}
	case []byte:
		var err error
		if t, err = parseTime(string(x)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("db: cannot scan %T into a time", v)
	}
	t = t.UTC()
	if s.ptr != nil {
		*s.ptr = &t
	} else {
		*s.dst = t
	}
	return nil
}

// listScan reads a JSON list column.
type listScan struct{ dst *[]string }

func (s listScan) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	case nil:
		*s.dst = nil
		return nil
	default:
		return fmt.Errorf("db: cannot scan %T into a list", v)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("db: decode list %q: %w", b, err)
	}
	if len(out) == 0 {
		out = nil
	}
	*s.dst = out
	return nil
}

// one runs a query returning at most one row; no row is notFound
// (ErrNotFound for reads, ErrPrecondition for conditional updates).
func one[T any](ctx context.Context, q queries, op string, notFound error, scan func(rowScanner) (*T, error), query string, args ...any) (*T, error) {
	v, err := scan(q.ex.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("db: %s: %w", op, notFound)
	}
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", op, q.d.classify(err))
	}
	return v, nil
}

func many[T any](ctx context.Context, q queries, op string, scan func(rowScanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := q.ex.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", op, q.d.classify(err))
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("db: %s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: %s: %w", op, q.d.classify(err))
	}
	return out, nil
}

// exec runs a statement; when mustAffect, zero affected rows is notFound.
func (q queries) exec(ctx context.Context, op string, notFound error, query string, args ...any) (int64, error) {
	res, err := q.ex.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("db: %s: %w", op, q.d.classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("db: %s: %w", op, err)
	}
	if n == 0 && notFound != nil {
		return 0, fmt.Errorf("db: %s: %w", op, notFound)
	}
	return n, nil
}

// ---- users ----

const userCols = "id, email, password_hash, is_admin, created_at"

func scanUser(r rowScanner) (*User, error) {
	var u User
	err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.IsAdmin, timeScan{dst: &u.CreatedAt})
	return &u, err
}

func (q queries) UserCount(ctx context.Context) (int, error) {
	var n int
	if err := q.ex.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("db: UserCount: %w", err)
	}
	return n, nil
}

func (q queries) UserCreate(ctx context.Context, p *UserCreateParams) (*User, error) {
	return one(ctx, q, "UserCreate", ErrNotFound, scanUser,
		"INSERT INTO users ("+userCols+") VALUES ($1, $2, $3, $4, $5) RETURNING "+userCols,
		newID(p.ID), strings.ToLower(p.Email), p.PasswordHash, p.IsAdmin, ts(p.CreatedAt))
}

func (q queries) UserDelete(ctx context.Context, p *UserDeleteParams) error {
	_, err := q.exec(ctx, "UserDelete", ErrNotFound, "DELETE FROM users WHERE id = $1", p.ID)
	return err
}

func (q queries) UsersLock(ctx context.Context) error {
	if q.d.name != DialectPostgres {
		// SQLite runs one write transaction at a time on its one connection.
		return nil
	}
	// SHARE ROW EXCLUSIVE conflicts with itself and with writes, not reads:
	// sign-ins go on while an admin is added or removed.
	if _, err := q.ex.ExecContext(ctx, "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("db: UsersLock: %w", q.d.classify(err))
	}
	return nil
}

func (q queries) UserGetByEmail(ctx context.Context, p *UserGetByEmailParams) (*User, error) {
	return one(ctx, q, "UserGetByEmail", ErrNotFound, scanUser,
		"SELECT "+userCols+" FROM users WHERE email = $1", strings.ToLower(p.Email))
}

func (q queries) UserGetByID(ctx context.Context, p *UserGetByIDParams) (*User, error) {
	return one(ctx, q, "UserGetByID", ErrNotFound, scanUser, "SELECT "+userCols+" FROM users WHERE id = $1", p.ID)
}

func (q queries) UserList(ctx context.Context) ([]*User, error) {
	return many(ctx, q, "UserList", scanUser, "SELECT "+userCols+" FROM users ORDER BY email")
}

func (q queries) UserSetPassword(ctx context.Context, p *UserSetPasswordParams) (*User, error) {
	return one(ctx, q, "UserSetPassword", ErrNotFound, scanUser,
		"UPDATE users SET password_hash = $2 WHERE id = $1 RETURNING "+userCols, p.ID, p.PasswordHash)
}

// ---- sessions ----

const sessionCols = "id, token_hash, user_id, csrf_secret, created_at, expires_at"

func scanSession(r rowScanner) (*Session, error) {
	var s Session
	err := r.Scan(&s.ID, &s.TokenHash, &s.UserID, &s.CSRFSecret, timeScan{dst: &s.CreatedAt}, timeScan{dst: &s.ExpiresAt})
	return &s, err
}

func (q queries) SessionCreate(ctx context.Context, p *SessionCreateParams) (*Session, error) {
	return one(ctx, q, "SessionCreate", ErrNotFound, scanSession,
		"INSERT INTO sessions ("+sessionCols+") VALUES ($1, $2, $3, $4, $5, $6) RETURNING "+sessionCols,
		newID(p.ID), p.TokenHash, p.UserID, p.CSRFSecret, ts(p.CreatedAt), ts(p.ExpiresAt))
}

func (q queries) SessionDelete(ctx context.Context, p *SessionDeleteParams) error {
	_, err := q.exec(ctx, "SessionDelete", nil, "DELETE FROM sessions WHERE token_hash = $1", p.TokenHash)
	return err
}

func (q queries) SessionDeleteExpired(ctx context.Context, p *SessionDeleteExpiredParams) (int, error) {
	n, err := q.exec(ctx, "SessionDeleteExpired", nil, "DELETE FROM sessions WHERE expires_at <= $1", ts(p.Now))
	return int(n), err
}

func (q queries) SessionGetByHash(ctx context.Context, p *SessionGetByHashParams) (*Session, error) {
	return one(ctx, q, "SessionGetByHash", ErrNotFound, scanSession,
		"SELECT "+sessionCols+" FROM sessions WHERE token_hash = $1", p.TokenHash)
}

// ---- API tokens ----

const apiTokenCols = "id, user_id, name, token_hash, created_at, last_used_at, expires_at, revoked_at"

func scanAPIToken(r rowScanner) (*APIToken, error) {
	var t APIToken
	err := r.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, timeScan{dst: &t.CreatedAt}, timeScan{ptr: &t.LastUsedAt},
		timeScan{ptr: &t.ExpiresAt}, timeScan{ptr: &t.RevokedAt})
	return &t, err
}

func (q queries) APITokenCreate(ctx context.Context, p *APITokenCreateParams) (*APIToken, error) {
	return one(ctx, q, "APITokenCreate", ErrNotFound, scanAPIToken,
		"INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING "+apiTokenCols,
		newID(p.ID), p.UserID, p.Name, p.TokenHash, ts(p.CreatedAt), tsPtr(p.ExpiresAt))
}

func (q queries) APITokenDelete(ctx context.Context, p *APITokenDeleteParams) error {
	_, err := q.exec(ctx, "APITokenDelete", ErrNotFound, "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2", p.ID, p.UserID)
	return err
}

func (q queries) APITokenGetByHash(ctx context.Context, p *APITokenGetByHashParams) (*APIToken, error) {
	return one(ctx, q, "APITokenGetByHash", ErrNotFound, scanAPIToken,
		"SELECT "+apiTokenCols+" FROM api_tokens WHERE token_hash = $1", p.TokenHash)
}

func (q queries) APITokenGetByID(ctx context.Context, p *APITokenGetByIDParams) (*APIToken, error) {
	return one(ctx, q, "APITokenGetByID", ErrNotFound, scanAPIToken,
		"SELECT "+apiTokenCols+" FROM api_tokens WHERE id = $1", p.ID)
}

func (q queries) APITokenList(ctx context.Context, _ *APITokenListParams) ([]*APIToken, error) {
	return many(ctx, q, "APITokenList", scanAPIToken,
		"SELECT "+apiTokenCols+" FROM api_tokens ORDER BY created_at, id")
}

func (q queries) APITokenListByUser(ctx context.Context, p *APITokenListByUserParams) ([]*APIToken, error) {
	return many(ctx, q, "APITokenListByUser", scanAPIToken,
		"SELECT "+apiTokenCols+" FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id", p.UserID)
}

// APITokenRevoke keeps the first revocation time: revoking twice is the same
// as once, and the list keeps saying when the token stopped working.
func (q queries) APITokenRevoke(ctx context.Context, p *APITokenRevokeParams) (*APIToken, error) {
	return one(ctx, q, "APITokenRevoke", ErrNotFound, scanAPIToken,
		"UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING "+apiTokenCols, p.ID, ts(p.RevokedAt))
}

// APITokenTouch only moves last_used_at forward: replicas (or requests)
// noting uses out of order never make the recorded last use go back.
func (q queries) APITokenTouch(ctx context.Context, p *APITokenTouchParams) error {
	_, err := q.exec(ctx, "APITokenTouch", nil,
		"UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)", p.ID, ts(p.LastUsedAt))
	return err
}

// ---- portals ----

const portalCols = "id, name, slug, active, password_hash, recipients, welcome_message, max_file_size, max_package_size, " +
	"max_file_count, allowed_extensions, denied_extensions, connection_ids, retention_days, created_at, updated_at"

func scanPortal(r rowScanner) (*Portal, error) {
	var p Portal
	err := r.Scan(&p.ID, &p.Name, &p.Slug, &p.Active, &p.PasswordHash, listScan{&p.Recipients}, &p.WelcomeMessage,
		&p.Limits.MaxFileSize, &p.Limits.MaxPackageSize, &p.Limits.MaxFileCount,
		listScan{&p.Limits.AllowedExtensions}, listScan{&p.Limits.DeniedExtensions}, listScan{&p.ConnectionIDs},
		&p.RetentionDays, timeScan{dst: &p.CreatedAt}, timeScan{dst: &p.UpdatedAt})
	return &p, err
}

func (q queries) PortalCreate(ctx context.Context, p *PortalCreateParams) (*Portal, error) {
	now := ts(p.CreatedAt)
	return one(ctx, q, "PortalCreate", ErrNotFound, scanPortal,
		"INSERT INTO portals ("+portalCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING "+portalCols,
		newID(p.ID), p.Name, p.Slug, p.Active, p.PasswordHash, jsonText(p.Recipients), p.WelcomeMessage,
		p.Limits.MaxFileSize, p.Limits.MaxPackageSize, p.Limits.MaxFileCount,
		jsonText(p.Limits.AllowedExtensions), jsonText(p.Limits.DeniedExtensions), jsonText(p.ConnectionIDs),
		p.RetentionDays, now)
}

func (q queries) PortalDelete(ctx context.Context, p *PortalDeleteParams) error {
	_, err := q.exec(ctx, "PortalDelete", ErrNotFound, "DELETE FROM portals WHERE id = $1", p.ID)
	return err
}

func (q queries) PortalGetByID(ctx context.Context, p *PortalGetByIDParams) (*Portal, error) {
	return one(ctx, q, "PortalGetByID", ErrNotFound, scanPortal, "SELECT "+portalCols+" FROM portals WHERE id = $1", p.ID)
}

func (q queries) PortalGetBySlug(ctx context.Context, p *PortalGetBySlugParams) (*Portal, error) {
	return one(ctx, q, "PortalGetBySlug", ErrNotFound, scanPortal, "SELECT "+portalCols+" FROM portals WHERE slug = $1", p.Slug)
}

func (q queries) PortalList(ctx context.Context, _ *PortalListParams) ([]*Portal, error) {
	return many(ctx, q, "PortalList", scanPortal, "SELECT "+portalCols+" FROM portals ORDER BY name, id")
}

func (q queries) PortalUpdate(ctx context.Context, p *PortalUpdateParams) (*Portal, error) {
	return one(ctx, q, "PortalUpdate", ErrNotFound, scanPortal,
		`UPDATE portals SET name = $2, slug = $3, active = $4, password_hash = $5, recipients = $6, welcome_message = $7,
		max_file_size = $8, max_package_size = $9, max_file_count = $10, allowed_extensions = $11, denied_extensions = $12,
		connection_ids = $13, retention_days = $14, updated_at = $15 WHERE id = $1 RETURNING `+portalCols,
		p.ID, p.Name, p.Slug, p.Active, p.PasswordHash, jsonText(p.Recipients), p.WelcomeMessage,
		p.Limits.MaxFileSize, p.Limits.MaxPackageSize, p.Limits.MaxFileCount,
		jsonText(p.Limits.AllowedExtensions), jsonText(p.Limits.DeniedExtensions), jsonText(p.ConnectionIDs),
		p.RetentionDays, ts(p.UpdatedAt))
}

// ---- packages ----

const packageCols = "id, portal_id, created_by_user_id, name, description, sender_email, state, total_size, file_count, " +
	"upload_token_hash, created_at, finalized_at, expires_at"

func scanPackage(r rowScanner) (*Package, error) {
	var p Package
	var portalID, userID sql.NullString
	err := r.Scan(&p.ID, &portalID, &userID, &p.Name, &p.Description, &p.SenderEmail, &p.State, &p.TotalSize, &p.FileCount,
		&p.UploadTokenHash, timeScan{dst: &p.CreatedAt}, timeScan{ptr: &p.FinalizedAt}, timeScan{ptr: &p.ExpiresAt})
	p.PortalID, p.CreatedByUserID = portalID.String, userID.String
	return &p, err
}

func (q queries) PackageAddUsage(ctx context.Context, p *PackageAddUsageParams) (*Package, error) {
	return one(ctx, q, "PackageAddUsage", ErrPrecondition, scanPackage,
		"UPDATE packages SET file_count = file_count + $2, total_size = total_size + $3 WHERE id = $1 AND state = 'uploading' RETURNING "+packageCols,
		p.ID, p.FilesDelta, p.BytesDelta)
}

func (q queries) PackageCreate(ctx context.Context, p *PackageCreateParams) (*Package, error) {
	return one(ctx, q, "PackageCreate", ErrNotFound, scanPackage,
		`INSERT INTO packages (id, portal_id, created_by_user_id, name, description, sender_email, state, upload_token_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'uploading', $7, $8) RETURNING `+packageCols,
		newID(p.ID), nullString(p.PortalID), nullString(p.CreatedByUserID), p.Name, p.Description, strings.ToLower(p.SenderEmail),
		p.UploadTokenHash, ts(p.CreatedAt))
}

func (q queries) PackageDelete(ctx context.Context, p *PackageDeleteParams) error {
	_, err := q.exec(ctx, "PackageDelete", ErrNotFound, "DELETE FROM packages WHERE id = $1", p.ID)
	return err
}

func (q queries) PackageGetByID(ctx context.Context, p *PackageGetByIDParams) (*Package, error) {
	return one(ctx, q, "PackageGetByID", ErrNotFound, scanPackage, "SELECT "+packageCols+" FROM packages WHERE id = $1", p.ID)
}

func (q queries) PackageGetByUploadTokenHash(ctx context.Context, p *PackageGetByUploadTokenHashParams) (*Package, error) {
	return one(ctx, q, "PackageGetByUploadTokenHash", ErrNotFound, scanPackage,
		"SELECT "+packageCols+" FROM packages WHERE upload_token_hash = $1", p.UploadTokenHash)
}

func (q queries) PackageList(ctx context.Context, p *PackageListParams) ([]*Package, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	return many(ctx, q, "PackageList", scanPackage,
		"SELECT "+packageCols+` FROM packages WHERE ($1 = '' OR portal_id = $1) AND ($2 = '' OR state = $2) AND ($5 = '' OR sender_email = $5)
		AND ($6 = '' OR lower(name) LIKE $6 ESCAPE '\' OR sender_email LIKE $6 ESCAPE '\')
		ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`,
		p.PortalID, string(p.State), limit, p.Offset, strings.ToLower(p.SenderEmail), likePattern(p.Query))
}

// likePattern is a LIKE pattern matching q anywhere, case-folded, with LIKE's
// own wildcards (and the escape character) taken literally; "" for no query.
func likePattern(q string) string {
	q = strings.TrimSpace(q)
	if q == "" {
		return ""
	}
	q = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(q))
	return "%" + q + "%"
}

func (q queries) PackageListExpirable(ctx context.Context, p *PackageListExpirableParams) ([]*Package, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	return many(ctx, q, "PackageListExpirable", scanPackage,
		"SELECT "+packageCols+` FROM packages WHERE state <> 'expired' AND expires_at IS NOT NULL AND expires_at <= $1
		ORDER BY expires_at, id LIMIT $2`, ts(p.Now), limit)
}

func (q queries) PackageSetExpired(ctx context.Context, p *PackageSetExpiredParams) (*Package, error) {
	return one(ctx, q, "PackageSetExpired", ErrNotFound, scanPackage,
		"UPDATE packages SET state = 'expired' WHERE id = $1 RETURNING "+packageCols, p.ID)
}

func (q queries) PackageSetFinalized(ctx context.Context, p *PackageSetFinalizedParams) (*Package, error) {
	return one(ctx, q, "PackageSetFinalized", ErrPrecondition, scanPackage,
		"UPDATE packages SET state = 'finalized', finalized_at = $2, expires_at = $3 WHERE id = $1 AND state = 'uploading' RETURNING "+packageCols,
		p.ID, ts(p.FinalizedAt), tsPtr(p.ExpiresAt))
}

// ---- files ----

const fileCols = "id, package_id, path, path_key, size, sha256, sha256_verified, state, failure_reason, upload_id, created_at, completed_at"

func scanFile(r rowScanner) (*File, error) {
	var f File
	err := r.Scan(&f.ID, &f.PackageID, &f.Path, &f.PathKey, &f.Size, &f.SHA256, &f.SHA256Verified, &f.State,
		&f.FailureReason, &f.UploadID, timeScan{dst: &f.CreatedAt}, timeScan{ptr: &f.CompletedAt})
	return &f, err
}

func (q queries) FileCreate(ctx context.Context, p *FileCreateParams) (*File, error) {
	return one(ctx, q, "FileCreate", ErrNotFound, scanFile,
		`INSERT INTO files (id, package_id, path, path_key, size, sha256, state, upload_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'uploading', $7, $8) RETURNING `+fileCols,
		newID(p.ID), p.PackageID, p.Path, p.PathKey, p.Size, p.SHA256, p.UploadID, ts(p.CreatedAt))
}

func (q queries) FileDelete(ctx context.Context, p *FileDeleteParams) error {
	_, err := q.exec(ctx, "FileDelete", ErrNotFound, "DELETE FROM files WHERE id = $1", p.ID)
	return err
}

func (q queries) FileFindPathConflict(ctx context.Context, p *FileFindPathConflictParams) (*File, error) {
	// Keys are compared bytewise (BINARY in SQLite, COLLATE "C" in
	// PostgreSQL), so "inside folder k" is the range [k+"/", k+"0"): '0'
	// is the byte after '/'. The range uses the (package_id, path_key) index.
	var b strings.Builder
	b.WriteString("SELECT " + fileCols + " FROM files WHERE package_id = $1 AND (path_key = $2 OR (path_key >= $3 AND path_key < $4)")
	args := []any{p.PackageID, p.PathKey, p.PathKey + "/", p.PathKey + "0"}
	if len(p.AncestorKeys) > 0 {
		b.WriteString(" OR path_key IN (")
		for i, k := range p.AncestorKeys {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, k)
			b.WriteString("$" + strconv.Itoa(len(args)))
		}
		b.WriteString(")")
	}
	b.WriteString(") ORDER BY path_key LIMIT 1")
	return one(ctx, q, "FileFindPathConflict", ErrNotFound, scanFile, b.String(), args...)
}

func (q queries) FileGetByID(ctx context.Context, p *FileGetByIDParams) (*File, error) {
	return one(ctx, q, "FileGetByID", ErrNotFound, scanFile, "SELECT "+fileCols+" FROM files WHERE id = $1", p.ID)
}

func (q queries) FileGetByPathKey(ctx context.Context, p *FileGetByPathKeyParams) (*File, error) {
	return one(ctx, q, "FileGetByPathKey", ErrNotFound, scanFile,
		"SELECT "+fileCols+" FROM files WHERE package_id = $1 AND path_key = $2", p.PackageID, p.PathKey)
}

func (q queries) FileGetByUploadID(ctx context.Context, p *FileGetByUploadIDParams) (*File, error) {
	if p.UploadID == "" {
		return nil, fmt.Errorf("db: FileGetByUploadID: empty upload id: %w", ErrNotFound)
	}
	return one(ctx, q, "FileGetByUploadID", ErrNotFound, scanFile,
		"SELECT "+fileCols+" FROM files WHERE upload_id = $1 ORDER BY created_at DESC LIMIT 1", p.UploadID)
}

func (q queries) FileGetInFolder(ctx context.Context, p *FileGetInFolderParams) (*File, error) {
	// The same byte range as FileFindPathConflict's "inside folder k".
	return one(ctx, q, "FileGetInFolder", ErrNotFound, scanFile,
		"SELECT "+fileCols+" FROM files WHERE package_id = $1 AND path_key >= $2 AND path_key < $3 ORDER BY path_key LIMIT 1",
		p.PackageID, p.FolderKey+"/", p.FolderKey+"0")
}

func (q queries) FileListByPackage(ctx context.Context, p *FileListByPackageParams) ([]*File, error) {
	return many(ctx, q, "FileListByPackage", scanFile,
		"SELECT "+fileCols+" FROM files WHERE package_id = $1 ORDER BY path_key, id", p.PackageID)
}

func (q queries) FileSetComplete(ctx context.Context, p *FileSetCompleteParams) (*File, error) {
	return one(ctx, q, "FileSetComplete", ErrPrecondition, scanFile,
		`UPDATE files SET state = 'complete', size = $2, sha256 = $3, sha256_verified = $4, completed_at = $5, failure_reason = ''
		WHERE id = $1 AND state = 'uploading' RETURNING `+fileCols,
		p.ID, p.Size, p.SHA256, p.SHA256Verified, ts(p.CompletedAt))
}

func (q queries) FileSetFailed(ctx context.Context, p *FileSetFailedParams) (*File, error) {
	return one(ctx, q, "FileSetFailed", ErrPrecondition, scanFile,
		"UPDATE files SET state = 'failed', failure_reason = $2 WHERE id = $1 AND state = 'uploading' RETURNING "+fileCols,
		p.ID, p.Reason)
}

func (q queries) FileSetSHA256IfEmpty(ctx context.Context, p *FileSetSHA256IfEmptyParams) (*File, error) {
	return one(ctx, q, "FileSetSHA256IfEmpty", ErrNotFound, scanFile,
		`UPDATE files SET sha256 = CASE WHEN sha256 = '' THEN $2 ELSE sha256 END,
		sha256_verified = CASE WHEN sha256 = '' THEN TRUE ELSE sha256_verified END
		WHERE id = $1 RETURNING `+fileCols, p.ID, p.SHA256)
}

func (q queries) FileSetUploadID(ctx context.Context, p *FileSetUploadIDParams) (*File, error) {
	return one(ctx, q, "FileSetUploadID", ErrNotFound, scanFile,
		"UPDATE files SET upload_id = $2 WHERE id = $1 RETURNING "+fileCols, p.ID, p.UploadID)
}

// ---- download links ----

const downloadLinkCols = "id, package_id, token_hash, password_hash, download_limit, download_count, created_at, expires_at"

func scanDownloadLink(r rowScanner) (*DownloadLink, error) {
	var l DownloadLink
	err := r.Scan(&l.ID, &l.PackageID, &l.TokenHash, &l.PasswordHash, &l.DownloadLimit, &l.DownloadCount,
		timeScan{dst: &l.CreatedAt}, timeScan{ptr: &l.ExpiresAt})
	return &l, err
}

func (q queries) DownloadLinkCreate(ctx context.Context, p *DownloadLinkCreateParams) (*DownloadLink, error) {
	return one(ctx, q, "DownloadLinkCreate", ErrNotFound, scanDownloadLink,
		`INSERT INTO download_links (id, package_id, token_hash, password_hash, download_limit, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+downloadLinkCols,
		newID(p.ID), p.PackageID, p.TokenHash, p.PasswordHash, p.DownloadLimit, ts(p.CreatedAt), tsPtr(p.ExpiresAt))
}

func (q queries) DownloadLinkDelete(ctx context.Context, p *DownloadLinkDeleteParams) error {
	_, err := q.exec(ctx, "DownloadLinkDelete", ErrNotFound, "DELETE FROM download_links WHERE id = $1", p.ID)
	return err
}

const downloadLinkFileCols = "link_id, file_id, bytes_served"

func scanDownloadLinkFile(r rowScanner) (*DownloadLinkFile, error) {
	var f DownloadLinkFile
	if err := r.Scan(&f.LinkID, &f.FileID, &f.BytesServed); err != nil {
		return nil, err
	}
	return &f, nil
}

// DownloadLinkFileCharge is one statement, so concurrent charges of the same
// link and file serialise on its row: together they never pass MaxBytes. The
// condition is written as a subtraction so that it cannot overflow.
func (q queries) DownloadLinkFileCharge(ctx context.Context, p *DownloadLinkFileChargeParams) (*DownloadLinkFile, error) {
	if p.Bytes < 0 || p.MaxBytes < 0 {
		return nil, fmt.Errorf("db: DownloadLinkFileCharge: negative bytes (%d) or limit (%d)", p.Bytes, p.MaxBytes)
	}
	if p.Bytes > p.MaxBytes {
		return nil, fmt.Errorf("db: DownloadLinkFileCharge: %w", ErrPrecondition)
	}
	return one(ctx, q, "DownloadLinkFileCharge", ErrPrecondition, scanDownloadLinkFile,
		`INSERT INTO download_link_files (link_id, file_id, bytes_served) VALUES ($1, $2, $3)
		ON CONFLICT (link_id, file_id) DO UPDATE SET bytes_served = download_link_files.bytes_served + excluded.bytes_served
		WHERE download_link_files.bytes_served <= $4 - excluded.bytes_served
		RETURNING `+downloadLinkFileCols, p.LinkID, p.FileID, p.Bytes, p.MaxBytes)
}

func (q queries) DownloadLinkFileList(ctx context.Context, p *DownloadLinkFileListParams) ([]*DownloadLinkFile, error) {
	return many(ctx, q, "DownloadLinkFileList", scanDownloadLinkFile,
		"SELECT "+downloadLinkFileCols+" FROM download_link_files WHERE link_id = $1 ORDER BY file_id", p.LinkID)
}

func (q queries) DownloadLinkFileRefund(ctx context.Context, p *DownloadLinkFileRefundParams) error {
	if p.Bytes < 0 || p.Lost < 0 || p.MaxLost < 0 {
		return fmt.Errorf("db: DownloadLinkFileRefund: negative bytes (%d), lost (%d) or cap (%d)", p.Bytes, p.Lost, p.MaxLost)
	}
	if p.Bytes == 0 && p.Lost == 0 {
		return nil
	}
	// forgive is the part of Lost still under the cap; every SET expression
	// reads the row as it was, so it is spelled out twice.
	const forgive = `(CASE WHEN lost_forgiven >= $5 THEN 0 WHEN $4 <= $5 - lost_forgiven THEN $4 ELSE $5 - lost_forgiven END)`
	_, err := q.exec(ctx, "DownloadLinkFileRefund", ErrNotFound,
		`UPDATE download_link_files SET
			bytes_served = CASE WHEN bytes_served > $3 + `+forgive+` THEN bytes_served - $3 - `+forgive+` ELSE 0 END,
			lost_forgiven = lost_forgiven + `+forgive+`
		WHERE link_id = $1 AND file_id = $2`, p.LinkID, p.FileID, p.Bytes, p.Lost, p.MaxLost)
	return err
}

func (q queries) DownloadLinkGetByHash(ctx context.Context, p *DownloadLinkGetByHashParams) (*DownloadLink, error) {
	return one(ctx, q, "DownloadLinkGetByHash", ErrNotFound, scanDownloadLink,
		"SELECT "+downloadLinkCols+" FROM download_links WHERE token_hash = $1", p.TokenHash)
}

func (q queries) DownloadLinkIncrementCount(ctx context.Context, p *DownloadLinkIncrementCountParams) (*DownloadLink, error) {
	return one(ctx, q, "DownloadLinkIncrementCount", ErrPrecondition, scanDownloadLink,
		`UPDATE download_links SET download_count = download_count + 1
		WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)
		RETURNING `+downloadLinkCols, p.ID, ts(p.Now))
}

func (q queries) DownloadLinkListByPackage(ctx context.Context, p *DownloadLinkListByPackageParams) ([]*DownloadLink, error) {
	return many(ctx, q, "DownloadLinkListByPackage", scanDownloadLink,
		"SELECT "+downloadLinkCols+" FROM download_links WHERE package_id = $1 ORDER BY created_at, id", p.PackageID)
}
