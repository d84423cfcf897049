package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Header is the request and response header the id travels in.
const Header = "X-Request-Id"

// maxLen bounds an incoming id: tusd keeps 36 characters of it (a UUID) in its own log lines,
// so a longer one would show differently in two places.
const maxLen = 36

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New generates an id: 16 random bytes in hex (32 characters).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Sane reports whether an incoming id may be kept: 1 to 36 characters of letters, digits,
// '-', '_', '.' and ':'. Anything else (spaces, quotes, control characters that would forge
// log lines, or a megabyte of text) is replaced by a generated id.
func Sane(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Middleware gives each request its id: in the context, in the response header, and in the
// request header too, where tusd reads it for its own log lines.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !Sane(id) {
			id = New()
		}
		r = r.WithContext(With(r.Context(), id))
		r.Header.Set(Header, id)
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r)
	})
}

// LogHandler wraps h so that every record logged with a context carrying an id gets a
// request_id attribute. tusd names the same id requestId in its own lines (it reads the
// request header Middleware sets): that attribute is renamed, so one name finds every line.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h: h} }

type logHandler struct {
	h   slog.Handler
	has bool // an attribute added with WithAttrs already names the request
}

func (l logHandler) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l logHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := From(ctx); id != "" && !l.has {
		rec = rec.Clone()
		rec.AddAttrs(slog.String(attrKey, id))
	}
	return l.h.Handle(ctx, rec)
}

// attrKey is the log attribute of the id.
const attrKey = "request_id"

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	has := l.has
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		if a.Key == "requestId" {
			a.Key = attrKey
		}
		has = has || a.Key == attrKey && a.Value.String() != ""
		out[i] = a
	}
	return logHandler{h: l.h.WithAttrs(out), has: has}
}

func (l logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h: l.h.WithGroup(name), has: l.has}
}
