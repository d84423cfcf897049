package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"syscall"

	"github.com/ferryhq/ferry/internal/reqid"
)

// maxJSONBody bounds a JSON request body: the API carries metadata, never bytes.
const maxJSONBody = 1 << 20

// Error is an error with the HTTP status and stable code the client sees; a
// Store returns it for any refusal the domain makes (its message is shown).
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorf builds an apiError; message is a human sentence the caller can act on.
func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// RequestID lets a caller's report be found in the server's log.
		RequestID string `json:"request_id,omitempty" doc:"The request's id (also in the X-Request-Id response header and in every server log line of the request): quote it when reporting a problem."`
	} `json:"error"`
}

// writeJSON writes v with status; an encoding failure is logged, since the
// status line is already gone.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Debug("web: writing JSON response", "err", err)
	}
}

// writeError answers with the contract's error body. Errors that are not an
// *Error become a 500 whose message hides the internals (they are logged).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if !errors.As(err, &ae) && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		// A full disk is an operating state the caller can wait out, not a
		// fault; the operator's log gets the details (paths included).
		slog.WarnContext(r.Context(), "web: out of storage space", "method", r.Method, "path", r.URL.Path, "client", clientKey(r), "err", err)
		ae = errorf(http.StatusInsufficientStorage, "insufficient_storage", "The server is out of storage space right now, so the request was not carried out; try again later.")
	}
	if ae == nil {
		slog.ErrorContext(r.Context(), "web: internal error", "method", r.Method, "path", r.URL.Path, "client", clientKey(r), "err", err)
		ae = errorf(http.StatusInternalServerError, "internal", "The server failed to handle the request; it has been logged.")
	}
	var body errorBody
	body.Error.Code = ae.Code
	body.Error.Message = ae.Message
	body.Error.RequestID = reqid.From(r.Context())
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	}
	writeJSON(w, ae.Status, body)
}

// errNotJSON refuses a body that does not say it is JSON. The check is not
// pedantry: a cross-site HTML form can post text/plain or form bodies without
// a CORS preflight, but never application/json, so insisting on the media
// type keeps every JSON endpoint out of reach of such forms.
func errNotJSON(got string) *Error {
	if got == "" {
		got = "no Content-Type"
	}
	return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"This endpoint takes a JSON body with Content-Type: application/json (got %s).", got)
}

// isJSONType reports whether a Content-Type header value names JSON
// (parameters such as charset=utf-8 are allowed).
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// decodeJSON reads a bounded JSON body into v, answering what is wrong with
// it; a body that is not declared as application/json is refused with 415.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !isJSONType(ct) {
		return errNotJSON(ct)
	}
	body := http.MaxBytesReader(nil, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "invalid_json", "The request body is empty; send a JSON object.")
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "The JSON body is larger than %d bytes.", maxJSONBody)
		case errors.As(err, &se):
			return errorf(http.StatusBadRequest, "invalid_json", "The body is not valid JSON (at byte %d).", se.Offset)
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "invalid_json", "Field %q must be a %s.", te.Field, te.Type.String())
		default:
			return errorf(http.StatusBadRequest, "invalid_json", "The body could not be read as JSON: %v.", err)
		}
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid_json", "The body must hold exactly one JSON object.")
	}
	return nil
}

// decodeOptionalJSON is decodeJSON for a body that may be left out: an
// empty body leaves v as it is.
func decodeOptionalJSON(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_json", "The body could not be read: %v.", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return decodeJSON(r, v)
}

// notFound is the one answer for anything that does not exist or that the
// caller may not know exists.
func notFound(what string) *Error {
	return errorf(http.StatusNotFound, "not_found", "No such %s.", what)
}
