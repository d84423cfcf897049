package web

import (
	"mime"
	"path"
	"strings"
)

// contentDisposition builds a Content-Disposition header for a file name that
// may hold any Unicode; mime.FormatMediaType applies RFC 2231 encoding where
// needed. Only the base name is sent: the browser saves one file.
func contentDisposition(kind, name string) string {
	base := path.Base(name)
	if v := mime.FormatMediaType(kind, map[string]string{"filename": base}); v != "" {
		return v
	}
	// FormatMediaType refuses some names; fall back to an ASCII-only one.
	safe := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, base)
	return kind + `; filename="` + safe + `"`
}
