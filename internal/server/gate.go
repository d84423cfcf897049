package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

// Metadata ingest stores with an admitted upload (no secrets: tus echoes it).
const (
	metaPackageID = "package_id"
	metaFileID    = "file_id"
)

// CompleteHook runs inside the transaction that records a file complete, so
// that work queued there (delivery jobs) commits or rolls back with it.
type CompleteHook func(ctx context.Context, tx db.Tx, pkg *db.Package, file *db.File) error

// gate is ferry's ingest.Gate: portal admission rules before any byte is
// stored, durable completion after the last byte.
type gate struct {
	db         db.Store
	log        *slog.Logger
	now        func() time.Time
	onComplete CompleteHook
}

var _ ingest.Gate = (*gate)(nil)

func reject(status int, code, format string, args ...any) error {
	return &ingest.Rejection{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func bearerOf(h http.Header) string {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// Admit authorises the upload with its package token and applies the
// portal's rules: active portal, uploading package, safe unique path,
// extension lists, file size, package size and file count.
func (g *gate) Admit(ctx context.Context, u ingest.Upload) (ingest.Admission, error) {
	tok := u.Metadata[ingest.MetaToken]
	if tok == "" && u.Header != nil {
		tok = bearerOf(u.Header)
	}
	if tok == "" {
		return ingest.Admission{}, reject(http.StatusUnauthorized, "unauthorized", "An upload token is required.")
	}
	pkg, err := g.db.PackageGetByUploadTokenHash(ctx, &db.PackageGetByUploadTokenHashParams{UploadTokenHash: tokenHash(tok)})
	if errors.Is(err, db.ErrNotFound) {
		return ingest.Admission{}, reject(http.StatusUnauthorized, "unauthorized", "The upload token is unknown; create the package again.")
	}
	if err != nil {
		return ingest.Admission{}, fmt.Errorf("admitting upload %s: looking up its package: %w", u.ID, err)
	}
	if pkg.State != db.PackageUploading {
		return ingest.Admission{}, reject(http.StatusConflict, "package_not_uploading", "The package is %s and accepts no more files.", pkg.State)
	}
	var limits db.Limits
	if pkg.PortalID != "" {
		portal, err := g.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: pkg.PortalID})
		if err != nil {
			return ingest.Admission{}, fmt.Errorf("admitting upload %s: loading portal %s: %w", u.ID, pkg.PortalID, err)
		}
		if !portal.Active {
			return ingest.Admission{}, reject(http.StatusForbidden, "portal_inactive", "This portal is not accepting uploads right now; contact its owner.")
		}
		limits = portal.Limits
	}
	adm := ingest.Admission{Metadata: map[string]string{metaPackageID: pkg.ID}}
	if u.IsPartial {
		// A partial is a byte range of a file named by its final upload;
		// only its size can be checked now.
		if limits.MaxFileSize > 0 && u.Size > limits.MaxFileSize {
			return ingest.Admission{}, tooBig("file", limits.MaxFileSize)
		}
		return adm, nil
	}
	p, err := pathsafe.Clean(u.Metadata["relativePath"], u.Metadata["filename"])
	if err != nil {
		code := string(pathsafe.CodeOf(err))
		if code == "" {
			code = "invalid_path"
		}
		return ingest.Admission{}, reject(http.StatusBadRequest, code, "%s", err.Error())
	}
	if err := checkExtension(p.Base(), limits); err != nil {
		return ingest.Admission{}, err
	}
	if u.Size < 0 && (limits.MaxFileSize > 0 || limits.MaxPackageSize > 0) {
		return ingest.Admission{}, reject(http.StatusBadRequest, "length_required", "This portal limits sizes: send Upload-Length with the upload.")
	}
	if limits.MaxFileSize > 0 && u.Size > limits.MaxFileSize {
		return ingest.Admission{}, tooBig("file", limits.MaxFileSize)
	}
	size := max(u.Size, 0)
	err = g.db.InTx(ctx, func(tx db.Tx) error {
		// AddUsage first: it locks the package row, so admissions to one
		// package serialise and the limits below see every earlier one.
		cur, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: pkg.ID, FilesDelta: 1, BytesDelta: size})
		if errors.Is(err, db.ErrPrecondition) {
			return reject(http.StatusConflict, "package_not_uploading", "The package accepts no more files.")
		}
		if err != nil {
			return err
		}
		ancestors := make([]string, 0, 4)
		for _, a := range p.Ancestors() {
			ancestors = append(ancestors, pathsafe.Key(a))
		}
		if clash, err := tx.FileFindPathConflict(ctx, &db.FileFindPathConflictParams{PackageID: pkg.ID, PathKey: p.Key(), AncestorKeys: ancestors}); err == nil {
			if clash.PathKey != p.Key() || clash.State == db.FileComplete {
				return reject(http.StatusConflict, "path_duplicate", "%q clashes with %q already in the package.", p.String(), clash.Path)
			}
			// The same path was started before and never completed (a
			// retry after a crash): the new upload replaces it.
			if _, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: pkg.ID, FilesDelta: -1, BytesDelta: -clash.Size}); err != nil {
				return err
			}
			if err := tx.FileDelete(ctx, &db.FileDeleteParams{ID: clash.ID}); err != nil {
				return err
			}
			cur.FileCount--
			cur.TotalSize -= clash.Size
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		if limits.MaxFileCount > 0 && cur.FileCount > limits.MaxFileCount {
			return reject(http.StatusRequestEntityTooLarge, "too_many_files", "This portal accepts at most %d files per package.", limits.MaxFileCount)
		}
		if limits.MaxPackageSize > 0 && cur.TotalSize > limits.MaxPackageSize {
			return tooBig("package", limits.MaxPackageSize)
		}
		f, err := tx.FileCreate(ctx, &db.FileCreateParams{PackageID: pkg.ID, Path: p.String(), PathKey: p.Key(), Size: size,
			SHA256: u.Metadata[ingest.MetaSHA256], UploadID: u.ID, CreatedAt: g.now()})
		if err != nil {
			return err
		}
		adm.Metadata[metaFileID] = f.ID
		return nil
	})
	if err != nil {
		var rej *ingest.Rejection
		if errors.As(err, &rej) {
			return ingest.Admission{}, rej
		}
		return ingest.Admission{}, fmt.Errorf("admitting upload %s to package %s: %w", u.ID, pkg.ID, err)
	}
	return adm, nil
}

