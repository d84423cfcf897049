package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"time"
)

// Errors every dialect maps its own onto; test with errors.Is.
var (
	// ErrNotFound: no row has that key.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness or reference constraint refused the write
	// (a taken slug or email, a duplicate path key, a missing parent row).
	ErrConflict = errors.New("conflict")
	// ErrPrecondition: a conditional update matched no row: the row is
	// missing or not in the state the operation requires.
	ErrPrecondition = errors.New("precondition failed")
	// ErrOutOfRange: a size or count would leave the 64-bit integer range
	// (PostgreSQL's bigint overflow; on SQLite a trigger refuses the REAL
	// that integer overflow turns into). Nothing was written.
	ErrOutOfRange = errors.New("value out of range")
)

// Queries is every operation, listed alphabetically. Store and Tx both offer
// it; a nil params pointer is a programming error.
type Queries interface {
	APITokenCreate(ctx context.Context, params *APITokenCreateParams) (*APIToken, error)
	APITokenDelete(ctx context.Context, params *APITokenDeleteParams) error
	APITokenGetByHash(ctx context.Context, params *APITokenGetByHashParams) (*APIToken, error)
	APITokenGetByID(ctx context.Context, params *APITokenGetByIDParams) (*APIToken, error)
	APITokenList(ctx context.Context, params *APITokenListParams) ([]*APIToken, error)
	APITokenListByUser(ctx context.Context, params *APITokenListByUserParams) ([]*APIToken, error)
	APITokenRevoke(ctx context.Context, params *APITokenRevokeParams) (*APIToken, error)
	APITokenTouch(ctx context.Context, params *APITokenTouchParams) error

	ConnectionCreate(ctx context.Context, params *ConnectionCreateParams) (*Connection, error)
	ConnectionDelete(ctx context.Context, params *ConnectionDeleteParams) error
	ConnectionGetByID(ctx context.Context, params *ConnectionGetByIDParams) (*Connection, error)
	ConnectionList(ctx context.Context, params *ConnectionListParams) ([]*Connection, error)
	ConnectionSetState(ctx context.Context, params *ConnectionSetStateParams) (*Connection, error)
	ConnectionUpdate(ctx context.Context, params *ConnectionUpdateParams) (*Connection, error)

	DeliveryCollectionClaim(ctx context.Context, params *DeliveryCollectionClaimParams) (*DeliveryCollection, error)
	DeliveryCollectionForget(ctx context.Context, params *DeliveryCollectionForgetParams) error
	DeliveryCollectionSet(ctx context.Context, params *DeliveryCollectionSetParams) (*DeliveryCollection, error)
	DeliveryCreate(ctx context.Context, params *DeliveryCreateParams) (*Delivery, error)
	DeliveryFileAnyUnsettled(ctx context.Context, params *DeliveryFileAnyUnsettledParams) (bool, error)
	DeliveryFileCreate(ctx context.Context, params *DeliveryFileCreateParams) (*DeliveryFile, error)
	DeliveryFileGet(ctx context.Context, params *DeliveryFileGetParams) (*DeliveryFile, error)
	DeliveryFileLease(ctx context.Context, params *DeliveryFileLeaseParams) error
	DeliveryFileList(ctx context.Context, params *DeliveryFileListParams) ([]*DeliveryFile, error)
	DeliveryFileRelease(ctx context.Context, params *DeliveryFileReleaseParams) error
	DeliveryFileRetryFailed(ctx context.Context, params *DeliveryFileRetryFailedParams) ([]*DeliveryFile, error)
	DeliveryFileSetRetry(ctx context.Context, params *DeliveryFileSetRetryParams) (*DeliveryFile, error)
	DeliveryFileUpdate(ctx context.Context, params *DeliveryFileUpdateParams) (*DeliveryFile, error)
	DeliveryGetByID(ctx context.Context, params *DeliveryGetByIDParams) (*Delivery, error)
	DeliveryGetByPackageConnection(ctx context.Context, params *DeliveryGetByPackageConnectionParams) (*Delivery, error)
	DeliveryListByPackage(ctx context.Context, params *DeliveryListByPackageParams) ([]*Delivery, error)
	DeliverySetCollection(ctx context.Context, params *DeliverySetCollectionParams) (*Delivery, error)
	DeliverySetFinalized(ctx context.Context, params *DeliverySetFinalizedParams) (*Delivery, error)
	DeliverySetJob(ctx context.Context, params *DeliverySetJobParams) (*Delivery, error)
	DeliverySetState(ctx context.Context, params *DeliverySetStateParams) (*Delivery, error)

	DownloadLinkCreate(ctx context.Context, params *DownloadLinkCreateParams) (*DownloadLink, error)
	DownloadLinkDelete(ctx context.Context, params *DownloadLinkDeleteParams) error
	DownloadLinkFileCharge(ctx context.Context, params *DownloadLinkFileChargeParams) (*DownloadLinkFile, error)
	DownloadLinkFileList(ctx context.Context, params *DownloadLinkFileListParams) ([]*DownloadLinkFile, error)
	DownloadLinkFileRefund(ctx context.Context, params *DownloadLinkFileRefundParams) error
	DownloadLinkGetByHash(ctx context.Context, params *DownloadLinkGetByHashParams) (*DownloadLink, error)
	DownloadLinkIncrementCount(ctx context.Context, params *DownloadLinkIncrementCountParams) (*DownloadLink, error)
	DownloadLinkListByPackage(ctx context.Context, params *DownloadLinkListByPackageParams) ([]*DownloadLink, error)

	FileCreate(ctx context.Context, params *FileCreateParams) (*File, error)
	FileDelete(ctx context.Context, params *FileDeleteParams) error
	FileFindPathConflict(ctx context.Context, params *FileFindPathConflictParams) (*File, error)
	FileGetByID(ctx context.Context, params *FileGetByIDParams) (*File, error)
	FileGetByPathKey(ctx context.Context, params *FileGetByPathKeyParams) (*File, error)
	FileGetByUploadID(ctx context.Context, params *FileGetByUploadIDParams) (*File, error)
	FileGetInFolder(ctx context.Context, params *FileGetInFolderParams) (*File, error)
	FileListByPackage(ctx context.Context, params *FileListByPackageParams) ([]*File, error)
	FileSetComplete(ctx context.Context, params *FileSetCompleteParams) (*File, error)
	FileSetFailed(ctx context.Context, params *FileSetFailedParams) (*File, error)
	FileSetSHA256IfEmpty(ctx context.Context, params *FileSetSHA256IfEmptyParams) (*File, error)
	FileSetUploadID(ctx context.Context, params *FileSetUploadIDParams) (*File, error)

	NotificationCreate(ctx context.Context, params *NotificationCreateParams) (*Notification, error)
	NotificationGetByID(ctx context.Context, params *NotificationGetByIDParams) (*Notification, error)
	NotificationList(ctx context.Context, params *NotificationListParams) ([]*Notification, error)
	NotificationRecordAttempt(ctx context.Context, params *NotificationRecordAttemptParams) (*Notification, error)
	NotifyRequesterGet(ctx context.Context, params *NotifyRequesterGetParams) (string, error)
	NotifyRequesterSet(ctx context.Context, params *NotifyRequesterSetParams) error

	PackageAddUsage(ctx context.Context, params *PackageAddUsageParams) (*Package, error)
	PackageCreate(ctx context.Context, params *PackageCreateParams) (*Package, error)
	PackageDelete(ctx context.Context, params *PackageDeleteParams) error
	PackageGetByID(ctx context.Context, params *PackageGetByIDParams) (*Package, error)
	PackageGetByUploadTokenHash(ctx context.Context, params *PackageGetByUploadTokenHashParams) (*Package, error)
	PackageList(ctx context.Context, params *PackageListParams) ([]*Package, error)
	PackageListExpirable(ctx context.Context, params *PackageListExpirableParams) ([]*Package, error)
	PackageSetExpired(ctx context.Context, params *PackageSetExpiredParams) (*Package, error)
	PackageSetFinalized(ctx context.Context, params *PackageSetFinalizedParams) (*Package, error)

	PortalCreate(ctx context.Context, params *PortalCreateParams) (*Portal, error)
	PortalDelete(ctx context.Context, params *PortalDeleteParams) error
	PortalGetByID(ctx context.Context, params *PortalGetByIDParams) (*Portal, error)
	PortalGetBySlug(ctx context.Context, params *PortalGetBySlugParams) (*Portal, error)
	PortalList(ctx context.Context, params *PortalListParams) ([]*Portal, error)
	PortalNotifySettingsGet(ctx context.Context, params *PortalNotifySettingsGetParams) (*PortalNotifySettings, error)
	PortalNotifySettingsSet(ctx context.Context, params *PortalNotifySettingsSetParams) (*PortalNotifySettings, error)
	PortalUpdate(ctx context.Context, params *PortalUpdateParams) (*Portal, error)

	SessionCreate(ctx context.Context, params *SessionCreateParams) (*Session, error)
	SessionDelete(ctx context.Context, params *SessionDeleteParams) error
	SessionDeleteExpired(ctx context.Context, params *SessionDeleteExpiredParams) (int, error)
	SessionGetByHash(ctx context.Context, params *SessionGetByHashParams) (*Session, error)

	UserCount(ctx context.Context) (int, error)
	UserCreate(ctx context.Context, params *UserCreateParams) (*User, error)
	UserDelete(ctx context.Context, params *UserDeleteParams) error
	UserGetByEmail(ctx context.Context, params *UserGetByEmailParams) (*User, error)
	UserGetByID(ctx context.Context, params *UserGetByIDParams) (*User, error)
	UserList(ctx context.Context) ([]*User, error)
	UserSetPassword(ctx context.Context, params *UserSetPasswordParams) (*User, error)
	// UsersLock, inside a transaction, holds off every other transaction's
	// UsersLock until this one ends, so "count the users, then add or remove
	// one" cannot interleave (the first admin, never removing the last).
	UsersLock(ctx context.Context) error
}

