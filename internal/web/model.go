package web

import (
	"context"
	"errors"
	"io"
	"time"
)

// The types below are the JSON shapes of contract C and of the admin API.
// Store adapters convert the domain's rows into them, so that the wire format
// is fixed in one place and never leaks a stored secret (hashes stay behind).

// User is the account an admin request acts as.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Limits are a portal's upload limits; zero or empty means "no limit".
type Limits struct {
	MaxFileSize       int64    `json:"max_file_size"`
	MaxPackageSize    int64    `json:"max_package_size"`
	MaxFileCount      int      `json:"max_file_count"`
	AllowedExtensions []string `json:"allowed_extensions"`
	DeniedExtensions  []string `json:"denied_extensions"`
}

// Portal is a public upload page as the admin API shows it.
type Portal struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Slug           string    `json:"slug"`
	Active         bool      `json:"active"`
	HasPassword    bool      `json:"has_password"`
	Recipients     []string  `json:"recipients"`
	WelcomeMessage string    `json:"welcome_message"`
	Limits         Limits    `json:"limits"`
	ConnectionIDs  []string  `json:"connection_ids"`
	RetentionDays  int       `json:"retention_days"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// PortalInput creates or replaces a portal. Password: nil keeps the current
// one (update) or sets none (create); a pointer to "" removes it.
type PortalInput struct {
	Name           string   `json:"name"`
	Slug           string   `json:"slug"`
	Active         *bool    `json:"active"`
	Password       *string  `json:"password"`
	Recipients     []string `json:"recipients"`
	WelcomeMessage string   `json:"welcome_message"`
	Limits         Limits   `json:"limits"`
	ConnectionIDs  []string `json:"connection_ids"`
	RetentionDays  int      `json:"retention_days"`
}

// File is one member of a package (contract C).
type File struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256" doc:"The file's whole SHA-256 (lower-case hex); empty while unknown. A file sent in one upload gets it when it completes; a file sent as parallel partials (each partial verified on arrival against the SHA-256 its sender declared) gets it from the server's first sequential read of the file, when it is first delivered."`
	// SHA256Verified says where SHA256 comes from.
	SHA256Verified bool   `json:"sha256_verified" doc:"true when sha256 was computed by ferry over the stored bytes (on arrival, or by the first delivery's sequential read), false when it is only what the sender declared or still empty."`
	State          string `json:"state"`
	UploadID       string `json:"upload_id"`
}

