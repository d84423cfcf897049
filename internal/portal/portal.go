package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

// Error is a refusal the caller can act on: a stable snake_case Code, a
// human Message, and the HTTP Status a handler should answer with. Field
// names the offending input field when there is one.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

func refuse(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, code, format string, args ...any) *Error {
	e := refuse(http.StatusBadRequest, code, format, args...)
	e.Field = field
	return e
}

// AsError returns the *Error in err's chain, turning a pathsafe refusal into
// one (400, its code and message); nil if err is neither.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *pathsafe.Error
	if errors.As(err, &pe) {
		status := http.StatusBadRequest
		if pe.Code == pathsafe.CodeDuplicate || pe.Code == pathsafe.CodeFileFolder {
			status = http.StatusConflict
		}
		return &Error{Status: status, Code: string(pe.Code), Message: pe.Message, Field: "path"}
	}
	return nil
}

// ErrUnauthorized is returned (wrapped in an *Error with Status 401) for an
// unknown or expired token or a wrong password.
var errUnauthorized = func(msg string) *Error { return refuse(http.StatusUnauthorized, "unauthorized", "%s", msg) }

// Options configure a Service.
type Options struct {
	Now func() time.Time // nil = time.Now
	// ObjectNames checks each admitted file's object name on the storages
	// its package is delivered to (objectnames.go); nil checks nothing.
	ObjectNames ObjectNameCheck
}

// Service applies the rules to a db.Store. It is safe for concurrent use.
type Service struct {
	db          db.Store
	now         func() time.Time
	objectNames ObjectNameCheck
}

// New returns a Service over store.
func New(store db.Store, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{db: store, now: now, objectNames: opts.ObjectNames}
}

// ---- portals ----

// Bounds on portal settings: generous, but finite so a typo (a size in bits,
// a retention in hours) is caught.
const (
	MaxRecipients    = 50
	MaxRetentionDays = 3650
	MaxNameLen       = 200
	MaxWelcomeLen    = 10000
	MinPasswordLen   = 4 // portal upload passwords are shared, not account passwords
)

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// PortalInput is what an administrator sets on a portal. Password: nil keeps
// the current one (on update), "" removes it, anything else sets it.
type PortalInput struct {
	Name           string
	Slug           string
	Active         bool
	Password       *string
	Recipients     []string
	WelcomeMessage string
	Limits         db.Limits
	ConnectionIDs  []string
	RetentionDays  int
}

// ValidatePortal checks in and normalises it in place: trimmed name, slug
// lower case, recipients lower case, extensions lower case without a dot.
func ValidatePortal(in *PortalInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > MaxNameLen {
		return invalid("name", "invalid_name", "A portal needs a name of 1 to %d characters.", MaxNameLen)
	}
	name, err := folderName("portal", in.Name)
	if err != nil {
		return err
	}
	in.Name = name
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	if !slugRE.MatchString(in.Slug) {
		return invalid("slug", "invalid_slug", "Slug %q must be 1-64 lower-case letters, digits and inner hyphens (it becomes the address /p/<slug>).", in.Slug)
	}
	if len(in.Recipients) > MaxRecipients {
		return invalid("recipients", "invalid_recipient", "A portal notifies at most %d recipients.", MaxRecipients)
	}
	seen := map[string]bool{}
	var recips []string
	for _, r := range in.Recipients {
		addr, err := NormalizeEmail(r)
		if err != nil {
			return invalid("recipients", "invalid_recipient", "Recipient %q is not an email address like name@example.com.", r)
		}
		if !seen[addr] {
			seen[addr] = true
			recips = append(recips, addr)
		}
	}
	in.Recipients = recips
	if utf8.RuneCountInString(in.WelcomeMessage) > MaxWelcomeLen {
		return invalid("welcome_message", "invalid_welcome_message", "The welcome message is limited to %d characters.", MaxWelcomeLen)
	}
	l := &in.Limits
	if l.MaxFileSize < 0 || l.MaxPackageSize < 0 || l.MaxFileCount < 0 {
		return invalid("limits", "invalid_limits", "Limits must be 0 (no limit) or positive.")
	}
	if l.MaxFileSize > 0 && l.MaxPackageSize > 0 && l.MaxFileSize > l.MaxPackageSize {
		return invalid("limits", "invalid_limits", "The largest file cannot be larger than the largest package.")
	}
	for _, list := range []*[]string{&l.AllowedExtensions, &l.DeniedExtensions} {
		norm, err := normalizeExtensions(*list)
		if err != nil {
			return err
		}
		*list = norm
	}
	for _, a := range l.AllowedExtensions {
		for _, d := range l.DeniedExtensions {
			if a == d {
				return invalid("limits", "invalid_limits", "Extension .%s cannot be both allowed and denied.", a)
			}
		}
	}
	if in.RetentionDays < 0 || in.RetentionDays > MaxRetentionDays {
		return invalid("retention_days", "invalid_retention", "Retention must be 0 (keep until deleted) to %d days.", MaxRetentionDays)
	}
	if in.Password != nil && *in.Password != "" && utf8.RuneCountInString(*in.Password) < MinPasswordLen {
		return invalid("password", "invalid_password", "An upload password needs at least %d characters.", MinPasswordLen)
	}
	return nil
}

var extRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_+-]*(\.[a-z0-9][a-z0-9_+-]*)*$`)

// normalizeExtensions lower-cases, strips one leading dot, drops duplicates.
// "tar.gz" is allowed: extensions match as name suffixes.
func normalizeExtensions(list []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, e := range list {
		n := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(e)), ".")
		if len(n) > 32 || !extRE.MatchString(n) {
			return nil, invalid("limits", "invalid_limits", "Extension %q must be a bare extension like mov or .mov.", e)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// NormalizeEmail returns the bare address, lower case, or an error for
// anything but one plain address (no display name, no list).
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > 254 {
		return "", fmt.Errorf("portal: %q is not a plain email address", s)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return "", fmt.Errorf("portal: %q has no domain like example.com", s)
	}
	return strings.ToLower(s), nil
}

func (s *Service) passwordHash(pw *string, current string) (string, error) {
	if pw == nil {
		return current, nil
	}
	if *pw == "" {
		return "", nil
	}
	return HashPassword(*pw)
}

// CreatePortal validates in and creates the portal.
func (s *Service) CreatePortal(ctx context.Context, in PortalInput) (*db.Portal, error) {
	if err := ValidatePortal(&in); err != nil {
		return nil, err
	}
	hash, err := s.passwordHash(in.Password, "")
	if err != nil {
		return nil, err
	}
	p, err := s.db.PortalCreate(ctx, &db.PortalCreateParams{
		Name: in.Name, Slug: in.Slug, Active: in.Active, PasswordHash: hash, Recipients: in.Recipients,
		WelcomeMessage: in.WelcomeMessage, Limits: in.Limits, ConnectionIDs: in.ConnectionIDs,
		RetentionDays: in.RetentionDays, CreatedAt: s.now(),
	})
	if errors.Is(err, db.ErrConflict) {
		return nil, slugTaken(in.Slug)
	}
	if err != nil {
		return nil, fmt.Errorf("portal: creating portal %q: %w", in.Slug, err)
	}
	return p, nil
}

func slugTaken(slug string) *Error {
	e := refuse(http.StatusConflict, "slug_taken", "Another portal already uses the address /p/%s; choose another slug.", slug)
	e.Field = "slug"
	return e
}

// UpdatePortal validates in and replaces portal id's settings.
func (s *Service) UpdatePortal(ctx context.Context, id string, in PortalInput) (*db.Portal, error) {
	if err := ValidatePortal(&in); err != nil {
		return nil, err
	}
	var out *db.Portal
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		cur, err := tx.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: id})
		if errors.Is(err, db.ErrNotFound) {
			return refuse(http.StatusNotFound, "portal_not_found", "There is no such portal.")
		}
		if err != nil {
			return err
		}
		hash, err := s.passwordHash(in.Password, cur.PasswordHash)
		if err != nil {
			return err
		}
		out, err = tx.PortalUpdate(ctx, &db.PortalUpdateParams{
			ID: id, Name: in.Name, Slug: in.Slug, Active: in.Active, PasswordHash: hash, Recipients: in.Recipients,
			WelcomeMessage: in.WelcomeMessage, Limits: in.Limits, ConnectionIDs: in.ConnectionIDs,
			RetentionDays: in.RetentionDays, UpdatedAt: s.now(),
		})
		if errors.Is(err, db.ErrConflict) {
			return slugTaken(in.Slug)
		}
		return err
	})
	if err != nil {
		if AsError(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("portal: updating portal %s: %w", id, err)
	}
	return out, nil
}

// CheckPortalPassword returns nil if p needs no password or pw is it.
func CheckPortalPassword(p *db.Portal, pw string) error {
	if p.PasswordHash == "" {
		return nil
	}
	if pw == "" {
		return refuse(http.StatusUnauthorized, "password_required", "This portal needs the upload password you were given.")
	}
	ok, err := CheckPassword(p.PasswordHash, pw)
	if err != nil {
		return fmt.Errorf("portal: checking the password of portal %s: %w", p.Slug, err)
	}
	if !ok {
		return refuse(http.StatusUnauthorized, "password_incorrect", "The upload password is not correct.")
	}
	return nil
}

// ---- packages ----

// NewPackage is a package to create: for a portal (PortalSlug; SenderEmail
// required, Password checked) or for a signed-in user (UserID, no portal).
type NewPackage struct {
	PortalSlug  string
	UserID      string
	Name        string
	Description string
	SenderEmail string
	Password    string // the portal's upload password, if it has one
}

// MaxDescriptionLen bounds a package description.
const MaxDescriptionLen = 10000

// CreatePackage creates an uploading package and returns it with its upload
// token, shown this once. An empty name defaults to one built from the
// sender (or "Package") and the creation time.
func (s *Service) CreatePackage(ctx context.Context, in NewPackage) (*db.Package, string, error) {
	var portalID string
	switch {
	case in.PortalSlug != "":
		p, err := s.db.PortalGetBySlug(ctx, &db.PortalGetBySlugParams{Slug: in.PortalSlug})
		if errors.Is(err, db.ErrNotFound) {
			return nil, "", refuse(http.StatusNotFound, "portal_not_found", "There is no portal at /p/%s; check the address you were given.", in.PortalSlug)
		}
		if err != nil {
			return nil, "", fmt.Errorf("portal: loading portal %q: %w", in.PortalSlug, err)
		}
		if !p.Active {
			return nil, "", refuse(http.StatusForbidden, "portal_inactive", "This portal is not accepting uploads right now; contact its owner.")
		}
		if err := CheckPortalPassword(p, in.Password); err != nil {
			return nil, "", err
		}
		if strings.TrimSpace(in.SenderEmail) == "" {
			return nil, "", invalid("sender_email", "sender_email_required", "Enter your email address so the recipients know who sent the files.")
		}
		portalID = p.ID
	case in.UserID == "":
		return nil, "", invalid("portal", "portal_required", "A package is sent through a portal or by a signed-in user.")
	}
	sender := ""
	if strings.TrimSpace(in.SenderEmail) != "" {
		addr, err := NormalizeEmail(in.SenderEmail)
		if err != nil {
			return nil, "", invalid("sender_email", "invalid_sender_email", "%q is not an email address like name@example.com.", in.SenderEmail)
		}
		sender = addr
	}
	name := strings.Join(strings.Fields(in.Name), " ")
	if utf8.RuneCountInString(name) > MaxNameLen {
		return nil, "", invalid("name", "invalid_name", "A package name is limited to %d characters.", MaxNameLen)
	}
	if name != "" {
		var err error
		if name, err = folderName("package", name); err != nil {
			return nil, "", err
		}
	}
	if utf8.RuneCountInString(in.Description) > MaxDescriptionLen {
		return nil, "", invalid("description", "invalid_description", "The description is limited to %d characters.", MaxDescriptionLen)
	}
	now := s.now()
	if name == "" {
		name = DefaultPackageName(sender, now)
	}
	tok, hash, err := NewToken()
	if err != nil {
		return nil, "", err
	}
	p, err := s.db.PackageCreate(ctx, &db.PackageCreateParams{
		PortalID: portalID, CreatedByUserID: in.UserID, Name: name, Description: strings.TrimSpace(in.Description),
		SenderEmail: sender, UploadTokenHash: hash, CreatedAt: now,
	})
	if err != nil {
		return nil, "", fmt.Errorf("portal: creating package %q: %w", name, err)
	}
	return p, tok, nil
}

// folderName checks a portal or package name that becomes one folder of
// the delivered tree (iconik's directory_path and collection titles:
// "Portal Downloads/<portal>/<package>/...") and returns it in NFC.
func folderName(what, name string) (string, error) {
	n, err := pathsafe.Segment(name)
	if err != nil {
		return "", invalid("name", "invalid_name", "The %s name becomes a folder name and cannot be used: %v. Choose another name.", what, err)
	}
	return n, nil
}

// DefaultPackageName names a package its sender did not name.
func DefaultPackageName(sender string, at time.Time) string {
	who := "Package"
	if sender != "" {
		who = "Package from " + sender
	}
	return who + " " + at.UTC().Format("2006-01-02 15:04")
}

// PackageByToken returns the package an upload token opens (401 if none).
func (s *Service) PackageByToken(ctx context.Context, token string) (*db.Package, error) {
	if token == "" {
		return nil, errUnauthorized("An upload token is required.")
	}
	p, err := s.db.PackageGetByUploadTokenHash(ctx, &db.PackageGetByUploadTokenHashParams{UploadTokenHash: HashToken(token)})
	if errors.Is(err, db.ErrNotFound) {
		return nil, errUnauthorized("The upload token is unknown; create the package again.")
	}
	if err != nil {
		return nil, fmt.Errorf("portal: looking up an upload token: %w", err)
	}
	return p, nil
}