// Tx is a transaction: the same queries, plus the *sql.Tx underneath so other
// libraries (River's InsertTx) can write in the same transaction.
type Tx interface {
	Queries
	SQLTx() *sql.Tx
}

// Store is an open database.
type Store interface {
	Queries
	// InTx runs fn in a transaction, committed if fn returns nil and rolled
	// back otherwise (also on panic). fn must use only the Tx it is given:
	// on SQLite the pool has one connection, so using the Store inside fn
	// would wait for fn forever.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// SQLDB is the pool underneath, for River (see RiverDriver) and for
	// health checks. On PostgreSQL it runs on a pgx pool.
	SQLDB() *sql.DB
	// Dialect is DialectSQLite or DialectPostgres.
	Dialect() string
	Close() error
}

// The dialects.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Params of each operation, alphabetical. Zero IDs are generated (UUIDv7)
// and zero creation times are "now"; every time is stored in UTC with
// microsecond precision (PostgreSQL's).

type APITokenCreateParams struct {
	ID        string
	UserID    string
	Name      string
	TokenHash []byte
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: never expires
}
type APITokenDeleteParams struct{ ID, UserID string }
type APITokenGetByHashParams struct{ TokenHash []byte }
type APITokenGetByIDParams struct{ ID string }
type APITokenListParams struct{}
type APITokenListByUserParams struct{ UserID string }

