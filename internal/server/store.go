package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/web"
)

// webStore adapts the domain (portal.Service over db.Store) to web.Store: it
// converts rows to the wire types and the domain's refusals to web.Error.
// Reads with no rule attached go to the database directly.
type webStore struct {
	db         db.Store
	svc        *portal.Service
	conns      *connect.Service
	now        func() time.Time
	onFinalize portal.FinalizeHook
}

var _ web.Store = (*webStore)(nil)

// mapErr turns the domain's refusals and db's errors into web's.
func mapErr(err error) error {
	if pe := portal.AsError(err); pe != nil {
		return &web.Error{Status: pe.Status, Code: pe.Code, Message: pe.Message}
	}
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

func webUser(u *db.User) web.User { return web.User{ID: u.ID, Email: u.Email} }

// unauthorized keeps the domain's 401s apart from failures (500s).
func unauthorized(err error) error {
	if pe := portal.AsError(err); pe != nil && pe.Status == 401 {
		return web.ErrUnauthorized
	}
	return err
}

func (s *webStore) UserByAPIToken(ctx context.Context, token string) (web.User, error) {
	u, err := s.svc.UserByAPIToken(ctx, token)
	if pe := portal.AsError(err); pe != nil && pe.Status == 401 && pe.Code != "unauthorized" {
		return web.User{}, mapErr(err) // expired or revoked: the caller is told which
	}
	if err != nil {
		return web.User{}, unauthorized(err)
	}
	return webUser(u), nil
}

func toWebAPIToken(v portal.APITokenView) web.APIToken {
	return web.APIToken{ID: v.ID, Name: v.Name, UserID: v.UserID, UserEmail: v.UserEmail, CreatedAt: v.CreatedAt,
		LastUsedAt: v.LastUsedAt, ExpiresAt: v.ExpiresAt, RevokedAt: v.RevokedAt, State: v.State}
}

func (s *webStore) APITokenCreate(ctx context.Context, userID string, in web.APITokenInput) (web.APIToken, string, error) {
	secret, t, err := s.svc.CreateAPIToken(ctx, userID, in.Name, in.ExpiresAt)
	if err != nil {
		return web.APIToken{}, "", mapErr(err)
	}
	u, err := s.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: userID})
	if err != nil {
		return web.APIToken{}, "", fmt.Errorf("loading user %s: %w", userID, err)
	}
	return toWebAPIToken(portal.APITokenView{APIToken: t, UserEmail: u.Email, State: portal.APITokenState(t, s.now())}), secret, nil
}

func (s *webStore) APITokenList(ctx context.Context) ([]web.APIToken, error) {
	list, err := s.svc.ListAPITokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.APIToken, 0, len(list))
	for _, v := range list {
		out = append(out, toWebAPIToken(v))
	}
	return out, nil
}

func (s *webStore) APITokenRevoke(ctx context.Context, id string) (web.APIToken, error) {
	v, err := s.svc.RevokeAPIToken(ctx, id)
	if err != nil {
		return web.APIToken{}, mapErr(err)
	}
	return toWebAPIToken(v), nil
}

func (s *webStore) UserBySession(ctx context.Context, token string) (web.User, error) {
	_, u, err := s.svc.SessionByToken(ctx, token)
	if err != nil {
		return web.User{}, unauthorized(err)
	}
	return webUser(u), nil
}

func (s *webStore) Login(ctx context.Context, email, password string) (web.User, error) {
	u, err := s.svc.Authenticate(ctx, email, password)
	if err != nil {
		return web.User{}, unauthorized(err)
	}
	return webUser(u), nil
}

func (s *webStore) SessionCreate(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	tok, _, err := s.svc.CreateSession(ctx, userID, ttl)
	return tok, err
}

func (s *webStore) SessionDelete(ctx context.Context, token string) error {
	return s.svc.DeleteSession(ctx, token)
}

func (s *webStore) UserCount(ctx context.Context) (int, error) { return s.db.UserCount(ctx) }

func (s *webStore) UserList(ctx context.Context) ([]web.User, error) {
	us, err := s.db.UserList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.User, 0, len(us))
	for _, u := range us {
		out = append(out, webUser(u))
	}
	return out, nil
}

