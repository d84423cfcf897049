package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/portal"
)

// guardTermination wraps the tus handler so that tus termination (DELETE)
// keeps the package's file list true: a completely uploaded file cannot be
// terminated (its bytes are the package's), and a terminated unfinished
// upload gives its file row and its share of the limits back.
func (a *App) guardTermination(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if o := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && o != "" {
			method = strings.ToUpper(o)
		}
		id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/uploads/"), "/")
		if method != http.MethodDelete || id == "" {
			next.ServeHTTP(w, r)
			return
		}
		f, err := a.DB.FileGetByUploadID(r.Context(), &db.FileGetByUploadIDParams{UploadID: id})
		if err != nil {
			// A partial (no file row) or an unknown upload: tus decides.
			next.ServeHTTP(w, r)
			return
		}
		if f.State == db.FileComplete && a.ownsPackage(r, f.PackageID) {
			writeJSONError(w, http.StatusConflict, "file_complete", f.Path+" is completely uploaded and part of the package; it cannot be cancelled.")
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusNoContent {
			if _, err := a.Portal.CancelFile(r.Context(), portal.FileRef{FileID: f.ID, UploadID: id}); err != nil {
				a.log.Error("recording a terminated upload", "upload", id, "file", f.ID, "err", err)
			}
		}
	})
}

// ownsPackage reports whether the request's upload token opens packageID.
func (a *App) ownsPackage(r *http.Request, packageID string) bool {
	pkg, err := a.Portal.PackageByToken(r.Context(), bearerOf(r.Header))
	return err == nil && pkg.ID == packageID
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// statusRecorder notes the status a handler answered with. Unwrap lets
// http.ResponseController (tusd's read deadlines) reach the real writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// cancelVanishedUploads cancels the file rows of uploading packages whose
// unfinished upload is gone (the sweeper deleted it), so the package can be
// finalized without them or the file sent again. Only rows older than
// olderThan are considered: a row admitted a moment ago has no bytes yet.
func (a *App) cancelVanishedUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := a.now().Add(-olderThan)
	n := 0
	for offset := 0; offset < 100_000; offset += 100 {
		pkgs, err := a.DB.PackageList(ctx, &db.PackageListParams{State: db.PackageUploading, Limit: 100, Offset: offset})
		if err != nil {
			return n, fmt.Errorf("listing uploading packages: %w", err)
		}
		for _, p := range pkgs {
			files, err := a.DB.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: p.ID})
			if err != nil {
				return n, fmt.Errorf("listing files of package %s: %w", p.ID, err)
			}
			for _, f := range files {
				if f.State != db.FileUploading || f.UploadID == "" || f.CreatedAt.After(cutoff) {
					continue
				}
				blob, err := a.Ingest.Open(ctx, f.UploadID)
				if err == nil {
					blob.Close() // finished: the reconciler records it
					continue
				}
				if !errors.Is(err, ingest.ErrNotFound) {
					continue // unfinished and still there
				}
				if _, err := a.Portal.CancelFile(ctx, portal.FileRef{FileID: f.ID}); err != nil {
					return n, fmt.Errorf("cancelling file %s whose upload is gone: %w", f.ID, err)
				}
				n++
			}
		}
		if len(pkgs) < 100 {
			break
		}
	}
	return n, nil
}