// APITokenRevokeParams: RevokedAt is kept only by the first revocation.
type APITokenRevokeParams struct {
	ID        string
	RevokedAt time.Time
}

// APITokenTouchParams: LastUsedAt is stored only if later than the recorded one.
type APITokenTouchParams struct {
	ID         string
	LastUsedAt time.Time
}

type DownloadLinkCreateParams struct {
	ID            string
	PackageID     string
	TokenHash     []byte
	PasswordHash  string
	DownloadLimit int
	CreatedAt     time.Time
	ExpiresAt     *time.Time
}
type DownloadLinkDeleteParams struct{ ID string }

// DownloadLinkFileChargeParams adds Bytes to what the link has served of one
// file, atomically and only if the total stays at or under MaxBytes (else
// ErrPrecondition and nothing changes). Bytes and MaxBytes are >= 0.
type DownloadLinkFileChargeParams struct {
	LinkID   string
	FileID   string
	Bytes    int64
	MaxBytes int64
}
type DownloadLinkFileListParams struct{ LinkID string }

// DownloadLinkFileRefundParams gives back Bytes charged but never sent (the
// total never goes below zero), and forgives Lost bytes that were sent into a
// connection that broke (they may never have reached the recipient, who will
// ask for them again), but only up to MaxLost forgiven over the link's life
// for this file, so that breaking connections on purpose cannot turn a link
// into an unlimited one.
type DownloadLinkFileRefundParams struct {
	LinkID  string
	FileID  string
	Bytes   int64
	Lost    int64
	MaxLost int64
}
type DownloadLinkGetByHashParams struct{ TokenHash []byte }

