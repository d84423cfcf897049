package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/reqid"
)

// Options configure the HTTP surface.
type Options struct {
	Store   Store
	Blobs   Blobs
	Uploads http.Handler // tus handler mounted at /uploads/ (nil: uploads answer 503)
	Logger  *slog.Logger
	// SecureCookies marks cookies Secure (behind HTTPS).
	SecureCookies bool
	SessionTTL    time.Duration
	Now           func() time.Time
	// Secret keys the MACs of unlock cookies; nil picks a random one (cookies
	// then do not survive a restart).
	Secret []byte
	// Connections serves /api/v1/connections (nil: those routes answer 503).
	Connections Connections
	// Notifications serves what was sent, the outbox and test messages
	// (nil: those routes answer 503).
	Notifications Notifications
	// Ready runs the readiness checks behind /readyz (nil: always ready).
	Ready func(ctx context.Context) ReadyReport
	// PublicURL is the base URL people reach the server at (--public-url),
	// for the absolute links the console shows; empty: the request's host.
	PublicURL string
	// Metrics serves /metrics in the Prometheus text format (nil: /metrics answers 404).
	Metrics http.Handler
	// TrustedProxies are the reverse proxies (--trusted-proxies) whose
	// forwarded headers are believed; empty: nobody's.
	TrustedProxies []netip.Prefix
}

// Access says who may call a route.
type Access int

const (
	// Public routes need nothing (portal pages, download links, OpenAPI document).
	Public Access = iota
	// Admin routes need a session cookie (plus CSRF token when state-changing) or an API token.
	Admin
	// Uploader routes need the package's upload token (Authorization: Bearer).
	Uploader
	// Console routes are admin pages for a signed-in browser: the same
	// credentials as Admin, but a visitor who is not signed in is sent to the
	// sign-in page and every error is an HTML page, never JSON.
	Console
)

func (a Access) String() string {
	return [...]string{"public", "admin", "uploader", "console"}[a]
}

// Route is one entry of the route table: the auth test iterates it, so a new
// admin route cannot be added without being checked for anonymous access.
type Route struct {
	Method, Pattern string
	Access          Access
	Summary         string
	handle          func(w http.ResponseWriter, r *http.Request) error
}

// Server is ferry's HTTP handler.
type Server struct {
	opt         Options
	log         *slog.Logger
	mux         *http.ServeMux
	routes      []Route
	passLimit   *keyedLimiter
	originGuard *http.CrossOriginProtection
	now         func() time.Time
	secret      []byte
	// draining is closed when the server shuts down: streams that live as long as a page
	// (server-sent events) end then, instead of holding the shutdown to its deadline.
	draining  chan struct{}
	drainOnce sync.Once
	uploads   http.Handler // the tus handler (batch.go sends it requests in-process)
}

// Drain ends the live streams (their browsers reconnect, to another replica or after the
// restart) so that a graceful shutdown waits only for real work. Call it when shutting down.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// New builds the handler and its route table.
func New(opt Options) (*Server, error) {
	if opt.Store == nil || opt.Blobs == nil {
		return nil, errors.New("web: Options.Store and Options.Blobs are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 7 * 24 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{
		opt: opt, log: opt.Logger, mux: http.NewServeMux(), now: opt.Now,
		// Password guesses: a burst of 5, then one every 6 s per key.
		passLimit:   newKeyedLimiter(6*time.Second, 5),
		originGuard: http.NewCrossOriginProtection(),
		draining:    make(chan struct{}),
	}
	s.secret = opt.Secret
	if len(s.secret) == 0 {
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return nil, fmt.Errorf("web: generating a secret: %w", err)
		}
	}
	s.routes = s.routeTable()
	allowed := map[string][]string{}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
		if rt.Method == http.MethodGet {
			allowed[rt.Pattern] = append(allowed[rt.Pattern], http.MethodHead)
		}
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	// ServeMux answers a wrong method in plain text; answer in JSON instead.
	// The fallbacks name each method (not "any method"), so a literal path
	// such as /api/v1/connections/verify can sit beside /api/v1/connections/{id}
	// without the two patterns conflicting.
	for pattern, methods := range allowed {
		allow := strings.Join(methods, ", ")
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
			if slices.Contains(methods, m) {
				continue
			}
			s.mux.HandleFunc(m+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", allow)
				writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed here; use %s.", r.Method, allow))
			})
		}
	}
	uploads := opt.Uploads
	if uploads == nil {
		uploads = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, errorf(http.StatusServiceUnavailable, "uploads_unavailable", "Uploads are not enabled on this server."))
		})
	}
	s.uploads = uploads
	s.mux.Handle("/uploads/", uploads)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusNotFound, "not_found", "Nothing is served at %s %s.", r.Method, r.URL.Path))
	})
	return s, nil
}

// Handler returns the whole HTTP surface, every request with its id (reqid),
// behind the forwarded-headers rule (forwarded.go).
func (s *Server) Handler() http.Handler { return reqid.Middleware(s.forwarded(s.mux)) }

// Routes lists the route table (for tests and documentation).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

type ctxKey int

const (
	userKey ctxKey = iota
	packageKey
	originKey
)

