package web

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/reqid"
)

// The admin UI proper comes later; these are minimal server-rendered pages.

//go:embed templates/*.html templates/console/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"size": humanSize}).Funcs(consoleFuncs).
	ParseFS(templateFS, "templates/*.html", "templates/console/*.html"))

// render writes a page. Scripts run only with the page's nonce (CSP), so
// markup that slipped into a page could not run script.
func render(w http.ResponseWriter, status int, name string, data any) {
	renderNonce(w, status, name, data, "")
}

func renderNonce(w http.ResponseWriter, status int, name string, data any, nonce string) {
	script := "'none'"
	if nonce != "" {
		script = "'nonce-" + nonce + "'"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer") // download and portal URLs carry tokens and slugs
	// Images may be data: and blob: URLs: Uppy draws its icons and file
	// previews that way. Styles come from this origin (the bundle's sheet)
	// or inline (the pages' own and Uppy's style attributes).
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src "+script+"; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		// No request here, but its id is already in the response header.
		slog.Error("web: rendering page", "page", name, "request_id", w.Header().Get(reqid.Header), "err", err)
	}
}

func (s *Server) portalPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.opt.Store.PortalGetBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		render(w, http.StatusNotFound, "message.html", map[string]any{"Title": "No such portal", "Message": "Check the address you were given."})
		return nil
	}
	if !p.Active {
		render(w, http.StatusForbidden, "message.html", map[string]any{"Title": p.Name, "Message": "This portal is not accepting uploads right now; contact its owner."})
		return nil
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("making a script nonce: %w", err)
	}
	n := base64.RawURLEncoding.EncodeToString(nonce) // no "+" or "/": the template would escape them
	renderNonce(w, http.StatusOK, "portal.html", map[string]any{"P": p, "Nonce": n, "Config": portalConfig(p), "V": staticVersion}, n)
	return nil
}

func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) error {
	st, err := s.resolveLink(r)
	if err != nil {
		render(w, http.StatusNotFound, "message.html", map[string]any{"Title": "No such download link", "Message": "Check the address you were given."})
		return nil
	}
	switch {
	case st.expired:
		render(w, http.StatusGone, "message.html", map[string]any{"Title": "Link expired", "Message": "This download link has expired; ask the sender for a new one."})
	case st.locked:
		render(w, http.StatusUnauthorized, "unlock.html", map[string]any{"Token": r.PathValue("token")})
	case st.spent:
		render(w, http.StatusGone, "message.html", map[string]any{"Title": "No downloads left", "Message": "This link has been used as often as allowed; ask the sender for a new one."})
	default:
		var files []File
		for _, f := range st.pkg.Files {
			if f.State == FileComplete {
				files = append(files, f)
			}
		}
		render(w, http.StatusOK, "link.html", map[string]any{"Token": r.PathValue("token"), "Package": st.pkg, "Files": files})
	}
	return nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return template.HTMLEscapeString(itoa(n) + " B")
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	whole := n / div
	tenth := (n % div) * 10 / div
	return itoa(whole) + "." + itoa(tenth) + " " + string("KMGTPE"[exp]) + "iB"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// portalConfig is what the portal page's script needs to know, rendered as
// JSON into the page (html/template escapes it for a script element).
func portalConfig(p Portal) map[string]any {
	var note []string
	if p.Limits.MaxFileSize > 0 {
		note = append(note, "files up to "+humanSize(p.Limits.MaxFileSize))
	}
	if p.Limits.MaxPackageSize > 0 {
		note = append(note, humanSize(p.Limits.MaxPackageSize)+" in all")
	}
	if p.Limits.MaxFileCount > 0 {
		note = append(note, "at most "+itoa(int64(p.Limits.MaxFileCount))+" files")
	}
	if len(p.Limits.AllowedExtensions) > 0 {
		note = append(note, "only "+strings.Join(p.Limits.AllowedExtensions, ", "))
	}
	n := ""
	if len(note) > 0 {
		n = "This portal accepts " + strings.Join(note, "; ") + "."
	}
	return map[string]any{"slug": p.Slug, "limits": p.Limits, "note": n}
}