// DownloadLinkIncrementCountParams counts one download started, atomically,
// only if the link is not expired at Now (else ErrPrecondition). The count is
// for people to read: the limit is enforced on bytes (DownloadLinkFileCharge).
type DownloadLinkIncrementCountParams struct {
	ID  string
	Now time.Time
}
type DownloadLinkListByPackageParams struct{ PackageID string }

type FileCreateParams struct {
	ID        string
	PackageID string
	Path      string
	PathKey   string
	Size      int64
	SHA256    string
	UploadID  string
	CreatedAt time.Time
}
type FileDeleteParams struct{ ID string }

// FileFindPathConflictParams finds a file of PackageID that the path with
// key PathKey would clash with: the same key, a file whose key is one of
// AncestorKeys (the new path's folders), or a file inside PathKey as a folder.
type FileFindPathConflictParams struct {
	PackageID    string
	PathKey      string
	AncestorKeys []string
}
type FileGetByIDParams struct{ ID string }
type FileGetByPathKeyParams struct{ PackageID, PathKey string }
type FileGetByUploadIDParams struct{ UploadID string }

// FileGetInFolderParams finds one file of PackageID inside the folder whose
// key is FolderKey (at any depth), the first by key; ErrNotFound if none.
type FileGetInFolderParams struct{ PackageID, FolderKey string }
type FileListByPackageParams struct{ PackageID string }

// FileSetCompleteParams moves an uploading file to complete (else
// ErrPrecondition).
type FileSetCompleteParams struct {
	ID             string
	Size           int64
	SHA256         string
	SHA256Verified bool
	CompletedAt    time.Time
}

// FileSetFailedParams moves an uploading file to failed (else ErrPrecondition).
type FileSetFailedParams struct{ ID, Reason string }
type FileSetUploadIDParams struct{ ID, UploadID string }

// FileSetSHA256IfEmptyParams records a SHA-256 ferry computed over a file's
// stored bytes when none is recorded yet (a parallel upload declares none);
// a recorded one is kept. The row comes back either way, to compare with.
type FileSetSHA256IfEmptyParams struct{ ID, SHA256 string }

// PackageAddUsageParams adds to an uploading package's file count and total
// size (deltas may be negative); ErrPrecondition if it is not uploading,
// ErrOutOfRange if a sum would leave int64. In a
// transaction it is also the package's lock: run it before reading the
// package's files, so concurrent admissions to one package serialise.
type PackageAddUsageParams struct {
	ID         string
	FilesDelta int
	BytesDelta int64
}
type PackageCreateParams struct {
	ID              string
	PortalID        string
	CreatedByUserID string
	Name            string
	Description     string
	SenderEmail     string
	UploadTokenHash []byte
	CreatedAt       time.Time
}
type PackageDeleteParams struct{ ID string }
type PackageGetByIDParams struct{ ID string }
type PackageGetByUploadTokenHashParams struct{ UploadTokenHash []byte }