func (s *webStore) UserCreate(ctx context.Context, email, password string) (web.User, error) {
	u, err := s.svc.CreateUser(ctx, email, password, true)
	if err != nil {
		return web.User{}, mapErr(err)
	}
	return webUser(u), nil
}

func (s *webStore) UserCreateFirst(ctx context.Context, email, password string) (web.User, error) {
	u, err := s.svc.CreateFirstAdmin(ctx, email, password)
	if err != nil {
		return web.User{}, mapErr(err)
	}
	return webUser(u), nil
}

func (s *webStore) UserDelete(ctx context.Context, id string) error {
	return mapErr(s.svc.DeleteUser(ctx, id))
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

func portalInput(in web.PortalInput) portal.PortalInput {
	return portal.PortalInput{
		Name: in.Name, Slug: in.Slug, Active: in.Active == nil || *in.Active, Password: in.Password,
		Recipients: in.Recipients, WelcomeMessage: in.WelcomeMessage,
		Limits: db.Limits{MaxFileSize: in.Limits.MaxFileSize, MaxPackageSize: in.Limits.MaxPackageSize, MaxFileCount: in.Limits.MaxFileCount,
			AllowedExtensions: in.Limits.AllowedExtensions, DeniedExtensions: in.Limits.DeniedExtensions},
		ConnectionIDs: in.ConnectionIDs, RetentionDays: in.RetentionDays,
	}
}

// connectionsExist refuses a portal that would deliver to a connection that
// does not exist.
func (s *webStore) connectionsExist(ctx context.Context, ids []string) error {
	if s.conns == nil || len(ids) == 0 {
		return nil
	}
	if err := s.conns.Exist(ctx, ids); err != nil {
		if ce := connect.AsError(err); ce != nil {
			return &web.Error{Status: ce.Status, Code: ce.Code, Message: ce.Message}
		}
		return err
	}
	return nil
}

func (s *webStore) PortalCreate(ctx context.Context, in web.PortalInput) (web.Portal, error) {
	if err := s.connectionsExist(ctx, in.ConnectionIDs); err != nil {
		return web.Portal{}, err
	}
	p, err := s.svc.CreatePortal(ctx, portalInput(in))
	if err != nil {
		return web.Portal{}, mapErr(err)
	}
	return toWebPortal(p), nil
}

func (s *webStore) PortalUpdate(ctx context.Context, id string, in web.PortalInput) (web.Portal, error) {
	if err := s.connectionsExist(ctx, in.ConnectionIDs); err != nil {
		return web.Portal{}, err
	}
	p, err := s.svc.UpdatePortal(ctx, id, portalInput(in))
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
		out.Files = append(out.Files, web.File{ID: f.ID, Path: f.Path, Size: f.Size, SHA256: f.SHA256, SHA256Verified: f.SHA256Verified, State: string(f.State), UploadID: f.UploadID})
	}
	return out
}

