package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/web"
)

// webStore adapts db.Store to web.Store: it converts rows to the wire types,
// hashes tokens and passwords before they reach the database, and maps db's
// errors onto web's.
type webStore struct {
	db  db.Store
	now func() time.Time
}

var _ web.Store = (*webStore)(nil)

// mapErr turns db errors into web's sentinels, keeping the context.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("%w", web.ErrNotFound)
	case errors.Is(err, db.ErrConflict):
		return fmt.Errorf("%w", web.ErrConflict)
	}
	return err
}

// ---- auth ----

func (s *webStore) UserByAPIToken(ctx context.Context, token string) (web.User, error) {
	t, err := s.db.APITokenGetByHash(ctx, &db.APITokenGetByHashParams{TokenHash: tokenHash(token)})
	if errors.Is(err, db.ErrNotFound) {
		return web.User{}, web.ErrUnauthorized
	}
	if err != nil {
		return web.User{}, fmt.Errorf("looking up an API token: %w", err)
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: t.UserID})
	if err != nil {
		return web.User{}, fmt.Errorf("loading the user of API token %s: %w", t.ID, mapUnauthorized(err))
	}
	// Last-use bookkeeping is best effort: a failure must not refuse the caller.
	_ = s.db.APITokenTouch(ctx, &db.APITokenTouchParams{ID: t.ID, LastUsedAt: s.now()})
	return web.User{ID: u.ID, Email: u.Email}, nil
}

func mapUnauthorized(err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return web.ErrUnauthorized
	}
	return err
}

func (s *webStore) UserBySession(ctx context.Context, token string) (web.User, error) {
	sess, err := s.db.SessionGetByHash(ctx, &db.SessionGetByHashParams{TokenHash: tokenHash(token)})
	if errors.Is(err, db.ErrNotFound) {
		return web.User{}, web.ErrUnauthorized
	}
	if err != nil {
		return web.User{}, fmt.Errorf("looking up a session: %w", err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		return web.User{}, web.ErrUnauthorized
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: sess.UserID})
	if err != nil {
		return web.User{}, fmt.Errorf("loading the user of a session: %w", mapUnauthorized(err))
	}
	return web.User{ID: u.ID, Email: u.Email}, nil
}

func (s *webStore) Login(ctx context.Context, email, password string) (web.User, error) {
	u, err := s.db.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: strings.ToLower(strings.TrimSpace(email))})
	if errors.Is(err, db.ErrNotFound) {
		_, _ = checkPassword(dummyHash, password) // same work as a real check
		return web.User{}, web.ErrUnauthorized
	}
	if err != nil {
		return web.User{}, fmt.Errorf("looking up user %q: %w", email, err)
	}
	ok, err := checkPassword(u.PasswordHash, password)
	if err != nil {
		return web.User{}, fmt.Errorf("checking the password of user %s: %w", u.ID, err)
	}
	if !ok {
		return web.User{}, web.ErrUnauthorized
	}
	return web.User{ID: u.ID, Email: u.Email}, nil
}