// PackageListParams lists packages newest first. PortalID "" lists all.
type PackageListParams struct {
	PortalID    string
	State       PackageState // "" = any
	SenderEmail string       // "" = any; compared case-insensitively
	// Query "" = any; else a part of the name or of the sender's email,
	// case-insensitively (ASCII case on SQLite), % and _ taken literally.
	Query  string
	Limit  int // 0 = 100
	Offset int
}

// PackageListExpirableParams lists packages that are not expired yet but
// whose ExpiresAt is at or before Now, oldest first.
type PackageListExpirableParams struct {
	Now   time.Time
	Limit int // 0 = 100
}
type PackageSetExpiredParams struct{ ID string }

// PackageSetFinalizedParams moves an uploading package to finalized (else
// ErrPrecondition).
type PackageSetFinalizedParams struct {
	ID          string
	FinalizedAt time.Time
	ExpiresAt   *time.Time
}

type PortalCreateParams struct {
	ID             string
	Name           string
	Slug           string
	Active         bool
	PasswordHash   string
	Recipients     []string
	WelcomeMessage string
	Limits         Limits
	ConnectionIDs  []string
	RetentionDays  int
	CreatedAt      time.Time
}
type PortalDeleteParams struct{ ID string }
type PortalGetByIDParams struct{ ID string }
type PortalGetBySlugParams struct{ Slug string }
type PortalListParams struct{}

// PortalUpdateParams replaces every mutable field of portal ID.
type PortalUpdateParams struct {
	ID             string
	Name           string
	Slug           string
	Active         bool
	PasswordHash   string
	Recipients     []string
	WelcomeMessage string
	Limits         Limits
	ConnectionIDs  []string
	RetentionDays  int
	UpdatedAt      time.Time
}

type SessionCreateParams struct {
	ID         string
	TokenHash  []byte
	UserID     string
	CSRFSecret []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
}
type SessionDeleteParams struct{ TokenHash []byte }
type SessionDeleteExpiredParams struct{ Now time.Time }
type SessionGetByHashParams struct{ TokenHash []byte }

type UserCreateParams struct {
	ID           string
	Email        string
	PasswordHash string
	IsAdmin      bool
	CreatedAt    time.Time
}
type UserDeleteParams struct{ ID string }
type UserGetByEmailParams struct{ Email string }
type UserGetByIDParams struct{ ID string }
type UserSetPasswordParams struct{ ID, PasswordHash string }

// store implements Store for every dialect: the SQL is shared, the dialect
// only opens, migrates and classifies errors.
type store struct {
	queries
	sqldb *sql.DB
	pool  *pgxpool.Pool // PostgreSQL: the pgx pool under sqldb; nil on SQLite
}

type tx struct {
	queries
	sqlTx *sql.Tx
}

func (t *tx) SQLTx() *sql.Tx { return t.sqlTx }

func (s *store) SQLDB() *sql.DB  { return s.sqldb }
func (s *store) Dialect() string { return s.d.name }
func (s *store) Close() error {
	err := s.sqldb.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

func (s *store) InTx(ctx context.Context, fn func(tx Tx) error) (err error) {
	sqlTx, err := s.sqldb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin transaction: %w", s.d.classify(err))
	}
	done := false
	defer func() {
		if !done {
			_ = sqlTx.Rollback() // panicking: the panic is the news
		}
	}()
	if err := fn(&tx{queries: queries{ex: sqlTx, d: s.d}, sqlTx: sqlTx}); err != nil {
		done = true
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("db: rollback: %w", rbErr))
		}
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("db: commit: %w", s.d.classify(err))
	}
	return nil
}
