package web

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// The admin console: server-rendered pages for a signed-in browser, each a
// client of the same Store calls the JSON API makes (no second code path for
// one action). Pages work as plain forms; a little script (the console
// bundle from web/, with the page's CSP nonce) adds copy buttons and live
// updates. A console page never answers JSON: a visitor who is not signed in
// is sent to the sign-in page, and every error is an HTML page or an inline
// message in the form.
//
// Layout (Gitea's shape): templates/console/<area>_<page>.html next to
// console_<area>.go; each template file defines "<area>/<page>" and wraps
// itself in {{template "console_head" .}} ... {{template "console_foot" .}}.

// consoleNav is the console's menu, in order.
var consoleNav = []struct{ Path, Label string }{
	{"/", "Dashboard"},
	{"/admin/packages", "Packages"},
	{"/admin/portals", "Portals"},
	{"/admin/connections", "Cloud Connect"},
	{"/admin/tokens", "API tokens"},
	{"/admin/users", "Admins"},
	{"/admin/outbox", "Outbox"},
	{"/admin/jobs/", "Jobs"},
}

// Page is what every console template gets: who is signed in, the CSRF
// token its forms carry, the script nonce, the title, the menu, and the
// page's own data.
type Page struct {
	User    User
	CSRF    string
	Nonce   string
	Title   string
	Active  string // the menu path this page belongs to
	Nav     []struct{ Path, Label string }
	Flash   string // a one-line confirmation ("Portal saved.")
	Error   string // an inline error for the page's form
	Data    any
	Version string // static asset version, for cache busting
}

// consolePage renders a console page with status. active is the menu path.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request, status int, name, title, active string, data any) error {
	p, err := s.newPage(r, title, active, data)
	if err != nil {
		return err
	}
	p.Flash = r.URL.Query().Get("flash")
	renderNonce(w, status, name, p, p.Nonce)
	return nil
}

// consoleForm re-renders a form page after a refusal, with the Store's
// message inline and the status of the refusal.
func (s *Server) consoleForm(w http.ResponseWriter, r *http.Request, err error, name, title, active string, data any) error {
	var ae *Error
	if !errors.As(mapStoreError(err), &ae) {
		return err // a real failure: the error page
	}
	p, perr := s.newPage(r, title, active, data)
	if perr != nil {
		return perr
	}
	p.Error = ae.Message
	renderNonce(w, ae.Status, name, p, p.Nonce)
	return nil
}

func (s *Server) newPage(r *http.Request, title, active string, data any) (*Page, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("making a script nonce: %w", err)
	}
	return &Page{
		User: currentUser(r), CSRF: pageCSRF(r), Nonce: base64.RawURLEncoding.EncodeToString(nonce),
		Title: title, Active: active, Nav: consoleNav, Data: data, Version: staticVersion,
	}, nil
}

// seeOther answers a successful form post: back to a page, with a flash.
func seeOther(w http.ResponseWriter, r *http.Request, path, flash string) error {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "flash=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

// consoleError answers a console request that failed: an HTML page with the
// status, a plain message and a way back; internals are logged, not shown.
func (s *Server) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if !errors.As(mapStoreError(err), &ae) {
		s.log.ErrorContext(r.Context(), "web: console page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errorf(http.StatusInternalServerError, "internal", "The server failed to show this page; the error has been logged.")
	}
	if ae.Status == http.StatusUnauthorized && safeMethod(r.Method) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	p, perr := s.newPage(r, http.StatusText(ae.Status), "", nil)
	if perr != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Error = ae.Message
	renderNonce(w, ae.Status, "console/error", p, p.Nonce)
}

// nav helpers for templates.
var consoleFuncs = template.FuncMap{
	"fmtTime": fmtTime,
	"navClass": func(active, path string) string {
		if active == path {
			return "active"
		}
		return ""
	},
}
