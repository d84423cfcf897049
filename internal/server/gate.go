package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/metrics"
	"github.com/ferryhq/ferry/internal/pathsafe"
	"github.com/ferryhq/ferry/internal/portal"
)

// Metadata ingest stores with an admitted upload (no secrets: tus echoes it).
const (
	metaPackageID = "package_id"
	metaFileID    = "file_id"
)

// gate is ferry's ingest.Gate: it hands tus's questions to the domain
// (portal.Service) and its refusals back as tus answers.
type gate struct {
	svc        *portal.Service
	log        *slog.Logger
	onComplete portal.CompleteHook
	metrics    *metrics.Metrics // uploads by outcome (nil: not counted)
}

var _ ingest.Gate = (*gate)(nil)

func bearerOf(h http.Header) string {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// rejection turns a domain refusal into the status, code and message the
// uploader sees; other errors stay errors (500, logged by ingest).
func rejection(err error) error {
	if pe := portal.AsError(err); pe != nil {
		return &ingest.Rejection{Status: pe.Status, Code: pe.Code, Message: pe.Message}
	}
	return err
}

// Admit runs before tus stores a byte: portal.Admit checks the token, the
// portal, the path (pathsafe), the limits and duplicates, and reserves the
// file row.
func (g *gate) Admit(ctx context.Context, u ingest.Upload) (ingest.Admission, error) {
	tok := u.Metadata[ingest.MetaToken]
	if tok == "" && u.Header != nil {
		tok = bearerOf(u.Header)
	}
	fileSize, err := fileSizeOf(u.Metadata)
	if err != nil {
		return ingest.Admission{}, err
	}
	adm, err := g.svc.Admit(ctx, portal.Upload{
		Token: tok, RelativePath: u.Metadata["relativePath"], Filename: u.Metadata["filename"], Size: u.Size,
		SHA256: u.Metadata[ingest.MetaSHA256], UploadID: u.ID, Partial: u.IsPartial, Final: u.IsFinal, FileSize: fileSize,
	})
	if err != nil {
		return ingest.Admission{}, rejection(err)
	}
	meta := map[string]string{metaPackageID: adm.Package.ID}
	if adm.File != nil {
		meta[metaFileID] = adm.File.ID
	}
	out := ingest.Admission{Metadata: meta}
	if r := adm.Replaced; r != nil && r.UploadID != "" && r.UploadID != u.ID {
		// The earlier upload of this path can never become the file: it is stopped now rather
		// than taking the rest of its bytes (which the package no longer counts) first.
		g.log.InfoContext(ctx, "an unfinished upload was replaced by a newer upload of the same path", "upload", r.UploadID,
			"by", u.ID, "package", adm.Package.ID, "path", r.Path)
		out.Supersedes = []string{r.UploadID}
		out.Superseded = &ingest.Rejection{Status: http.StatusGone, Code: "upload_replaced",
			Message: fmt.Sprintf("A newer upload of %s replaced this one in the package; this upload takes no more bytes and never completes.", r.Path)}
	}
	return out, nil
}

// pathOf is the path an upload's metadata names, for messages and logs ("" if none valid).
func pathOf(meta map[string]string) string {
	p, err := pathsafe.Clean(meta["relativePath"], meta["filename"])
	if err != nil {
		return ""
	}
	return p.String()
}

// metaFileSize is the tus metadata key of a partial upload that names the
// size of the whole file it is a part of (contract C).
const metaFileSize = "file_size"

// fileSizeOf reads file_size from tus metadata: -1 when absent, a 400
// refusal when it is not a byte count.
func fileSizeOf(meta map[string]string) (int64, error) {
	v, ok := meta[metaFileSize]
	if !ok || v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &ingest.Rejection{Status: http.StatusBadRequest, Code: "invalid_file_size",
			Message: "file_size metadata must be the whole file's size in bytes, a whole number."}
	}
	return n, nil
}

// Complete records a whole file durably (idempotent in portal.CompleteFile);
// the hook enqueues delivery in the same transaction.
// A refusal is final (ingest abandons the upload, and its bytes go with the
// next sweep): it is logged here, once, with the package and path.
func (g *gate) Complete(ctx context.Context, u ingest.Upload, sum ingest.Checksums) error {
	path := pathOf(u.Metadata)
	_, err := g.svc.CompleteFile(ctx, portal.Completion{
		FileRef: portal.FileRef{FileID: u.Metadata[metaFileID], UploadID: u.ID}, Size: u.Size, SHA256: sum.SHA256, Path: path,
	}, g.onComplete)
	if err != nil {
		if pe := portal.AsError(err); pe != nil {
			g.log.WarnContext(ctx, "upload cannot be completed: given up, its bytes left to the sweeper", "upload", u.ID,
				"package", u.Metadata[metaPackageID], "path", path, "code", pe.Code, "reason", pe.Message)
		}
		if portal.AsError(err) != nil {
			g.metrics.UploadEnded(metrics.UploadRefused)
		}
		return fmt.Errorf("recording upload %s complete: %w", u.ID, rejection(err))
	}
	g.metrics.UploadEnded(metrics.UploadCompleted)
	return nil
}

// Failed records an integrity failure; a failed partial is only logged,
// since the sender may send that part again.
func (g *gate) Failed(ctx context.Context, u ingest.Upload, reason string) error {
	g.metrics.UploadEnded(metrics.UploadFailed)
	if u.IsPartial {
		g.log.WarnContext(ctx, "partial upload failed its integrity check", "upload", u.ID, "package", u.Metadata[metaPackageID], "reason", reason)
		// Its bytes are deleted: give back its share of the package's size.
		if err := g.svc.ReleasePartial(ctx, u.Metadata[metaPackageID], u.Size); err != nil {
			g.log.ErrorContext(ctx, "releasing a failed partial's share of its package", "upload", u.ID, "err", err)
		}
		return nil
	}
	return g.svc.FailFile(ctx, portal.FileRef{FileID: u.Metadata[metaFileID], UploadID: u.ID}, reason)
}

// Removed gives a swept partial's share of its package's size back:
// admission counted it, and the sender may send that part again.
func (g *gate) Removed(ctx context.Context, u ingest.Upload) error {
	if !u.IsPartial {
		return nil
	}
	return g.svc.ReleasePartial(ctx, u.Metadata[metaPackageID], u.Size)
}
