package tus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send/tus"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	xslog "golang.org/x/exp/slog"
)

// stockTusd serves a real tusd (filestore) at /files/.
func stockTusd(t *testing.T) (endpoint, dir string) {
	t.Helper()
	return stockTusdBehind(t, func(h http.Handler) http.Handler { return h })
}

// stockTusdBehind is stockTusd with the server's handler wrapped by front.
func stockTusdBehind(t *testing.T, front func(http.Handler) http.Handler) (endpoint, dir string) {
	t.Helper()
	dir = t.TempDir()
	comp := handler.NewStoreComposer()
	filestore.New(dir).UseIn(comp)
	memorylocker.New().UseIn(comp)
	h, err := handler.NewHandler(handler.Config{StoreComposer: comp, BasePath: "/files/", Logger: xslog.New(xslog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", h))
	srv := httptest.NewServer(front(mux))
	t.Cleanup(srv.Close)
	return srv.URL + "/files/", dir
}

func TestUploadConcatenateAndTerminateAgainstStockTusd(t *testing.T) {
	for _, zeroCopy := range []bool{false, true} {
		t.Run(map[bool]string{false: "read body", true: "sendfile body"}[zeroCopy], func(t *testing.T) {
			endpoint, dir := stockTusd(t)
			c := &tus.Client{HTTP: &http.Client{Transport: tus.NewTransport(2)}, ZeroCopy: zeroCopy}
			ctx := context.Background()
			data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes
			f := sourceFile(t, data)
			half := int64(len(data) / 2)
			var parts []string
			for _, r := range [][2]int64{{0, half}, {half, int64(len(data)) - half}} {
				u, err := c.Create(ctx, endpoint, r[1], tus.CreateOpts{Partial: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Upload(ctx, u, f, r[0], r[1], -1, nil); err != nil {
					t.Fatal(err)
				}
				parts = append(parts, u)
			}
			final, err := c.Concat(ctx, endpoint, parts, tus.Metadata{"filename": "x"})
			if err != nil {
				t.Fatal(err)
			}
			off, length, err := c.Offset(ctx, final)
			if err != nil || off != int64(len(data)) || length != int64(len(data)) {
				t.Fatalf("final offset %d length %d err %v, want %d", off, length, err, len(data))
			}
			got, err := os.ReadFile(filepath.Join(dir, final[strings.LastIndex(final, "/")+1:]))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("final upload bytes differ (err %v)", err)
			}
			if err := c.Terminate(ctx, final); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Offset(ctx, final); !errors.Is(err, tus.ErrNotFound) {
				t.Errorf("offset after termination: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRefusalsCarryTheServersCodeAndMessage(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		wantCode, wantMessage   string
		retryable               bool
	}{
		{"contract JSON", "application/json", `{"error":{"code":"too_large","message":"The file is larger than 1 GiB."}}`, 413, "too_large", "The file is larger than 1 GiB.", false},
		{"tusd plain text", "text/plain", "ERR_UPLOAD_NOT_FOUND: upload not found\n", 400, "ERR_UPLOAD_NOT_FOUND", "upload not found", false},
		{"bare server error", "text/plain", "boom", 502, "", "boom", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.contentType)
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			cl := &tus.Client{HTTP: srv.Client(), MaxRetries: 1, Backoff: func(int) time.Duration { return 0 }}
			_, err := cl.Create(context.Background(), srv.URL, 10, tus.CreateOpts{})
			var te *tus.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tus.Error", err)
			}
			if te.Status != c.status || te.Code != c.wantCode || te.Message != c.wantMessage || te.Retryable() != c.retryable {
				t.Errorf("got status %d code %q message %q retryable %v", te.Status, te.Code, te.Message, te.Retryable())
			}
		})
	}
}

// sourceFile returns data in a file of its own, open for reading until the test ends.
func sourceFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
