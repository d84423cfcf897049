package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// createdPackage is the answer to creating a package (contract C).
type createdPackage struct {
	Package     Package         `json:"package"`
	UploadToken string          `json:"upload_token"`
	UploadURL   string          `json:"upload_url"`
	Uploads     []CreatedUpload `json:"uploads,omitempty" doc:"The uploads the request asked for, in its order (batch.go)"`
}

const uploadsPath = "/uploads/"

// ---- portals (admin) ----

func (s *Server) portalList(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.opt.Store.PortalList(r.Context())
	if err != nil {
		return fmt.Errorf("listing portals: %w", err)
	}
	if ps == nil {
		ps = []Portal{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"portals": ps})
	return nil
}

func (s *Server) portalCreate(w http.ResponseWriter, r *http.Request) error {
	var in PortalInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Active == nil {
		t := true
		in.Active = &t
	}
	p, err := s.opt.Store.PortalCreate(r.Context(), in)
	if err != nil {
		return fmt.Errorf("creating portal %q: %w", in.Slug, err)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"portal": p})
	return nil
}

func (s *Server) portalGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.opt.Store.PortalGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "portal")
	}
	writeJSON(w, http.StatusOK, map[string]any{"portal": p})
	return nil
}

// portalUpdate overlays the fields present in the body on the stored portal:
// decoding into an input prefilled from the current row leaves absent fields
// untouched, and a nil Password keeps the stored one.
func (s *Server) portalUpdate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	cur, err := s.opt.Store.PortalGet(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "portal")
	}
	active := cur.Active
	in := PortalInput{
		Name: cur.Name, Slug: cur.Slug, Active: &active, Recipients: cur.Recipients,
		WelcomeMessage: cur.WelcomeMessage, Limits: cur.Limits, ConnectionIDs: cur.ConnectionIDs,
		RetentionDays: cur.RetentionDays,
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	p, err := s.opt.Store.PortalUpdate(r.Context(), id, in)
	if err != nil {
		return notFoundAs(fmt.Errorf("updating portal %s: %w", id, err), "portal")
	}
	writeJSON(w, http.StatusOK, map[string]any{"portal": p})
	return nil
}

func (s *Server) portalDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.opt.Store.PortalDelete(r.Context(), r.PathValue("id")); err != nil {
		return notFoundAs(err, "portal")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// notFoundAs names the missing thing in a not-found answer.
func notFoundAs(err error, what string) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(what)
	}
	return err
}

// ---- packages (admin) ----

func (s *Server) packageList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := PackageFilter{PortalID: q.Get("portal_id"), State: q.Get("state"), SenderEmail: q.Get("sender_email"), Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: 50}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return errorf(http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to 500, got %q.", v)
		}
		f.Limit = n
	}
	switch f.State {
	case "", StateUploading, StateFinalized, StateExpired:
	default:
		return errorf(http.StatusBadRequest, "invalid_state", "state must be uploading, finalized or expired, got %q.", f.State)
	}
	items, next, err := s.opt.Store.PackageList(r.Context(), f)
	if err != nil {
		return fmt.Errorf("listing packages: %w", err)
	}
	if items == nil {
		items = []Package{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"packages": items, "next_cursor": next})
	return nil
}

type packageRequest struct {
	Name        string       `json:"name"`
	SenderEmail string       `json:"sender_email"`
	Description string       `json:"description"`
	Password    string       `json:"password"`
	Uploads     []UploadSpec `json:"uploads,omitempty" doc:"tus uploads to create with the package (at most 64), as tus creation requests with its upload token would: saves a sender on a long link a round trip"`
}

// adminPackageRequest creates a portal-less package: the sender is the
// signed-in user.
type adminPackageRequest struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Uploads     []UploadSpec `json:"uploads,omitempty" doc:"tus uploads to create with the package (at most 64), as tus creation requests with its upload token would"`
}

func (s *Server) packageCreate(w http.ResponseWriter, r *http.Request) error {
	var req adminPackageRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkSpecs(req.Uploads); err != nil {
		return err
	}
	u := currentUser(r)
	pkg, tok, err := s.opt.Store.PackageCreate(r.Context(), PackageInput{
		UserID: u.ID, Name: req.Name, Description: req.Description, SenderEmail: u.Email,
	})
	if err != nil {
		return fmt.Errorf("creating package %q: %w", req.Name, err)
	}
	writeJSON(w, http.StatusCreated, createdPackage{Package: pkg, UploadToken: tok, UploadURL: uploadsPath, Uploads: s.createUploads(r, tok, req.Uploads)})
	return nil
}

