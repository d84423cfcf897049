package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"syscall"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
)

// StatusChecksumMismatch is tus's "460 Checksum Mismatch" convention.
const StatusChecksumMismatch = 460

// Metadata keys ingest itself reads.
const (
	MetaToken  = "package_token"
	MetaSHA256 = "sha256"
	// MetaSHA256Trailer ("1") announces at creation that the upload's SHA-256 follows its bytes
	// (HeaderChecksum), so an upload whose digest never arrives is not completed unverified.
	MetaSHA256Trailer = "sha256_trailer"
)

// HeaderChecksum carries an upload's SHA-256 declared after its bytes: "sha256 <base64>", as a
// trailer of the PATCH carrying the last byte, or as a header of a PATCH at the final offset.
const HeaderChecksum = "Upload-Checksum"

// apiError builds a tusd error whose response is the contract's JSON error body.
func apiError(status int, code, message string) handler.Error {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": message}})
	return handler.Error{
		ErrorCode: code,
		Message:   message,
		HTTPResponse: handler.HTTPResponse{
			StatusCode: status,
			Body:       string(body) + "\n",
			Header:     handler.HTTPHeader{"Content-Type": "application/json"},
		},
	}
}

// bearer returns the token of an "Authorization: Bearer X" header, or "".
func bearer(h http.Header) string {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// tokenHash is what an upload stores instead of its token: the token itself never touches disk.
func tokenHash(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// sameToken compares in constant time (over fixed-length digests, so lengths leak nothing).
func sameToken(storedHash, tok string) bool {
	return storedHash != "" && tok != "" &&
		subtle.ConstantTimeCompare([]byte(storedHash), []byte(tokenHash(tok))) == 1
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// preCreate authorises and admits an upload before tusd stores anything.
func (i *Ingest) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	var none handler.FileInfoChanges
	info := ev.Upload
	hdr := ev.HTTPRequest.Header
	tok, metaTok := bearer(hdr), info.MetaData[MetaToken]
	switch {
	case tok == "" && metaTok == "":
		return handler.HTTPResponse{}, none, apiError(http.StatusUnauthorized, "unauthorized",
			"an upload token is required (Authorization: Bearer header or package_token metadata)")
	case tok == "":
		tok = metaTok
	case metaTok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(metaTok)) != 1:
		return handler.HTTPResponse{}, none, apiError(http.StatusUnauthorized, "unauthorized",
			"the Authorization bearer token and the package_token metadata differ")
	}
	if v, ok := info.MetaData[MetaSHA256Trailer]; ok && v != "1" {
		return handler.HTTPResponse{}, none, apiError(http.StatusBadRequest, "invalid_metadata",
			"sha256_trailer metadata, when present, must be 1")
	}
	if s, ok := info.MetaData[MetaSHA256]; ok && !validSHA256(s) {
		return handler.HTTPResponse{}, none, apiError(http.StatusBadRequest, "invalid_sha256",
			"sha256 metadata must be 64 lowercase hexadecimal digits")
	}
	if info.IsFinal {
		size, err := i.checkPartials(info.PartialUploads, tok)
		if err != nil {
			return handler.HTTPResponse{}, none, err
		}
		// tusd summed the sizes without a check: the Gate counts what the final really holds.
		info.Size = size
	}

	id := concatstore.NewID()
	size := info.Size
	if info.SizeIsDeferred {
		size = -1
	}
	// Room is promised before the Gate counts the upload in its package, so a refusal leaves no
	// trace anywhere. A final takes no bytes (its partials hold them); a deferred length is
	// checked when it is declared.
	if !info.IsFinal && !info.SizeIsDeferred {
		if err := i.store.Claim(id, info.Size); err != nil {
			if errors.Is(err, concatstore.ErrNoRoom) {
				return handler.HTTPResponse{}, none, apiError(http.StatusInsufficientStorage, codeNoSpace, noRoomMessage(info.Size))
			}
			i.log.ErrorContext(ev.Context, "reading free space before an upload failed", "error", err)
			return handler.HTTPResponse{}, none, apiError(http.StatusInternalServerError, "internal",
				"the upload could not be admitted; try again later")
		}
	}
	admitted := false
	defer func() {
		if !admitted {
			i.store.Release(id)
		}
	}()
	u := Upload{
		ID: id, Size: size, Metadata: maps.Clone(info.MetaData),
		IsPartial: info.IsPartial, IsFinal: info.IsFinal, PartialIDs: info.PartialUploads, Header: hdr,
	}
	if u.Metadata == nil {
		u.Metadata = map[string]string{}
	}
	adm, err := i.gate.Admit(ev.Context, u)
	if err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			return handler.HTTPResponse{}, none, apiError(rej.Status, rej.Code, rej.Message)
		}
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			// The database's disk is full (its reserve gone too): wait it out, like a full store.
			i.log.WarnContext(ev.Context, "admitting upload failed: out of space", "upload", id, "error", err)
			return handler.HTTPResponse{}, none, apiError(http.StatusInsufficientStorage, codeNoSpace,
				"the server is out of storage space right now; nothing was stored: try again later")
		}
		i.log.ErrorContext(ev.Context, "admitting upload failed", "upload", id, "error", err)
		return handler.HTTPResponse{}, none, apiError(http.StatusInternalServerError, "internal",
			"the upload could not be admitted; try again later")
	}
	for _, old := range adm.Supersedes {
		why := adm.Superseded
		if why == nil {
			why = &Rejection{Status: http.StatusGone, Code: "upload_replaced", Message: "a newer upload of the same file replaced this one"}
		}
		if err := i.store.Abandon(old, concatstore.Abandonment{Code: why.Code, Message: why.Message}); err != nil {
			// Its completion is refused all the same (the Gate no longer knows it); only its
			// bytes may grow until then.
			i.log.ErrorContext(ev.Context, "abandoning a replaced upload", "upload", old, "by", id, "error", err)
		}
	}
	meta := maps.Clone(info.MetaData)
	if meta == nil {
		meta = handler.MetaData{}
	}
	delete(meta, MetaToken)
	maps.Copy(meta, adm.Metadata)
	admitted = true
	return handler.HTTPResponse{}, handler.FileInfoChanges{
		ID:       id,
		MetaData: meta,
		Storage:  map[string]string{concatstore.StorageKeyTokenHash: tokenHash(tok)},
	}, nil
}