func (s *webStore) SessionCreate(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	tok, hash, err := newToken()
	if err != nil {
		return "", err
	}
	csrf := make([]byte, 32)
	if _, err := rand.Read(csrf); err != nil {
		return "", fmt.Errorf("generating a CSRF secret: %w", err)
	}
	now := s.now()
	_, err = s.db.SessionCreate(ctx, &db.SessionCreateParams{TokenHash: hash, UserID: userID, CSRFSecret: csrf, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return "", fmt.Errorf("creating a session for user %s: %w", userID, err)
	}
	return tok, nil
}

func (s *webStore) SessionDelete(ctx context.Context, token string) error {
	return mapErr(s.db.SessionDelete(ctx, &db.SessionDeleteParams{TokenHash: tokenHash(token)}))
}

// ---- portals ----

func toWebPortal(p *db.Portal) web.Portal {
	return web.Portal{
		ID: p.ID, Name: p.Name, Slug: p.Slug, Active: p.Active, HasPassword: p.PasswordHash != "",
		Recipients: nonNil(p.Recipients), WelcomeMessage: p.WelcomeMessage,
		Limits: web.Limits{
			MaxFileSize: p.Limits.MaxFileSize, MaxPackageSize: p.Limits.MaxPackageSize, MaxFileCount: p.Limits.MaxFileCount,
			AllowedExtensions: nonNil(p.Limits.AllowedExtensions), DeniedExtensions: nonNil(p.Limits.DeniedExtensions),
		},
		ConnectionIDs: nonNil(p.ConnectionIDs), RetentionDays: p.RetentionDays, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// validPortal applies the portal rules to an input and normalises it.
func validPortal(in *web.PortalInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return &web.InvalidError{Field: "name", Message: "A portal needs a name."}
	}
	in.Slug = strings.TrimSpace(in.Slug)
	if !slugRE.MatchString(in.Slug) {
		return &web.InvalidError{Field: "slug", Message: fmt.Sprintf("Slug %q must be 1-64 lower-case letters, digits and inner hyphens (it is part of the URL).", in.Slug)}
	}
	for i, r := range in.Recipients {
		a, err := mail.ParseAddress(strings.TrimSpace(r))
		if err != nil || a.Address != strings.TrimSpace(r) {
			return &web.InvalidError{Field: "recipients", Message: fmt.Sprintf("Recipient %q is not an email address like name@example.com.", r)}
		}
		in.Recipients[i] = strings.ToLower(a.Address)
	}
	l := &in.Limits
	if l.MaxFileSize < 0 || l.MaxPackageSize < 0 || l.MaxFileCount < 0 {
		return &web.InvalidError{Field: "limits", Message: "Limits must be 0 (no limit) or positive."}
	}
	for _, list := range []*[]string{&l.AllowedExtensions, &l.DeniedExtensions} {
		for i, e := range *list {
			e = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(e), "."))
			if e == "" || strings.ContainsAny(e, "/\\. ") {
				return &web.InvalidError{Field: "limits", Message: fmt.Sprintf("Extension %q must be a bare extension like mov or .mov.", (*list)[i])}
			}
			(*list)[i] = e
		}
	}
	if in.RetentionDays < 0 {
		return &web.InvalidError{Field: "retention_days", Message: "retention_days must be 0 (keep forever) or positive."}
	}
	if in.Password != nil && *in.Password != "" && len(*in.Password) < 4 {
		return &web.InvalidError{Field: "password", Message: "An upload password needs at least 4 characters."}
	}
	return nil
}

func dbLimits(l web.Limits) db.Limits {
	return db.Limits{MaxFileSize: l.MaxFileSize, MaxPackageSize: l.MaxPackageSize, MaxFileCount: l.MaxFileCount,
		AllowedExtensions: l.AllowedExtensions, DeniedExtensions: l.DeniedExtensions}
}

func (s *webStore) PortalCreate(ctx context.Context, in web.PortalInput) (web.Portal, error) {
	if err := validPortal(&in); err != nil {
		return web.Portal{}, err
	}
	hash := ""
	if in.Password != nil && *in.Password != "" {
		var err error
		if hash, err = hashPassword(*in.Password); err != nil {
			return web.Portal{}, err
		}
	}
	p, err := s.db.PortalCreate(ctx, &db.PortalCreateParams{
		Name: in.Name, Slug: in.Slug, Active: in.Active == nil || *in.Active, PasswordHash: hash,
		Recipients: in.Recipients, WelcomeMessage: in.WelcomeMessage, Limits: dbLimits(in.Limits),
		ConnectionIDs: in.ConnectionIDs, RetentionDays: in.RetentionDays, CreatedAt: s.now(),
	})
	if errors.Is(err, db.ErrConflict) {
		return web.Portal{}, fmt.Errorf("slug %q is taken: %w", in.Slug, web.ErrConflict)
	}
	if err != nil {
		return web.Portal{}, err
	}
	return toWebPortal(p), nil
}

