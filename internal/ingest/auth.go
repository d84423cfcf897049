package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
)

// authorize guards every request on an existing upload (PATCH, HEAD, DELETE, and POST with
// X-HTTP-Method-Override, which tusd turns into those). Creation is guarded by the pre-create hook.
//
// Decision: after creation the token travels only in "Authorization: Bearer <token>". tus sends
// metadata on creation only, so package_token cannot authorise a PATCH; tus-js-client and
// Uppy (@uppy/tus `headers` option) send the header on every request. The upload keeps the
// SHA-256 of its creation token, compared in constant time; the token itself is never stored.
func (i *Ingest) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if o := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && o != "" {
			method = strings.ToUpper(o)
		}
		id := strings.Trim(r.URL.Path, "/")
		if l := r.Header.Get("Upload-Length"); l != "" && (method == http.MethodPost || method == http.MethodPatch) {
			// tusd refuses a declared length past MaxSize too, but a deferred one (PATCH) only as
			// an invalid header: one answer for both, naming the limit.
			if n, err := strconv.ParseInt(l, 10, 64); err == nil && i.cfg.MaxSize > 0 && n > i.cfg.MaxSize {
				writeError(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, i.tooLargeMessage())
				return
			}
		}
		if method == http.MethodOptions || (method == http.MethodPost && id == "") {
			next.ServeHTTP(w, r)
			return
		}
		info, err := i.store.Info(id)
		if err != nil {
			next.ServeHTTP(w, r) // tusd answers unknown uploads with 404 itself
			return
		}
		tok := bearer(r.Header)
		if tok == "" {
			writeError(w, r, http.StatusUnauthorized, "unauthorized", "an Authorization: Bearer upload token is required")
			return
		}
		if !sameToken(info.Storage[concatstore.StorageKeyTokenHash], tok) {
			writeError(w, r, http.StatusForbidden, "forbidden", "this upload token does not own the upload")
			return
		}
		// An abandoned upload takes no more bytes and says why; its owner may still terminate it.
		if why, ok := i.store.Abandoned(id); ok && method != http.MethodDelete {
			writeError(w, r, http.StatusGone, why.Code, why.Message)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError writes the contract's JSON error body. tus clients read the status; ferry's
// clients also read the code.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// codeTooLarge is the contract code of a length past Config.MaxSize.
const codeTooLarge = "upload_too_large"

func (i *Ingest) tooLargeMessage() string {
	if i.cfg.MaxSize <= 0 { // no configured limit: only a sum past int64 gets here
		return "the upload is larger than this server can count"
	}
	return fmt.Sprintf("this server accepts uploads of at most %d bytes (Tus-Max-Size); send a larger file in parts of at most that size, or ask the operator to raise --max-upload-size", i.cfg.MaxSize)
}

// jsonErrors turns tusd's own plain-text errors ("ERR_MISMATCHED_OFFSET: mismatched offset")
// into the contract's JSON error body with the same status; errors ingest raises are JSON already.
func (i *Ingest) jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorWriter{ResponseWriter: w, tooLarge: i.tooLargeMessage()}
		next.ServeHTTP(ew, r)
		ew.flushError(r)
	})
}

// errorWriter buffers the body of a non-JSON error response. tusd reaches the connection through
// http.ResponseController (read deadlines), which needs Unwrap.
type errorWriter struct {
	http.ResponseWriter
	wrote   bool
	capture bool
	status  int
	buf     bytes.Buffer
	// tooLarge replaces tusd's message for a length past MaxSize (a final's sum).
	tooLarge string
}

func (e *errorWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *errorWriter) WriteHeader(status int) {
	if e.wrote {
		return
	}
	if status >= 100 && status < 200 {
		e.ResponseWriter.WriteHeader(status)
		return
	}
	e.wrote = true
	if status >= 400 && !strings.HasPrefix(e.Header().Get("Content-Type"), "application/json") {
		e.capture, e.status = true, status
		return
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *errorWriter) Write(p []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	if e.capture {
		if e.buf.Len() < 4096 {
			e.buf.Write(p)
		}
		return len(p), nil
	}
	return e.ResponseWriter.Write(p)
}

func (e *errorWriter) flushError(r *http.Request) {
	if !e.capture {
		return
	}
	text := strings.TrimSpace(e.buf.String())
	code, msg := "", text
	if c, m, ok := strings.Cut(text, ": "); ok && strings.HasPrefix(c, "ERR_") {
		code, msg = strings.ToLower(strings.TrimPrefix(c, "ERR_")), m
	}
	if code == "max_size_exceeded" {
		code, msg = codeTooLarge, e.tooLarge
	}
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.status), " ", "_"))
	}
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	e.Header().Del("Content-Length")
	writeError(e.ResponseWriter, r, e.status, code, msg)
}

// codeNoSpace is the contract code of a 507: the server has no room for the bytes right now.
const codeNoSpace = "insufficient_storage"

func noRoomMessage(size int64) string {
	return fmt.Sprintf("the server does not have room for %d more bytes right now; nothing was stored: try again later, or ask the operator to free space", size)
}