// checkPartials refuses a final upload over partials that are not the sender's, not free, listed
// twice, or larger together than MaxSize, and returns the bytes the final will hold.
func (i *Ingest) checkPartials(ids []string, tok string) (int64, error) {
	seen := make(map[string]bool, len(ids))
	var size int64
	for _, id := range ids {
		if seen[id] {
			return 0, apiError(http.StatusBadRequest, "partial_repeated",
				fmt.Sprintf("partial upload %s is listed more than once in Upload-Concat; a final lists each partial exactly once", id))
		}
		seen[id] = true
		info, err := i.store.Info(id)
		if err != nil {
			if errors.Is(err, handler.ErrNotFound) {
				return 0, apiError(http.StatusNotFound, "partial_not_found", fmt.Sprintf("partial upload %s does not exist", id))
			}
			return 0, err
		}
		if !sameToken(info.Storage[concatstore.StorageKeyTokenHash], tok) {
			return 0, apiError(http.StatusForbidden, "forbidden", fmt.Sprintf("partial upload %s belongs to another upload token", id))
		}
		if !info.IsPartial {
			return 0, apiError(http.StatusBadRequest, "invalid_concat", fmt.Sprintf("upload %s is not a partial upload", id))
		}
		if info.MetaData[MetaSHA256Trailer] != "" {
			if v, err := i.store.VerifiedSHA256(id); err != nil || v == nil {
				return 0, apiError(http.StatusConflict, "partial_unverified", fmt.Sprintf(
					"partial upload %s is not verified yet: its bytes or the SHA-256 it announced (sha256_trailer) have not all arrived", id))
			}
		}
		if fid, err := i.store.FinalOf(id); err == nil && fid != "" {
			return 0, apiError(http.StatusConflict, "partial_in_use", fmt.Sprintf("partial upload %s already belongs to a final upload", id))
		}
		if size+info.Size < size || (i.cfg.MaxSize > 0 && size+info.Size > i.cfg.MaxSize) {
			return 0, apiError(http.StatusRequestEntityTooLarge, codeTooLarge, i.tooLargeMessage())
		}
		size += info.Size
	}
	return size, nil
}

// preFinish runs when an upload's last byte is stored, before the client hears about it.
func (i *Ingest) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	return handler.HTTPResponse{}, i.finish(ev.Context, ev.Upload, ev.HTTPRequest.Header)
}