func tooBig(what string, limit int64) error {
	return reject(http.StatusRequestEntityTooLarge, what+"_too_large", "This portal accepts at most %s per %s.", humanBytes(limit), what)
}

func humanBytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// checkExtension applies a portal's allowed and denied extension lists
// (lower case, without dot) to a file name.
func checkExtension(name string, l db.Limits) error {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	if slices.Contains(l.DeniedExtensions, ext) && ext != "" {
		return reject(http.StatusUnprocessableEntity, "extension_denied", "Files ending in .%s are not accepted by this portal.", ext)
	}
	if len(l.AllowedExtensions) > 0 && !slices.Contains(l.AllowedExtensions, ext) {
		return reject(http.StatusUnprocessableEntity, "extension_not_allowed", "This portal accepts only files ending in .%s.", strings.Join(l.AllowedExtensions, ", ."))
	}
	return nil
}

// Complete records a whole file durably; running it twice is harmless.
func (g *gate) Complete(ctx context.Context, u ingest.Upload, sum ingest.Checksums) error {
	return g.db.InTx(ctx, func(tx db.Tx) error {
		f, err := g.fileOf(ctx, tx, u)
		if err != nil {
			return err
		}
		if f.State == db.FileComplete {
			return nil
		}
		digest, verified := u.Metadata[ingest.MetaSHA256], false
		if sum.SHA256 != nil {
			digest, verified = hex.EncodeToString(sum.SHA256), true
		}
		if u.Size != f.Size {
			// Deferred length: the real size is known only now.
			if _, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: f.PackageID, BytesDelta: u.Size - f.Size}); err != nil && !errors.Is(err, db.ErrPrecondition) {
				return err
			}
		}
		done, err := tx.FileSetComplete(ctx, &db.FileSetCompleteParams{ID: f.ID, Size: u.Size, SHA256: digest, SHA256Verified: verified, CompletedAt: g.now()})
		if err != nil {
			return fmt.Errorf("recording file %s complete: %w", f.ID, err)
		}
		if g.onComplete != nil {
			pkg, err := tx.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: f.PackageID})
			if err != nil {
				return err
			}
			return g.onComplete(ctx, tx, pkg, done)
		}
		return nil
	})
}

// fileOf finds the file row of an upload: by the id admitted into its
// metadata, else by upload id.
func (g *gate) fileOf(ctx context.Context, q db.Queries, u ingest.Upload) (*db.File, error) {
	if id := u.Metadata[metaFileID]; id != "" {
		f, err := q.FileGetByID(ctx, &db.FileGetByIDParams{ID: id})
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, db.ErrNotFound) {
			return nil, fmt.Errorf("loading file %s of upload %s: %w", id, u.ID, err)
		}
	}
	f, err := q.FileGetByUploadID(ctx, &db.FileGetByUploadIDParams{UploadID: u.ID})
	if err != nil {
		return nil, fmt.Errorf("finding the file of upload %s: %w", u.ID, err)
	}
	return f, nil
}

// Failed records an integrity failure; a failed partial is only logged,
// since the sender may send that part again.
func (g *gate) Failed(ctx context.Context, u ingest.Upload, reason string) error {
	if u.IsPartial {
		g.log.Warn("partial upload failed its integrity check", "upload", u.ID, "package", u.Metadata[metaPackageID], "reason", reason)
		return nil
	}
	f, err := g.fileOf(ctx, g.db, u)
	if errors.Is(err, db.ErrNotFound) {
		return nil // deleted meanwhile: nothing to record
	}
	if err != nil {
		return err
	}
	if _, err := g.db.FileSetFailed(ctx, &db.FileSetFailedParams{ID: f.ID, Reason: reason}); err != nil && !errors.Is(err, db.ErrPrecondition) {
		return fmt.Errorf("recording file %s failed: %w", f.ID, err)
	}
	return nil
}