func (s *webStore) PortalUpdate(ctx context.Context, id string, in web.PortalInput) (web.Portal, error) {
	if err := validPortal(&in); err != nil {
		return web.Portal{}, err
	}
	cur, err := s.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: id})
	if err != nil {
		return web.Portal{}, mapErr(err)
	}
	hash := cur.PasswordHash
	if in.Password != nil {
		hash = ""
		if *in.Password != "" {
			if hash, err = hashPassword(*in.Password); err != nil {
				return web.Portal{}, err
			}
		}
	}
	p, err := s.db.PortalUpdate(ctx, &db.PortalUpdateParams{
		ID: id, Name: in.Name, Slug: in.Slug, Active: in.Active == nil || *in.Active, PasswordHash: hash,
		Recipients: in.Recipients, WelcomeMessage: in.WelcomeMessage, Limits: dbLimits(in.Limits),
		ConnectionIDs: in.ConnectionIDs, RetentionDays: in.RetentionDays, UpdatedAt: s.now(),
	})
	if errors.Is(err, db.ErrConflict) {
		return web.Portal{}, fmt.Errorf("slug %q is taken: %w", in.Slug, web.ErrConflict)
	}
	if err != nil {
		return web.Portal{}, mapErr(err)
	}
	return toWebPortal(p), nil
}

func (s *webStore) PortalDelete(ctx context.Context, id string) error {
	err := s.db.PortalDelete(ctx, &db.PortalDeleteParams{ID: id})
	if errors.Is(err, db.ErrConflict) {
		return fmt.Errorf("the portal still has packages; delete them or deactivate the portal: %w", web.ErrConflict)
	}
	return mapErr(err)
}

func (s *webStore) PortalGet(ctx context.Context, id string) (web.Portal, error) {
	p, err := s.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: id})
	if err != nil {
		return web.Portal{}, mapErr(err)
	}
	return toWebPortal(p), nil
}

func (s *webStore) PortalGetBySlug(ctx context.Context, slug string) (web.Portal, error) {
	p, err := s.db.PortalGetBySlug(ctx, &db.PortalGetBySlugParams{Slug: slug})
	if err != nil {
		return web.Portal{}, mapErr(err)
	}
	return toWebPortal(p), nil
}

func (s *webStore) PortalList(ctx context.Context) ([]web.Portal, error) {
	ps, err := s.db.PortalList(ctx, &db.PortalListParams{})
	if err != nil {
		return nil, err
	}
	out := make([]web.Portal, 0, len(ps))
	for _, p := range ps {
		out = append(out, toWebPortal(p))
	}
	return out, nil
}

func (s *webStore) PortalCheckPassword(ctx context.Context, portalID, password string) (bool, error) {
	p, err := s.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: portalID})
	if err != nil {
		return false, mapErr(err)
	}
	if p.PasswordHash == "" {
		return true, nil
	}
	return checkPassword(p.PasswordHash, password)
}

// ---- packages ----

func toWebPackage(p *db.Package, files []*db.File) web.Package {
	out := web.Package{
		ID: p.ID, Name: p.Name, Description: p.Description, SenderEmail: p.SenderEmail, State: string(p.State),
		TotalSize: p.TotalSize, FileCount: p.FileCount, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, Files: []web.File{},
	}
	if p.PortalID != "" {
		id := p.PortalID
		out.PortalID = &id
	}
	for _, f := range files {
		out.Files = append(out.Files, web.File{ID: f.ID, Path: f.Path, Size: f.Size, SHA256: f.SHA256, State: string(f.State), UploadID: f.UploadID})
	}
	return out
}

