package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
)

// A sender that hashes while it sends knows an upload's SHA-256 only once its last byte is out.
// It announces that at creation (metadata sha256_trailer) and declares the digest in an
// Upload-Checksum trailer of the PATCH carrying the last byte ("sha256 <base64>", covering the
// whole upload, not only that request's bytes; the trailer must be named in a Trailer header, as
// HTTP/1.1 clients do). Proxies may drop trailers, so an announced upload whose digest did not
// arrive is left finished but not complete (400 checksum_missing); the sender then declares it in
// an Upload-Checksum header of an empty PATCH at the final offset, which is also how a sender
// whose answer was lost learns that the upload is verified.

// requestKey carries the PATCH's *http.Request to the finish hook: tusd's HookEvent has the
// header but not the trailer, which net/http fills in only once the body is read.
type requestKey struct{}

// keepRequest makes the request reachable from tusd's hooks and answers declarations made after
// the bytes (an empty PATCH with Upload-Checksum at the final offset), which tusd would answer
// 204 without a hook.
func (i *Ingest) keepRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch && r.Method != http.MethodPost { // POST: creation with upload
			next.ServeHTTP(w, r)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, r))
		if r.Method == http.MethodPatch && r.Header.Get(HeaderChecksum) != "" && r.ContentLength == 0 && i.declareLate(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// declareLate verifies a finished upload against a digest declared after its bytes. It returns
// false (tusd answers) when the request is not that.
func (i *Ingest) declareLate(w http.ResponseWriter, r *http.Request) bool {
	id := strings.Trim(r.URL.Path, "/")
	info, err := i.store.Info(id)
	if err != nil || !concatstore.Finished(info) || info.IsFinal || r.Header.Get("Upload-Offset") != strconv.FormatInt(info.Size, 10) {
		return false
	}
	unlock, err := i.lock(r.Context(), id)
	if err != nil {
		writeError(w, r, http.StatusLocked, "upload_busy", "another request holds this upload; try again")
		return true
	}
	defer unlock()
	if info, err = i.store.Info(id); err != nil {
		return false
	}
	if err := i.declaredAgain(r.Context(), info); err != nil {
		writeHandlerError(w, r, err)
		return true
	}
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// declaredAgain settles a late declaration: an upload verified before is compared with what it
// was verified against (a retried declaration whose answer was lost); any other goes through
// finish as if the digest had come with the last byte.
func (i *Ingest) declaredAgain(ctx context.Context, info handler.FileInfo) error {
	prev, err := i.store.VerifiedSHA256(info.ID)
	if err != nil {
		return err
	}
	if prev == nil || (!info.IsPartial && !i.store.Acknowledged(info.ID)) {
		return i.finish(ctx, info, nil)
	}
	got, present, err := declaredChecksum(ctx)
	if err != nil || !present {
		return err
	}
	if !bytes.Equal(got, prev) {
		return apiError(StatusChecksumMismatch, "checksum_mismatch",
			fmt.Sprintf("SHA-256 mismatch: the upload was verified as %x, the sender now declares %x", prev, got))
	}
	return nil
}

// declaredChecksum reads the Upload-Checksum of the request in ctx: its trailer, else its header.
func declaredChecksum(ctx context.Context) (sum []byte, present bool, err error) {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	if r == nil {
		return nil, false, nil
	}
	v := r.Trailer.Get(HeaderChecksum)
	if v == "" {
		v = r.Header.Get(HeaderChecksum)
	}
	if v == "" {
		return nil, false, nil
	}
	algo, b64, _ := strings.Cut(strings.TrimSpace(v), " ")
	sum, err = base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if !strings.EqualFold(algo, "sha256") || err != nil || len(sum) != 32 {
		return nil, true, apiError(http.StatusBadRequest, "invalid_checksum",
			"Upload-Checksum must be \"sha256 \" followed by the base64 of the 32-byte SHA-256 of the whole upload")
	}
	return sum, true, nil
}

// trailerDigest is the digest a finished upload that announced sha256_trailer must match: the
// one its request declared or, with none (Reconcile, a retried completion), the one it was
// verified against before. Without either it cannot complete: checksum_missing.
func (i *Ingest) trailerDigest(ctx context.Context, info handler.FileInfo) ([]byte, error) {
	sum, present, err := declaredChecksum(ctx)
	if err != nil {
		return nil, err
	}
	if present {
		return sum, nil
	}
	if prev, err := i.store.VerifiedSHA256(info.ID); err != nil || prev != nil {
		return prev, err
	}
	return nil, apiError(http.StatusBadRequest, "checksum_missing",
		"this upload announced its SHA-256 (sha256_trailer) but its last request carried no Upload-Checksum trailer "+
			"(a proxy may drop trailers); every byte is stored: declare the digest with an empty PATCH at Upload-Offset "+
			strconv.FormatInt(info.Size, 10)+" carrying the header Upload-Checksum: sha256 <base64>")
}

// awaitsDigest reports whether a finished upload announced its SHA-256 and never got it
// verified: it is not a file, and once idle long enough, Cleanup takes it like an unfinished one.
func (i *Ingest) awaitsDigest(info handler.FileInfo) bool {
	if info.IsFinal || info.MetaData[MetaSHA256Trailer] == "" {
		return false
	}
	v, err := i.store.VerifiedSHA256(info.ID)
	return err == nil && v == nil
}

// writeHandlerError answers with a tusd error's response (ingest's own carry the JSON body).
func writeHandlerError(w http.ResponseWriter, r *http.Request, err error) {
	var he handler.Error
	if !errors.As(err, &he) {
		writeError(w, r, http.StatusInternalServerError, "internal", "the upload could not be verified; try again later")
		return
	}
	for k, v := range he.HTTPResponse.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(he.HTTPResponse.StatusCode)
	_, _ = w.Write([]byte(he.HTTPResponse.Body))
}
