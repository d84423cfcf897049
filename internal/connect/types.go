package connect

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferryhq/ferry/internal/secret"
)

// Defaults of a new connection.
const (
	DefaultPortalRoot    = "Portal Downloads"
	DefaultSendRoot      = "MASV"
	DescriptionField     = "description"
	DefaultMetadataView  = "ferry"
	maxNameLen, maxRoot  = 100, 255
	maxAppID, maxToken   = 256, 4096
	maxWebhookURL        = 2048
	stateOK, stateBroken = "ok", "broken"
)

// Params are the credentials to check.
type Params struct {
	BaseURL string // "" = iconik.DefaultBaseURL
	AppID   string
	Token   secret.Value
}

// Report is what Verify found: the token's user, whether it qualifies, the
// required roles it lacks and every storage with whether it can be chosen.
type Report struct {
	User         User
	Qualifies    bool
	Reasons      []string // why the user does not qualify
	MissingRoles []string
	Storages     []Storage
}

// OK reports whether a connection may be saved with these credentials (for
// some selectable storage).
func (r *Report) OK() bool { return r.Qualifies && len(r.MissingRoles) == 0 }

// User is the iconik user a token acts as.
type User struct {
	ID      string
	Name    string
	Email   string
	Type    string // POWER | STANDARD | BROWSE_ONLY | BROWSE_API_ONLY
	Status  string // ACTIVE | INACTIVE | BLOCKED | DELETED
	IsAdmin bool
}

// Active reports status ACTIVE.
func (u User) Active() bool { return u.Status == "ACTIVE" }

// Storage is an iconik storage as the storage picker shows it.
type Storage struct {
	ID, Name, Method, Purpose, Status string
	// Path is the storage's object key prefix (iconik settings.path):
	// iconik stores a file at Path/<directory_path>/<name>.
	Path string
	// AddsUUID: iconik adds a UUID to the names of files it stores there
	// (settings.add_uuid_to_filenames), making every object name longer.
	AddsUUID   bool
	Selectable bool
	Reason     string // why not selectable
}

// StorageRef is the storage a connection delivers to.
type StorageRef struct {
	ID, Name, Method, Path string
	AddsUUID               bool
}

// Input creates a connection.
type Input struct {
	Name string
	Params
	StorageID  string
	PortalRoot string // "" = DefaultPortalRoot
	SendRoot   string // "" = DefaultSendRoot
	// MetadataViewID pins the view that holds the description field; "" finds
	// one (or creates the "ferry" view).
	MetadataViewID  string
	SlackWebhookURL secret.Value // zero = none
}

// Update changes a connection: nil fields keep their value. A new Token,
// BaseURL, AppID, StorageID or MetadataViewID (or a broken connection) runs
// every check again before anything is saved. SlackWebhookURL pointing at a
// zero Value removes the webhook.
type Update struct {
	Name            *string
	BaseURL         *string
	AppID           *string
	Token           *secret.Value
	StorageID       *string
	PortalRoot      *string
	SendRoot        *string
	MetadataViewID  *string
	SlackWebhookURL *secret.Value
}

// Connection is a saved connection, without its secrets.
type Connection struct {
	ID              string
	Name            string
	BaseURL         string
	AppID           string
	Storage         StorageRef
	PortalRoot      string
	SendRoot        string
	MetadataViewID  string
	MetadataField   string
	HasSlackWebhook bool
	IconikUserID    string
	IconikUserEmail string
	// State is "ok" or "broken"; StateReason says why broken.
	State       string
	StateReason string
	VerifiedAt  *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Broken reports whether the connection must not be used until re-verified.
func (c *Connection) Broken() bool { return c.State == stateBroken }

// Error is a refusal with the HTTP status, stable code and sentence the
// caller sees. Report, when set, is the verification that led to it.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	Report  *Report
}

func (e *Error) Error() string { return "connect: " + e.Code + ": " + e.Message }

func refuse(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *Error {
	e := refuse(http.StatusBadRequest, "invalid_"+field, format, args...)
	e.Field = field
	return e
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Sentinels matched by errors.Is on the *Error refusals that carry them.
var (
	// ErrNotFound: no connection has that id (code connection_not_found, 404).
	ErrNotFound = errors.New("connect: no such connection")
	// ErrBroken: the connection is marked broken (code connection_broken, 409).
	ErrBroken = errors.New("connect: connection is broken")
)

// Is lets errors.Is match ErrNotFound and ErrBroken.
func (e *Error) Is(target error) bool {
	return (target == ErrNotFound && e.Code == "connection_not_found") || (target == ErrBroken && e.Code == "connection_broken")
}

func notFound() *Error {
	return refuse(http.StatusNotFound, "connection_not_found", "There is no such connection.")
}
