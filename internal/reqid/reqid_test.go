package reqid

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOnlySaneIncomingIDsAreKept(t *testing.T) {
	for _, c := range []struct {
		id   string
		keep bool
	}{
		{"abc-123", true},
		{"3f2a9c1e-0b7d-11ee-9e4b-0242ac120002", true},
		{"trace:1.2_3", true},
		{"", false},
		{strings.Repeat("a", 37), false},
		{"with space", false},
		{"quote\"", false},
		{"new\nline", false},
		{"é", false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if c.id != "" {
			req.Header.Set(Header, c.id)
		}
		var seen string
		Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = From(r.Context()) })).ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		if got != seen {
			t.Errorf("%q: header %q, context %q", c.id, got, seen)
		}
		if c.keep != (got == c.id) || !Sane(got) {
			t.Errorf("%q: answered %q (keep=%v)", c.id, got, c.keep)
		}
	}
}

func TestLogLinesWithTheRequestContextCarryItsIDOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil)))
	ctx := With(context.Background(), "r-1")
	log.InfoContext(ctx, "plain")
	log.With("requestId", "r-1").InfoContext(ctx, "tusd style")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, want := range []int{1, 1, 0} {
		if n := strings.Count(lines[i], "request_id=r-1"); n != want || strings.Contains(lines[i], "requestId") {
			t.Errorf("line %q: request_id=r-1 %d times, want %d", lines[i], n, want)
		}
	}
}