func uploadOf(info handler.FileInfo, h http.Header) Upload {
	meta := maps.Clone(info.MetaData)
	if meta == nil {
		meta = map[string]string{}
	}
	return Upload{
		ID: info.ID, Size: info.Size, Metadata: meta, IsPartial: info.IsPartial, IsFinal: info.IsFinal,
		PartialIDs: info.PartialUploads, Header: h,
	}
}

// finish verifies a finished upload and records its completion with the Gate. It serves both the
// tusd hook and Reconcile; errors it returns are client responses.
func (i *Ingest) finish(ctx context.Context, info handler.FileInfo, h http.Header) error {
	u := uploadOf(info, h)
	if why, ok := i.store.Abandoned(info.ID); ok {
		// Replaced while its last bytes were arriving: it never becomes a file.
		return apiError(http.StatusGone, why.Code, why.Message)
	}
	var sums Checksums
	if !info.IsFinal {
		sum, err := i.store.SHA256(info.ID)
		if err != nil {
			i.log.ErrorContext(ctx, "hashing finished upload failed", "upload", info.ID, "error", err)
			return apiError(http.StatusInternalServerError, "internal", "the upload could not be verified; try again later")
		}
		if declared := info.MetaData[MetaSHA256]; declared != "" {
			want, _ := hex.DecodeString(declared)
			if !bytes.Equal(want, sum) {
				return i.fail(ctx, u, fmt.Sprintf("SHA-256 mismatch: the sender declared %s but the received %d bytes hash to %x", declared, info.Size, sum))
			}
		}
		if info.MetaData[MetaSHA256Trailer] != "" {
			want, err := i.trailerDigest(ctx, info)
			if err != nil {
				return err // the bytes stay: the sender may still declare the digest
			}
			if !bytes.Equal(want, sum) {
				return i.fail(ctx, u, fmt.Sprintf("SHA-256 mismatch: the sender declared %x but the received %d bytes hash to %x", want, info.Size, sum))
			}
		}
		if err := i.store.SetVerified(info.ID, sum); err != nil {
			i.log.WarnContext(ctx, "recording verified digest failed", "upload", info.ID, "error", err)
		}
		if info.IsPartial {
			return nil
		}
		sums.SHA256 = sum
	}
	if err := i.gate.Complete(ctx, u, sums); err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			// Final: never completed, never retried; the sweeper takes the bytes.
			if err := i.store.Abandon(info.ID, concatstore.Abandonment{Code: rej.Code, Message: rej.Message}); err != nil {
				i.log.ErrorContext(ctx, "abandoning an upload whose completion was refused", "upload", info.ID, "error", err)
			}
			return apiError(rej.Status, rej.Code, rej.Message)
		}
		i.log.ErrorContext(ctx, "recording upload completion failed; Reconcile will retry", "upload", info.ID, "error", err)
		return apiError(http.StatusInternalServerError, "completion_failed",
			"the upload arrived but its completion could not be recorded; the server will retry")
	}
	if err := i.store.Acknowledge(info.ID); err != nil {
		// Complete is idempotent, so the worst case is a second Complete from Reconcile.
		i.log.WarnContext(ctx, "noting acknowledged completion failed", "upload", info.ID, "error", err)
	}
	i.log.InfoContext(ctx, "upload complete", "upload", info.ID, "size", info.Size, "final", info.IsFinal)
	return nil
}

// fail reports an integrity failure, drops the bad bytes and answers 460 checksum_mismatch.
func (i *Ingest) fail(ctx context.Context, u Upload, reason string) error {
	i.log.WarnContext(ctx, "upload failed its integrity check", "upload", u.ID, "partial", u.IsPartial, "reason", reason)
	if err := i.gate.Failed(ctx, u, reason); err != nil && !u.IsPartial {
		// Keep the bytes: Reconcile finds the upload finished and unacknowledged, and retries.
		i.log.ErrorContext(ctx, "recording integrity failure failed; Reconcile will retry", "upload", u.ID, "error", err)
		return apiError(StatusChecksumMismatch, "checksum_mismatch", reason)
	}
	if err := i.store.Remove(u.ID); err != nil {
		i.log.ErrorContext(ctx, "removing upload that failed its integrity check", "upload", u.ID, "error", err)
	}
	return apiError(StatusChecksumMismatch, "checksum_mismatch", reason)
}
