package iconik

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Error is an iconik API call that ended with a non-2xx status. It carries iconik's messages
// verbatim and never the token or request headers.
type Error struct {
	Status       int
	Method, Path string
	// Errors is iconik's {"errors": ["..."]} list; FieldErrors its {"errors": {"field": "..."}}
	// validation map (non-string values kept as their JSON text).
	Errors      []string
	FieldErrors map[string]string
	// Body is a short excerpt of a body that was not iconik's error shape (e.g. a proxy page).
	Body     string
	Attempts int
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "iconik: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	var msgs []string
	msgs = append(msgs, e.Errors...)
	keys := make([]string, 0, len(e.FieldErrors))
	for k := range e.FieldErrors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		msgs = append(msgs, k+": "+e.FieldErrors[k])
	}
	if len(msgs) == 0 && e.Body != "" {
		msgs = append(msgs, e.Body)
	}
	if len(msgs) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(msgs, "; "))
	}
	return b.String()
}

func newError(method, path string, status int, body []byte) *Error {
	e := &Error{Status: status, Method: method, Path: path}
	var env struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		var list []string
		var fields map[string]json.RawMessage
		if json.Unmarshal(env.Errors, &list) == nil {
			e.Errors = list
			return e
		}
		if json.Unmarshal(env.Errors, &fields) == nil {
			e.FieldErrors = make(map[string]string, len(fields))
			for k, v := range fields {
				var s string
				if json.Unmarshal(v, &s) != nil {
					s = string(v)
				}
				e.FieldErrors[k] = s
			}
			return e
		}
	}
	e.Body = excerpt(body, 200)
	return e
}

func excerpt(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsUnauthorized reports a 401: the App-ID or token is invalid.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsForbidden reports a 403: authenticated but not allowed (e.g. a missing role).
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsRateLimited reports a 429 that outlasted the retries.
func IsRateLimited(err error) bool { return StatusOf(err) == http.StatusTooManyRequests }

// IsBadRequest reports a 400 (iconik's validation errors are in FieldErrors).
func IsBadRequest(err error) bool { return StatusOf(err) == http.StatusBadRequest }