func (s *webStore) PackageCreate(ctx context.Context, in web.PackageInput) (web.Package, string, error) {
	tok, hash, err := newToken()
	if err != nil {
		return web.Package{}, "", err
	}
	p, err := s.db.PackageCreate(ctx, &db.PackageCreateParams{
		PortalID: in.PortalID, CreatedByUserID: in.UserID, Name: strings.TrimSpace(in.Name), Description: in.Description,
		SenderEmail: strings.ToLower(in.SenderEmail), UploadTokenHash: hash, CreatedAt: s.now(),
	})
	if err != nil {
		return web.Package{}, "", mapErr(err)
	}
	return toWebPackage(p, nil), tok, nil
}

func (s *webStore) PackageGet(ctx context.Context, id string) (web.Package, error) {
	p, err := s.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: id})
	if err != nil {
		return web.Package{}, mapErr(err)
	}
	files, err := s.db.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: id})
	if err != nil {
		return web.Package{}, fmt.Errorf("listing files of package %s: %w", id, err)
	}
	return toWebPackage(p, files), nil
}

func (s *webStore) PackageIDByUploadToken(ctx context.Context, token string) (string, error) {
	p, err := s.db.PackageGetByUploadTokenHash(ctx, &db.PackageGetByUploadTokenHashParams{UploadTokenHash: tokenHash(token)})
	if errors.Is(err, db.ErrNotFound) {
		return "", web.ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("looking up an upload token: %w", err)
	}
	return p.ID, nil
}

// PackageList pages by offset (the cursor is the offset). The database has
// no sender filter yet, so sender_email is applied here over bounded pages.
func (s *webStore) PackageList(ctx context.Context, f web.PackageFilter) ([]web.Package, string, error) {
	offset := 0
	if f.Cursor != "" {
		n, err := strconv.Atoi(f.Cursor)
		if err != nil || n < 0 {
			return nil, "", &web.InvalidError{Field: "cursor", Message: "The cursor is not one this server handed out."}
		}
		offset = n
	}
	sender := strings.ToLower(strings.TrimSpace(f.SenderEmail))
	var out []web.Package
	for scanned := 0; len(out) < f.Limit && scanned < 10000; {
		page, err := s.db.PackageList(ctx, &db.PackageListParams{PortalID: f.PortalID, State: db.PackageState(f.State), Limit: f.Limit, Offset: offset})
		if err != nil {
			return nil, "", fmt.Errorf("listing packages: %w", err)
		}
		for _, p := range page {
			offset++
			if sender == "" || strings.EqualFold(p.SenderEmail, sender) {
				out = append(out, toWebPackage(p, nil))
				if len(out) == f.Limit {
					break
				}
			}
		}
		scanned += len(page)
		if len(page) < f.Limit {
			return out, "", nil
		}
	}
	return out, strconv.Itoa(offset), nil
}

// PackageDelete removes the package's rows in one transaction and returns
// the uploads whose bytes the caller deletes afterwards.
func (s *webStore) PackageDelete(ctx context.Context, id string) ([]string, error) {
	var uploads []string
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		files, err := tx.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: id})
		if err != nil {
			return err
		}
		links, err := tx.DownloadLinkListByPackage(ctx, &db.DownloadLinkListByPackageParams{PackageID: id})
		if err != nil {
			return err
		}
		for _, l := range links {
			if err := tx.DownloadLinkDelete(ctx, &db.DownloadLinkDeleteParams{ID: l.ID}); err != nil {
				return err
			}
		}
		for _, f := range files {
			if err := tx.FileDelete(ctx, &db.FileDeleteParams{ID: f.ID}); err != nil {
				return err
			}
			if f.UploadID != "" {
				uploads = append(uploads, f.UploadID)
			}
		}
		return tx.PackageDelete(ctx, &db.PackageDeleteParams{ID: id})
	})
	if err != nil {
		return nil, mapErr(fmt.Errorf("deleting package %s: %w", id, err))
	}
	return uploads, nil
}