func (s *webStore) PackageCreate(ctx context.Context, in web.PackageInput) (web.Package, string, error) {
	p, tok, err := s.svc.CreatePackage(ctx, portal.NewPackage{
		PortalSlug: in.PortalSlug, UserID: in.UserID, Name: in.Name, Description: in.Description,
		SenderEmail: in.SenderEmail, Password: in.Password,
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
	p, err := s.db.PackageGetByUploadTokenHash(ctx, &db.PackageGetByUploadTokenHashParams{UploadTokenHash: portal.HashToken(token)})
	if errors.Is(err, db.ErrNotFound) {
		return "", web.ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("looking up an upload token: %w", err)
	}
	return p.ID, nil
}

// PackageList pages by offset: the cursor is the offset of the next page.
func (s *webStore) PackageList(ctx context.Context, f web.PackageFilter) ([]web.Package, string, error) {
	offset := 0
	if f.Cursor != "" {
		n, err := strconv.Atoi(f.Cursor)
		if err != nil || n < 0 {
			return nil, "", &web.Error{Status: 400, Code: "invalid_cursor", Message: "The cursor is not one this server handed out."}
		}
		offset = n
	}
	// One more than asked tells whether another page exists.
	page, err := s.db.PackageList(ctx, &db.PackageListParams{PortalID: f.PortalID, State: db.PackageState(f.State),
		SenderEmail: strings.TrimSpace(f.SenderEmail), Query: f.Query, Limit: f.Limit + 1, Offset: offset})
	if err != nil {
		return nil, "", fmt.Errorf("listing packages: %w", err)
	}
	next := ""
	if len(page) > f.Limit {
		page = page[:f.Limit]
		next = strconv.Itoa(offset + f.Limit)
	}
	out := make([]web.Package, 0, len(page))
	for _, p := range page {
		out = append(out, toWebPackage(p, nil))
	}
	return out, next, nil
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

// PackageFinalize applies the domain's finalize (idempotent; its hook
// enqueues deliveries in the same transaction).
func (s *webStore) PackageFinalize(ctx context.Context, id string) (web.Package, error) {
	fin, err := s.svc.Finalize(ctx, id, s.onFinalize)
	if err != nil {
		return web.Package{}, mapErr(err)
	}
	return toWebPackage(fin.Package, fin.Files), nil
}

// ---- download links ----

func toWebLink(l *db.DownloadLink) web.Link {
	return web.Link{ID: l.ID, PackageID: l.PackageID, ExpiresAt: l.ExpiresAt, HasPassword: l.PasswordHash != "",
		MaxDownloads: l.DownloadLimit, Downloads: l.DownloadCount, CreatedAt: l.CreatedAt}
}

func (s *webStore) LinkCreate(ctx context.Context, in web.LinkInput) (web.Link, string, error) {
	var ttl time.Duration
	if in.ExpiresAt != nil {
		ttl = in.ExpiresAt.Sub(s.now())
	}
	tok, l, err := s.svc.CreateDownloadLink(ctx, in.PackageID, portal.LinkOptions{TTL: ttl, Password: in.Password, DownloadLimit: in.MaxDownloads})
	if err != nil {
		return web.Link{}, "", mapErr(err)
	}
	return toWebLink(l), tok, nil
}

func (s *webStore) LinkByToken(ctx context.Context, token string) (web.Link, error) {
	l, err := s.db.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: portal.HashToken(token)})
	if err != nil {
		return web.Link{}, mapErr(err)
	}
	return toWebLink(l), nil
}

func (s *webStore) LinkCheckPassword(ctx context.Context, token, password string) (bool, error) {
	l, err := s.db.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: portal.HashToken(token)})
	if err != nil {
		return false, mapErr(err)
	}
	if l.PasswordHash == "" {
		return true, nil
	}
	return portal.CheckPassword(l.PasswordHash, password)
}

func (s *webStore) LinkServed(ctx context.Context, linkID string) (map[string]int64, error) {
	rows, err := s.db.DownloadLinkFileList(ctx, &db.DownloadLinkFileListParams{LinkID: linkID})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.FileID] = r.BytesServed
	}
	return out, nil
}

// LinkCharge charges every file in one transaction: a zip is charged for
// all its files or for none.
func (s *webStore) LinkCharge(ctx context.Context, linkID string, charges []web.FileCharge, download bool) error {
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		if download {
			if _, err := tx.DownloadLinkIncrementCount(ctx, &db.DownloadLinkIncrementCountParams{ID: linkID, Now: s.now()}); err != nil {
				return err
			}
		}
		for _, c := range charges {
			if _, err := tx.DownloadLinkFileCharge(ctx, &db.DownloadLinkFileChargeParams{LinkID: linkID, FileID: c.FileID, Bytes: c.Bytes, MaxBytes: c.MaxBytes}); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, db.ErrPrecondition) {
		return web.ErrLimitReached
	}
	return mapErr(err)
}

func (s *webStore) LinkRefund(ctx context.Context, linkID, fileID string, unsent, lost, maxLost int64) error {
	return mapErr(s.db.DownloadLinkFileRefund(ctx, &db.DownloadLinkFileRefundParams{LinkID: linkID, FileID: fileID, Bytes: unsent, Lost: lost, MaxLost: maxLost}))
}