// Package is what one sender uploads at once (contract C).
type Package struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	SenderEmail string     `json:"sender_email"`
	PortalID    *string    `json:"portal_id"`
	State       string     `json:"state"`
	TotalSize   int64      `json:"total_size"`
	FileCount   int        `json:"file_count"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Files       []File     `json:"files"`
}

// Package states.
const (
	StateUploading = "uploading"
	StateFinalized = "finalized"
	StateExpired   = "expired"
	FileComplete   = "complete"
)

// PackageInput creates a package, from a portal or from a signed-in user.
// The Store applies the domain's rules: an active portal, its upload
// password (a wrong one is an *Error with Status 401), a sender email.
type PackageInput struct {
	PortalSlug  string // empty for a portal-less package
	Password    string // the portal's upload password
	UserID      string // the signed-in creator of a portal-less package
	Name        string
	Description string
	SenderEmail string
}

// PackageFilter selects packages for the admin list; Cursor continues a page.
type PackageFilter struct {
	PortalID    string
	State       string
	SenderEmail string
	// Query matches a part of the name or of the sender's email, any case.
	Query  string
	Limit  int
	Cursor string
}

// Link is a download link; its token is shown once at creation.
type Link struct {
	ID           string     `json:"id"`
	PackageID    string     `json:"package_id"`
	ExpiresAt    *time.Time `json:"expires_at"`
	HasPassword  bool       `json:"has_password"`
	MaxDownloads int        `json:"max_downloads"`
	Downloads    int        `json:"downloads"`
	CreatedAt    time.Time  `json:"created_at"`
}

// LinkInput creates a download link.
type LinkInput struct {
	PackageID    string
	ExpiresAt    *time.Time
	Password     string
	MaxDownloads int
}

// Sentinel errors a Store returns; besides these and *Error (a refusal with
// its own status, code and message), anything else is a 500.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("unauthorized")
	// ErrConflict: a unique value (slug, email) is taken, or a state forbids the change.
	ErrConflict = errors.New("conflict")
	// ErrLimitReached: a download link has not enough bytes left for a request.
	ErrLimitReached = errors.New("limit reached")
)

// InvalidError is bad input named by field; the Store returns it for any rule
// the domain enforces (slug format, recipient emails, limits...).
type InvalidError struct {
	Field, Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Auth authenticates admin callers.
type Auth interface {
	UserByAPIToken(ctx context.Context, token string) (User, error)
	UserBySession(ctx context.Context, token string) (User, error)
	// Login checks a password; ErrUnauthorized for any mismatch or unknown email.
	Login(ctx context.Context, email, password string) (User, error)
	SessionCreate(ctx context.Context, userID string, ttl time.Duration) (token string, err error)
	SessionDelete(ctx context.Context, token string) error
}

// Users is the admin-account part of the domain, for the console.
type Users interface {
	UserCount(ctx context.Context) (int, error)
	UserList(ctx context.Context) ([]User, error)
	// UserCreate adds an admin (an *Error for a bad email, a short
	// password or a taken email).
	UserCreate(ctx context.Context, email, password string) (User, error)
	// UserCreateFirst adds the first admin, and only while there is none
	// (an *Error with Status 409 once one exists), atomically.
	UserCreateFirst(ctx context.Context, email, password string) (User, error)
	// UserDelete removes an admin with its sessions and tokens, never the
	// last one (an *Error with Status 409).
	UserDelete(ctx context.Context, id string) error
}

// Portals is the portal part of the domain.
type Portals interface {
	PortalCreate(ctx context.Context, in PortalInput) (Portal, error)
	PortalDelete(ctx context.Context, id string) error
	PortalGet(ctx context.Context, id string) (Portal, error)
	PortalGetBySlug(ctx context.Context, slug string) (Portal, error)
	PortalList(ctx context.Context) ([]Portal, error)
	PortalUpdate(ctx context.Context, id string, in PortalInput) (Portal, error)
}

// Packages is the package part of the domain.
type Packages interface {
	// PackageCreate returns the package and its upload token (shown once).
	PackageCreate(ctx context.Context, in PackageInput) (Package, string, error)
	// PackageDelete removes the package's rows and returns the upload ids whose bytes to delete.
	PackageDelete(ctx context.Context, id string) ([]string, error)
	PackageFinalize(ctx context.Context, id string) (Package, error)
	PackageGet(ctx context.Context, id string) (Package, error)
	// PackageIDByUploadToken resolves an upload token; ErrUnauthorized when unknown.
	PackageIDByUploadToken(ctx context.Context, token string) (string, error)
	PackageList(ctx context.Context, f PackageFilter) (items []Package, next string, err error)
}

// Links is the download-link part of the domain.
type Links interface {
	// LinkCreate returns the link and its token (shown once).
	LinkCreate(ctx context.Context, in LinkInput) (Link, string, error)
	// LinkByToken resolves a token (ErrNotFound when unknown).
	LinkByToken(ctx context.Context, token string) (Link, error)
	// LinkCheckPassword checks the password of the link behind token, in constant time.
	LinkCheckPassword(ctx context.Context, token, password string) (bool, error)
	// LinkServed returns the bytes of each file (by file id) the link has
	// served so far; files it never served are absent.
	LinkServed(ctx context.Context, linkID string) (map[string]int64, error)
	// LinkCharge records bytes about to be served, atomically and all or
	// nothing: when any file would pass its MaxBytes, nothing is recorded and
	// the answer is ErrLimitReached. download also counts one download started
	// (informational), refused with ErrLimitReached when the link has expired.
	LinkCharge(ctx context.Context, linkID string, charges []FileCharge, download bool) error
	// LinkRefund gives back bytes charged for a file but never sent, and
	// forgives lost bytes (sent into a connection that broke) up to maxLost
	// over the link's life.
	LinkRefund(ctx context.Context, linkID, fileID string, unsent, lost, maxLost int64) error
}

// FileCharge is what one response is about to serve of one file, and the
// most the link may have served of it in total.
type FileCharge struct {
	FileID   string
	Bytes    int64
	MaxBytes int64
}

// Store is everything web needs from the domain.
type Store interface {
	Auth
	Users
	APITokens
	Portals
	Packages
	Links
}

// Blob is a stored file's bytes.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Blobs opens and deletes stored uploads (ingest implements it).
type Blobs interface {
	Open(ctx context.Context, uploadID string) (Blob, error)
	Delete(ctx context.Context, uploadID string) error
}
