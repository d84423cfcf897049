package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/metrics"
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
			a.terminatePartial(next, w, r, id)
			return
		}
		if f.State == db.FileComplete && a.ownsPackage(r, f.PackageID) {
			writeJSONError(w, http.StatusConflict, "file_complete", f.Path+" is completely uploaded and part of the package; it cannot be cancelled.")
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusNoContent {
			a.Metrics.UploadEnded(metrics.UploadCancelled)
			if _, err := a.Portal.CancelFile(r.Context(), portal.FileRef{FileID: f.ID, UploadID: id}); err != nil {
				a.log.ErrorContext(r.Context(), "recording a terminated upload", "upload", id, "file", f.ID, "err", err)
			}
		}
	})
}

// terminatePartial passes a termination of an upload without a file row to
// tus and, when it removed a partial upload, gives the partial's share of
// its package's size back (admission counted it). What the upload is comes
// from tus itself: a HEAD through the same handler, with the caller's own
// authorisation, answers its length, whether it is partial and the
// package_id stored at admission. A partial that belongs to a final upload
// cannot be terminated, so its bytes stay counted in that file.
func (a *App) terminatePartial(next http.Handler, w http.ResponseWriter, r *http.Request, id string) {
	head := r.Clone(r.Context())
	head.Method, head.Body, head.ContentLength = http.MethodHead, http.NoBody, 0
	head.Header.Del("X-HTTP-Method-Override")
	hw := &headRecorder{header: http.Header{}}
	next.ServeHTTP(hw, head)
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status != http.StatusNoContent || hw.status != http.StatusOK || hw.header.Get("Upload-Concat") != "partial" {
		return
	}
	size, err := strconv.ParseInt(hw.header.Get("Upload-Length"), 10, 64)
	if err != nil {
		return
	}
	pkgID := tusMetadata(hw.header.Get("Upload-Metadata"))[metaPackageID]
	if err := a.Portal.ReleasePartial(r.Context(), pkgID, size); err != nil {
		a.log.ErrorContext(r.Context(), "releasing a terminated partial's share of its package", "upload", id, "err", err)
	}
}

// headRecorder keeps the status and header of an internal HEAD request.
type headRecorder struct {
	header http.Header
	status int
}

func (h *headRecorder) Header() http.Header { return h.header }

func (h *headRecorder) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return len(b), nil
}

func (h *headRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

// tusMetadata parses an Upload-Metadata header ("key base64,key base64").
func tusMetadata(h string) map[string]string {
	out := map[string]string{}
	for pair := range strings.SplitSeq(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), " ")
		if b, err := base64.StdEncoding.DecodeString(v); err == nil && k != "" {
			out[k] = string(b)
		}
	}
	return out
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