// wrap applies the route's access rule, then its handler, turning returned
// errors into the contract's JSON error body.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch rt.Access {
		case Admin:
			u, err := s.authAdmin(w, r, rt.Pattern == jobsUIPath)
			if err != nil {
				writeError(w, r, err)
				return
			}
			ctx = context.WithValue(ctx, userKey, u)
		case Console:
			u, err := s.authAdmin(w, r, false)
			if err != nil {
				s.consoleError(w, r, err)
				return
			}
			ctx = context.WithValue(ctx, userKey, u)
		case Uploader:
			pkgID, err := s.authUploader(r)
			if err != nil {
				writeError(w, r, err)
				return
			}
			ctx = context.WithValue(ctx, packageKey, pkgID)
		}
		defer func() {
			// A bug in one handler answers 500 in the contract's shape and is
			// logged with its stack, instead of a dropped connection.
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "web: handler panicked", "method", r.Method, "route", rt.Pattern, "client", clientKey(r), "panic", v, "stack", string(debug.Stack()))
				writeError(w, r, errors.New("panic"))
			}
		}()
		if err := rt.handle(w, r.WithContext(ctx)); err != nil {
			if rt.Access == Console {
				s.consoleError(w, r.WithContext(ctx), err)
				return
			}
			writeError(w, r, mapStoreError(err))
		}
	})
}

// mapStoreError turns the Store's sentinel errors into API errors.
func mapStoreError(err error) error {
	var ae *Error
	var ie *InvalidError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ie):
		return errorf(http.StatusUnprocessableEntity, "invalid_"+ie.Field, "%s", ie.Message)
	case errors.Is(err, ErrNotFound):
		return notFound("resource")
	case errors.Is(err, ErrConflict):
		return errorf(http.StatusConflict, "conflict", "%s", conflictMessage(err))
	case errors.Is(err, ErrUnauthorized):
		return errorf(http.StatusUnauthorized, "unauthorized", "Authentication is required.")
	case errors.Is(err, ErrLimitReached):
		return errorf(http.StatusGone, "download_limit_reached", "This link has no downloads left.")
	}
	return err
}

// conflictMessage keeps the Store's explanation of a conflict (it names the
// taken value or the blocking state) without its Go error chain prefix.
func conflictMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+ErrConflict.Error()); i > 0 {
		msg = msg[:i]
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

const (
	sessionCookie = "ferry_session"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf_token"
)

// bearer returns the token of an `Authorization: Bearer` header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

var errAuthRequired = errorf(http.StatusUnauthorized, "unauthorized",
	"Sign in, or send Authorization: Bearer <api token>.")

// jobsUIPath is where River UI is mounted. Its browser app sends its actions
// with fetch and knows nothing of ferry's CSRF token.
const jobsUIPath = "/admin/jobs/"

// authAdmin accepts an API token (CLI, scripts) or a session cookie
// (browser). A browser's state-changing request must also pass Go's
// cross-origin check and carry the session's CSRF token, unless originOnly:
// then the cross-origin check alone guards it. That is enough for River UI:
// browsers mark every request with Sec-Fetch-Site (or Origin), so another
// site's form or fetch is refused, and a request without either header comes
// from no browser, so it cannot ride on a visitor's cookie.
func (s *Server) authAdmin(w http.ResponseWriter, r *http.Request, originOnly bool) (User, error) {
	if tok, ok := bearer(r); ok {
		u, err := s.opt.Store.UserByAPIToken(r.Context(), tok)
		if err != nil {
			return User{}, authFailure(err)
		}
		return u, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return User{}, errAuthRequired
	}
	u, err := s.opt.Store.UserBySession(r.Context(), c.Value)
	if err != nil {
		return User{}, authFailure(err)
	}
	if !safeMethod(r.Method) {
		if err := s.originGuard.Check(r); err != nil {
			return User{}, errorf(http.StatusForbidden, "cross_origin", "Cross-origin requests are refused.")
		}
		if originOnly {
			return u, nil
		}
		got := r.Header.Get(csrfHeader)
		if got == "" {
			got = r.PostFormValue(csrfField)
		}
		if !hmac.Equal([]byte(got), []byte(csrfToken(c.Value))) {
			return User{}, errorf(http.StatusForbidden, "csrf_token_invalid",
				"The form is missing its CSRF token or it is stale; reload the page and try again.")
		}
	}
	return u, nil
}

// authFailure keeps the Store's internal failures (500) apart from an
// unknown credential (401). A 401 the Store explains itself (an expired or
// revoked API token) keeps its code, so a script knows to get a new token.
func authFailure(err error) error {
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return ae
	}
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
		return errorf(http.StatusUnauthorized, "unauthorized", "The credentials are unknown, expired or revoked.")
	}
	return err
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfToken derives a session's CSRF token. The session token has 256 bits of
// entropy and never leaves its HttpOnly cookie, so a keyed hash of it is
// unforgeable by another origin and needs no storage.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte("ferry csrf v1"))
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// authUploader resolves the upload token to its package and checks it is the
// package named in the path.
func (s *Server) authUploader(r *http.Request) (string, error) {
	tok, ok := bearer(r)
	if !ok {
		return "", errorf(http.StatusUnauthorized, "unauthorized", "Send Authorization: Bearer <upload token>.")
	}
	id, err := s.opt.Store.PackageIDByUploadToken(r.Context(), tok)
	if err != nil {
		return "", authFailure(err)
	}
	if want := r.PathValue("id"); want != "" && !hmac.Equal([]byte(id), []byte(want)) {
		return "", errorf(http.StatusForbidden, "wrong_package", "This upload token belongs to another package.")
	}
	return id, nil
}

func currentUser(r *http.Request) User {
	u, _ := r.Context().Value(userKey).(User)
	return u
}
