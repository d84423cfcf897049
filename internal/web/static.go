package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The browser bundle (Uppy for the portal page) is built from web/ by
// scripts/web with esbuild and committed under static/, so go build needs
// no npm. Files are served with a content hash in their query string and
// cached for a year: a new build changes the URL, never a cached copy.

//go:embed static
var staticFS embed.FS

// staticVersion is a short hash of every embedded asset: the cache key in
// asset URLs (/static/portal.js?v=...).
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

func (s *Server) staticFile(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	if strings.Contains(name, "/") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".sha256") {
		return notFound("file")
	}
	b, err := staticFS.ReadFile(path.Join("static", name))
	if err != nil {
		return notFound("file")
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == staticVersion {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, err = w.Write(b)
	return err
}
