package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The home page is three pages in one place: the dashboard for a signed-in
// admin, the first-run form while the server has no account at all, and the
// sign-in form otherwise. "/" is what a new user opens first, so it must
// never be a dead end.

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if u, err := s.opt.Store.UserBySession(r.Context(), c.Value); err == nil {
			return s.dashboard(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
		}
	}
	n, err := s.opt.Store.UserCount(r.Context())
	if err != nil {
		return s.htmlFailure(w, r, fmt.Errorf("counting admins: %w", err))
	}
	if n == 0 {
		return s.firstRunForm(w, r, http.StatusOK, firstRunData{}, "")
	}
	return s.loginForm(w, r, http.StatusOK, loginData{})
}

// ---- first run ----

type firstRunData struct{ Email string }

func (s *Server) firstRunForm(w http.ResponseWriter, r *http.Request, status int, d firstRunData, msg string) error {
	p, err := s.newPage(r, "Welcome to ferry", "", d)
	if err != nil {
		return err
	}
	p.Error = msg
	renderNonce(w, status, "home/firstrun", p, p.Nonce)
	return nil
}

// firstRun creates the first admin and signs them in. It is public (nobody
// can sign in yet), so it is guarded three ways: the cross-origin check (no
// other site can post it), the Store creating the account only while there
// is none (atomically), and refusing once an admin exists.
func (s *Server) firstRun(w http.ResponseWriter, r *http.Request) error {
	if err := s.originGuard.Check(r); err != nil {
		return s.htmlFailure(w, r, errorf(http.StatusForbidden, "cross_origin", "Cross-origin requests are refused."))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	d := firstRunData{Email: strings.TrimSpace(r.PostFormValue("email"))}
	pw, again := r.PostFormValue("password"), r.PostFormValue("password2")
	if pw != again {
		return s.firstRunForm(w, r, http.StatusUnprocessableEntity, d, "The two passwords differ; type the same password twice.")
	}
	u, err := s.opt.Store.UserCreateFirst(r.Context(), d.Email, pw)
	if err != nil {
		var ae *Error
		if errors.As(mapStoreError(err), &ae) {
			if ae.Status == http.StatusConflict && ae.Code == "admin_exists" {
				return s.loginForm(w, r, http.StatusConflict, loginData{Message: ae.Message})
			}
			return s.firstRunForm(w, r, ae.Status, d, ae.Message)
		}
		return s.htmlFailure(w, r, fmt.Errorf("creating the first admin: %w", err))
	}
	if err := s.startSession(w, r, u); err != nil {
		return s.htmlFailure(w, r, err)
	}
	return seeOther(w, r, "/", "Welcome. Your admin account is ready; create a portal to start receiving files.")
}

// ---- sign-in ----

type loginData struct {
	Email, Next, Message string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, d loginData) error {
	p, err := s.newPage(r, "Sign in", "", d)
	if err != nil {
		return err
	}
	p.Error = d.Message
	if r.Method == http.MethodGet {
		p.Flash = r.URL.Query().Get("flash") // "Signed out."
	}
	renderNonce(w, status, "home/login", p, p.Nonce)
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	return s.loginForm(w, r, http.StatusOK, loginData{Next: localPath(r.URL.Query().Get("next"))})
}

// localPath returns p when it is a path on this server, "" otherwise: a
// sign-in link must not be able to send the admin to another site after
// signing in (an open redirect), so schemes, hosts, "//host" and "/\host"
// (which browsers read as a host) are refused.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n\t") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return p
}

// loginFormFailed answers a browser's failed sign-in: the form again, with
// the message inline and the email kept.
func (s *Server) loginFormFailed(w http.ResponseWriter, r *http.Request, req loginRequest, err error) error {
	var ae *Error
	if !errors.As(mapStoreError(err), &ae) {
		return s.htmlFailure(w, r, err)
	}
	return s.loginForm(w, r, ae.Status, loginData{Email: req.Email, Next: localPath(r.PostFormValue("next")), Message: ae.Message})
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u User) error {
	tok, err := s.opt.Store.SessionCreate(r.Context(), u.ID, s.opt.SessionTTL)
	if err != nil {
		return fmt.Errorf("creating a session for user %s: %w", u.ID, err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true, Secure: s.opt.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.opt.SessionTTL.Seconds()),
	})
	return nil
}