// PackageFinalize closes a package for uploads once every admitted file is
// complete; its expiry follows from the portal's retention.
func (s *webStore) PackageFinalize(ctx context.Context, id string) (web.Package, error) {
	p, err := s.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: id})
	if err != nil {
		return web.Package{}, mapErr(err)
	}
	files, err := s.db.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: id})
	if err != nil {
		return web.Package{}, fmt.Errorf("listing files of package %s: %w", id, err)
	}
	if p.State == db.PackageFinalized {
		return toWebPackage(p, files), nil // finalize is idempotent: a retried request succeeds
	}
	if p.State != db.PackageUploading {
		return web.Package{}, fmt.Errorf("package is %s and can no longer be finalized: %w", p.State, web.ErrConflict)
	}
	pending := 0
	for _, f := range files {
		if f.State != db.FileComplete {
			pending++
		}
	}
	if pending > 0 {
		return web.Package{}, fmt.Errorf("%d file(s) of the package are not completely uploaded yet; finish or cancel them first: %w", pending, web.ErrConflict)
	}
	now := s.now()
	var expires *time.Time
	if p.PortalID != "" {
		portal, err := s.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: p.PortalID})
		if err == nil && portal.RetentionDays > 0 {
			t := now.Add(time.Duration(portal.RetentionDays) * 24 * time.Hour)
			expires = &t
		}
	}
	done, err := s.db.PackageSetFinalized(ctx, &db.PackageSetFinalizedParams{ID: id, FinalizedAt: now, ExpiresAt: expires})
	if errors.Is(err, db.ErrPrecondition) {
		// A concurrent finalize won the race: answer with its result.
		return s.PackageGet(ctx, id)
	}
	if err != nil {
		return web.Package{}, mapErr(err)
	}
	return toWebPackage(done, files), nil
}

// ---- download links ----

func toWebLink(l *db.DownloadLink) web.Link {
	return web.Link{ID: l.ID, PackageID: l.PackageID, ExpiresAt: l.ExpiresAt, HasPassword: l.PasswordHash != "",
		MaxDownloads: l.DownloadLimit, Downloads: l.DownloadCount, CreatedAt: l.CreatedAt}
}

func (s *webStore) LinkCreate(ctx context.Context, in web.LinkInput) (web.Link, string, error) {
	tok, hash, err := newToken()
	if err != nil {
		return web.Link{}, "", err
	}
	pw := ""
	if in.Password != "" {
		if pw, err = hashPassword(in.Password); err != nil {
			return web.Link{}, "", err
		}
	}
	l, err := s.db.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: in.PackageID, TokenHash: hash, PasswordHash: pw,
		DownloadLimit: in.MaxDownloads, CreatedAt: s.now(), ExpiresAt: in.ExpiresAt})
	if err != nil {
		return web.Link{}, "", mapErr(err)
	}
	return toWebLink(l), tok, nil
}

func (s *webStore) LinkByToken(ctx context.Context, token string) (web.Link, error) {
	l, err := s.db.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: tokenHash(token)})
	if err != nil {
		return web.Link{}, mapErr(err)
	}
	return toWebLink(l), nil
}

func (s *webStore) LinkCheckPassword(ctx context.Context, token, password string) (bool, error) {
	l, err := s.db.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: tokenHash(token)})
	if err != nil {
		return false, mapErr(err)
	}
	if l.PasswordHash == "" {
		return true, nil
	}
	return checkPassword(l.PasswordHash, password)
}

func (s *webStore) LinkCountDownload(ctx context.Context, linkID string) error {
	_, err := s.db.DownloadLinkIncrementCount(ctx, &db.DownloadLinkIncrementCountParams{ID: linkID, Now: s.now()})
	if errors.Is(err, db.ErrPrecondition) {
		return web.ErrLimitReached
	}
	return mapErr(err)
}
