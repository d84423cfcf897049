package db

import "time"

// User is an operator who signs in to the admin UI or holds API tokens.
type User struct {
	ID           string
	Email        string // stored lower case; unique
	PasswordHash string // argon2id, encoded by internal/portal
	IsAdmin      bool
	CreatedAt    time.Time
}

// Session is a signed-in browser session.
type Session struct {
	ID         string
	TokenHash  []byte // SHA-256 of the cookie value
	UserID     string
	CSRFSecret []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// APIToken is a bearer token for the admin API. A revoked token keeps its
// row (the list shows who had it); it is refused like an expired one.
type APIToken struct {
	ID         string
	UserID     string
	Name       string
	TokenHash  []byte
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time // nil: never expires
	RevokedAt  *time.Time
}

// Limits bound what a portal accepts. Zero means "no limit"; extensions are
// lower case without the dot.
type Limits struct {
	MaxFileSize       int64
	MaxPackageSize    int64
	MaxFileCount      int
	AllowedExtensions []string
	DeniedExtensions  []string
}

// Portal is a public upload page, /p/{slug}.
type Portal struct {
	ID             string
	Name           string
	Slug           string
	Active         bool
	PasswordHash   string // "" = no upload password
	Recipients     []string
	WelcomeMessage string
	Limits         Limits
	ConnectionIDs  []string
	RetentionDays  int // 0 = keep forever
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// PackageState is where a package is in its life.
type PackageState string

// The package states: uploading -> finalized -> expired.
const (
	PackageUploading PackageState = "uploading"
	PackageFinalized PackageState = "finalized"
	PackageExpired   PackageState = "expired"
)

// Package is what one sender uploads at once.
type Package struct {
	ID              string
	PortalID        string // "" = sent by a signed-in user, no portal
	CreatedByUserID string // "" = anonymous (portal) sender
	Name            string
	Description     string
	SenderEmail     string // lower case; "" = none (a signed-in user sent it)
	State           PackageState
	TotalSize       int64 // bytes admitted (declared sizes), corrected on completion
	FileCount       int   // files admitted
	UploadTokenHash []byte
	CreatedAt       time.Time
	FinalizedAt     *time.Time
	ExpiresAt       *time.Time
}

// FileState is where a file's upload is.
type FileState string

// The file states.
const (
	FileUploading FileState = "uploading"
	FileComplete  FileState = "complete"
	FileFailed    FileState = "failed"
)

// File is a package member.
type File struct {
	ID             string
	PackageID      string
	Path           string // pathsafe-validated, NFC, "/"-separated
	PathKey        string // pathsafe.Key(Path): unique per package
	Size           int64
	SHA256         string // lower-case hex; "" = unknown
	SHA256Verified bool   // SHA256 was computed by ferry over the stored bytes
	State          FileState
	FailureReason  string
	UploadID       string // the tus upload holding the bytes; "" until known
	CreatedAt      time.Time
	CompletedAt    *time.Time
}

// DownloadLink lets someone without an account download a package.
type DownloadLink struct {
	ID            string
	PackageID     string
	TokenHash     []byte
	PasswordHash  string // "" = none
	DownloadLimit int    // 0 = unlimited
	DownloadCount int    // downloads started (informational)
	CreatedAt     time.Time
	ExpiresAt     *time.Time
}

// DownloadLinkFile is what a link has served of one file: bytes charged,
// including those of a response still streaming.
type DownloadLinkFile struct {
	LinkID      string
	FileID      string
	BytesServed int64
}