// htmlFailure answers a public browser page that failed: an HTML page, the
// internals logged.
func (s *Server) htmlFailure(w http.ResponseWriter, r *http.Request, err error) error {
	s.consoleError(w, r, err)
	return nil
}

// ---- dashboard ----

type dashPackage struct {
	Package
	Portal     string
	Deliveries []Delivery
}

type dashAttention struct {
	Package  Package
	Delivery Delivery
	Reason   string
}

type dashPortal struct {
	Portal
	URL string
}

type dashData struct {
	Packages  []dashPackage
	Attention []dashAttention
	Broken    []brokenConnection
	Portals   []dashPortal
	HasDeliv  bool
}

type brokenConnection struct{ ID, Name, Reason string }

// dashboardScan is how many recent packages the dashboard looks through for
// deliveries needing attention; dashboardShown how many it lists.
const (
	dashboardScan  = 50
	dashboardShown = 10
)

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var d dashData
	portals, err := s.opt.Store.PortalList(ctx)
	if err != nil {
		return s.htmlFailure(w, r, fmt.Errorf("listing portals: %w", err))
	}
	names := map[string]string{}
	for _, p := range portals {
		names[p.ID] = p.Name
		d.Portals = append(d.Portals, dashPortal{Portal: p, URL: s.absURL(r, "/p/"+p.Slug)})
	}
	pkgs, _, err := s.opt.Store.PackageList(ctx, PackageFilter{Limit: dashboardScan})
	if err != nil {
		return s.htmlFailure(w, r, fmt.Errorf("listing packages: %w", err))
	}
	ds, derr := s.deliveries()
	d.HasDeliv = derr == nil
	for i, p := range pkgs {
		dp := dashPackage{Package: p}
		if p.PortalID != nil {
			dp.Portal = names[*p.PortalID]
		}
		if ds != nil {
			list, err := ds.DeliveryList(ctx, p.ID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return s.htmlFailure(w, r, fmt.Errorf("listing deliveries of package %s: %w", p.ID, err))
			}
			dp.Deliveries = list
			for _, dl := range list {
				if reason := needsAttention(dl); reason != "" {
					d.Attention = append(d.Attention, dashAttention{Package: p, Delivery: dl, Reason: reason})
				}
			}
		}
		if i < dashboardShown {
			d.Packages = append(d.Packages, dp)
		}
	}
	if s.opt.Connections != nil {
		cs, err := s.opt.Connections.List(ctx)
		if err != nil {
			return s.htmlFailure(w, r, fmt.Errorf("listing connections: %w", err))
		}
		for _, c := range cs {
			if c.Broken() {
				d.Broken = append(d.Broken, brokenConnection{ID: c.ID, Name: c.Name, Reason: c.StateReason})
			}
		}
	}
	return s.consolePage(w, r, http.StatusOK, "home/dashboard", "Dashboard", "/", d)
}

// needsAttention says why a delivery needs an admin's eye: it failed (in
// part), or it is still running with files that failed and wait for their
// next attempt.
func needsAttention(d Delivery) string {
	switch d.State {
	case "failed", "partially failed":
		return d.State
	case "queued", "running":
		for _, f := range d.Files {
			if f.Error != "" {
				return "retrying"
			}
		}
	}
	return ""
}

// absURL is the absolute address of path on this server, as people reach
// it: --public-url when set, else the scheme and host the client used
// (behind a trusted proxy, what it forwarded).
func (s *Server) absURL(r *http.Request, path string) string {
	if s.opt.PublicURL != "" {
		return strings.TrimSuffix(s.opt.PublicURL, "/") + path
	}
	o := requestOrigin(r)
	return o.scheme + "://" + o.host + path
}

// fmtTime shows a time (or a *time.Time, nil: "") in the console, in UTC
// to the minute.
func fmtTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