func (s *Server) packageGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.opt.Store.PackageGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "package")
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": p})
	return nil
}

// packageDelete removes the rows first, then the bytes: a crash in between
// leaves orphan bytes (harmless, swept later), never rows naming missing bytes.
func (s *Server) packageDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	uploads, err := s.opt.Store.PackageDelete(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "package")
	}
	for _, u := range uploads {
		if err := s.opt.Blobs.Delete(r.Context(), u); err != nil {
			s.log.ErrorContext(r.Context(), "web: deleting stored bytes of a deleted package", "package", id, "upload", u, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) packageFinalize(w http.ResponseWriter, r *http.Request) error {
	p, err := s.opt.Store.PackageFinalize(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "package")
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": p})
	return nil
}

// ---- public portal flow ----

// portalCreatePackage leaves the portal's rules (active, password, sender
// email) to the Store, and rate-limits wrong passwords per portal and
// client: only wrong guesses spend the budget, so an uploader who knows the
// password is never slowed down, and a blocked guesser learns nothing.
func (s *Server) portalCreatePackage(w http.ResponseWriter, r *http.Request) error {
	slug := r.PathValue("slug")
	var req packageRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkSpecs(req.Uploads); err != nil {
		return err
	}
	key := "portal:" + slug + "|" + clientKey(r)
	if s.passLimit.Blocked(key) {
		return errTooManyAttempts
	}
	pkg, tok, err := s.opt.Store.PackageCreate(r.Context(), PackageInput{
		PortalSlug: slug, Password: req.Password, Name: req.Name, Description: req.Description, SenderEmail: req.SenderEmail,
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusUnauthorized && req.Password != "" {
			s.passLimit.Fail(key)
		}
		return notFoundAs(err, "portal")
	}
	writeJSON(w, http.StatusCreated, createdPackage{Package: pkg, UploadToken: tok, UploadURL: uploadsPath, Uploads: s.createUploads(r, tok, req.Uploads)})
	return nil
}

var errTooManyAttempts = errorf(http.StatusTooManyRequests, "too_many_attempts", "Too many wrong passwords; wait a minute and try again.")

// checkPassword runs a password check under the failure rate limit for key
// and the caller's address.
func (s *Server) checkPassword(r *http.Request, key string, check func() (bool, error)) error {
	k := key + "|" + clientKey(r)
	if s.passLimit.Blocked(k) {
		return errTooManyAttempts
	}
	ok, err := check()
	if err != nil {
		return fmt.Errorf("checking a password: %w", err)
	}
	if !ok {
		s.passLimit.Fail(k)
		return errorf(http.StatusUnauthorized, "wrong_password", "The password is wrong; ask the person who shared this link for it.")
	}
	return nil
}

// uploaderPackage loads the package the upload token is scoped to and
// checks it belongs to the portal in the path.
func (s *Server) uploaderPackage(r *http.Request) (Package, error) {
	id, _ := r.Context().Value(packageKey).(string)
	pkg, err := s.opt.Store.PackageGet(r.Context(), id)
	if err != nil {
		return Package{}, notFoundAs(err, "package")
	}
	portal, err := s.opt.Store.PortalGetBySlug(r.Context(), r.PathValue("slug"))
	if err != nil || pkg.PortalID == nil || *pkg.PortalID != portal.ID {
		return Package{}, notFound("package")
	}
	return pkg, nil
}

func (s *Server) uploaderGetPackage(w http.ResponseWriter, r *http.Request) error {
	pkg, err := s.uploaderPackage(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": pkg})
	return nil
}

func (s *Server) uploaderFinalize(w http.ResponseWriter, r *http.Request) error {
	var req finalizeRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	if err := checkConcats(req.Concat); err != nil {
		return err
	}
	pkg, err := s.uploaderPackage(r)
	if err != nil {
		return err
	}
	if len(req.Concat) > 0 && pkg.State == StateUploading {
		tok, _ := bearer(r)
		if err := s.concatenate(r, tok, pkg, req.Concat); err != nil {
			return err
		}
	}
	done, err := s.opt.Store.PackageFinalize(r.Context(), pkg.ID)
	if err != nil {
		return notFoundAs(err, "package")
	}
	writeJSON(w, http.StatusOK, finalizedResponse{Package: done, ReceiptURL: "/r/" + s.receiptToken(done.ID)})
	return nil
}

// finalizedResponse answers the uploader's finalize: the package, and the
// sender's receipt page (files, and whether they have been delivered).
type finalizedResponse struct {
	Package    Package `json:"package"`
	ReceiptURL string  `json:"receipt_url"`
}

// ---- download links (admin side) ----

type linkRequest struct {
	ExpiresAt    *time.Time `json:"expires_at"`
	ExpiresIn    string     `json:"expires_in"` // Go duration, e.g. "72h"
	Password     string     `json:"password"`
	MaxDownloads int        `json:"max_downloads"`
}

type createdLink struct {
	Link  Link   `json:"link"`
	Token string `json:"token"`
	URL   string `json:"url"`
}

func (s *Server) linkCreate(w http.ResponseWriter, r *http.Request) error {
	var req linkRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	cl, err := s.createLink(r, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, cl)
	return nil
}

// createLink applies the link rules and creates it: the API and the console
// page both come here.
func (s *Server) createLink(r *http.Request, packageID string, req linkRequest) (createdLink, error) {
	in := LinkInput{PackageID: packageID, ExpiresAt: req.ExpiresAt, Password: req.Password, MaxDownloads: req.MaxDownloads}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return createdLink{}, errorf(http.StatusUnprocessableEntity, "invalid_expires_in", "expires_in must be a positive duration like 72h, got %q.", req.ExpiresIn)
		}
		t := s.now().Add(d).UTC()
		in.ExpiresAt = &t
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()) {
		return createdLink{}, errorf(http.StatusUnprocessableEntity, "invalid_expires_at", "expires_at must be in the future.")
	}
	if in.MaxDownloads < 0 {
		return createdLink{}, errorf(http.StatusUnprocessableEntity, "invalid_max_downloads", "max_downloads must be 0 (unlimited) or more.")
	}
	if _, err := s.opt.Store.PackageGet(r.Context(), in.PackageID); err != nil {
		return createdLink{}, notFoundAs(err, "package")
	}
	l, tok, err := s.opt.Store.LinkCreate(r.Context(), in)
	if err != nil {
		return createdLink{}, fmt.Errorf("creating a download link for package %s: %w", in.PackageID, err)
	}
	return createdLink{Link: l, Token: tok, URL: "/d/" + tok}, nil
}

// ---- session ----

func (s *Server) session(w http.ResponseWriter, r *http.Request) error {
	body := map[string]any{"user": currentUser(r)}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, viaToken := bearer(r); !viaToken {
			body["csrf_token"] = csrfToken(c.Value)
		}
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login accepts a form (browser) or JSON; the session cookie is HttpOnly and
// SameSite=Lax, and the login itself passes the cross-origin check so another
// site cannot sign a visitor in to an account of its choosing.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	// A browser's form gets HTML back whatever happens (the form again with
	// the message inline); a script posting JSON keeps the JSON errors.
	form := mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
	fail := func(err error) error {
		if form {
			return s.loginFormFailed(w, r, req, err)
		}
		return err
	}
	if err := s.originGuard.Check(r); err != nil {
		return fail(errorf(http.StatusForbidden, "cross_origin", "Cross-origin sign-in is refused."))
	}
	switch {
	case mt == "application/json":
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	case form:
		r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
		req.Email, req.Password = r.PostFormValue("email"), r.PostFormValue("password")
	default:
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Sign in with a form or a JSON body (Content-Type: application/json); got %q.", ct)
	}
	var u User
	err := s.checkPassword(r, "login:"+strings.ToLower(req.Email), func() (bool, error) {
		var err error
		u, err = s.opt.Store.Login(r.Context(), req.Email, req.Password)
		if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) && ae.Code == "wrong_password" {
			err = errorf(http.StatusUnauthorized, "wrong_credentials", "The email or password is wrong.")
		}
		return fail(err)
	}
	tok, err := s.opt.Store.SessionCreate(r.Context(), u.ID, s.opt.SessionTTL)
	if err != nil {
		return fail(fmt.Errorf("creating a session for user %s: %w", u.ID, err))
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true, Secure: s.opt.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.opt.SessionTTL.Seconds()),
	})
	if !form {
		writeJSON(w, http.StatusOK, map[string]any{"user": u, "csrf_token": csrfToken(tok)})
		return nil
	}
	next := localPath(r.PostFormValue("next"))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.opt.Store.SessionDelete(r.Context(), c.Value); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("ending a session: %w", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.opt.SecureCookies, SameSite: http.SameSiteLaxMode})
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		// The console's sign-out button: back to the sign-in page.
		return seeOther(w, r, "/login", "Signed out.")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
