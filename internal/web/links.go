package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
)

const (
	linkCookie         = "ferry_link"
	linkPasswordHeader = "X-Link-Password"
)

// linkState is a resolved download link and what the caller may do with it.
type linkState struct {
	link    Link
	pkg     Package
	served  map[string]int64 // bytes served per file id (limited links only)
	locked  bool             // a password is needed and was not given
	spent   bool             // every file has been served as often as the link allows
	expired bool
}

// The counting rule of a limited link (max_downloads = N) is on bytes, not
// requests: the link serves each file at most N times its size in total,
// whatever Range, If-Range or multipart shape the requests take, and a zip
// costs one whole size of every file in it. A charge is taken in the
// database, atomically, before any byte goes out (so concurrent requests
// cannot pass the limit together, and a restart forgets nothing); bytes that
// were charged but never read from the file (a client gone midway) are given
// back afterwards. A resume (curl -C -, a browser's Range with If-Range)
// costs only the bytes it asks for. The OpenAPI description of the download
// routes says the same for clients.

// linkBudget is the most a link may serve of a file of size bytes in total.
func linkBudget(maxDownloads int, size int64) int64 {
	if maxDownloads <= 0 {
		return math.MaxInt64
	}
	if size > 0 && int64(maxDownloads) > math.MaxInt64/size {
		return math.MaxInt64
	}
	return int64(maxDownloads) * size
}

func (st linkState) limited() bool { return st.link.MaxDownloads > 0 }

// left is how many bytes of f the link may still serve.
func (st linkState) left(f File) int64 {
	if !st.limited() {
		return math.MaxInt64
	}
	return max(0, linkBudget(st.link.MaxDownloads, f.Size)-st.served[f.ID])
}

func (st linkState) files() []File {
	var out []File
	for _, f := range st.pkg.Files {
		if f.State == FileComplete {
			out = append(out, f)
		}
	}
	return out
}

// resolveLink looks up {token}; an unknown token is a plain 404 so that
// tokens cannot be probed. The token has >= 128 bits of entropy and is
// looked up by its hash, compared in constant time by the Store.
func (s *Server) resolveLink(r *http.Request) (linkState, error) {
	tok := r.PathValue("token")
	l, err := s.opt.Store.LinkByToken(r.Context(), tok)
	if err != nil {
		return linkState{}, notFoundAs(err, "download link")
	}
	st := linkState{link: l}
	st.expired = l.ExpiresAt != nil && !s.now().Before(*l.ExpiresAt)
	if l.HasPassword {
		st.locked = !s.linkUnlocked(r, l)
	}
	if st.expired || st.locked {
		return st, nil
	}
	pkg, err := s.opt.Store.PackageGet(r.Context(), l.PackageID)
	if err != nil {
		return linkState{}, notFoundAs(err, "package")
	}
	st.pkg = pkg
	if pkg.State == StateExpired {
		// The package's retention ended: its bytes are gone.
		st.expired = true
	}
	if st.limited() {
		if st.served, err = s.opt.Store.LinkServed(r.Context(), l.ID); err != nil {
			return linkState{}, fmt.Errorf("reading what link %s has served: %w", l.ID, err)
		}
		// Spent when no file with bytes has any left (empty files cost nothing).
		st.spent = true
		for _, f := range st.files() {
			if f.Size > 0 && st.left(f) > 0 {
				st.spent = false
			}
		}
	}
	return st, nil
}

// refusal is the error for a link that may not serve bytes now.
func (st linkState) refusal() error {
	switch {
	case st.expired:
		return errorf(http.StatusGone, "link_expired", "This download link has expired; ask the sender for a new one.")
	case st.locked:
		return errorf(http.StatusUnauthorized, "password_required", "This download link needs its password (form on the link's page, or the X-Link-Password header).")
	case st.spent:
		return limitReached()
	}
	return nil
}

func limitReached() error {
	return errorf(http.StatusGone, "download_limit_reached", "This link has no downloads left; ask the sender for a new one.")
}

// notEnoughLeft refuses a request asking for more of a file than its link
// may still serve (a resume of what is left still fits).
func notEnoughLeft(f File, want, left int64) error {
	if left <= 0 {
		return errorf(http.StatusGone, "download_limit_reached", "This link has no downloads of %s left; ask the sender for a new one.", f.Path)
	}
	return errorf(http.StatusGone, "download_limit_reached",
		"This link may serve %d more bytes of %s, and this request asks for %d; ask the sender for a new link.", left, f.Path, want)
}

// linkUnlocked accepts the unlock cookie set by /d/{token}/unlock, or the
// password in a header (scripts); header guesses are rate-limited like forms.
func (s *Server) linkUnlocked(r *http.Request, l Link) bool {
	if c, err := r.Cookie(linkCookie); err == nil && hmac.Equal([]byte(c.Value), []byte(s.linkProof(l.ID))) {
		return true
	}
	if pw := r.Header.Get(linkPasswordHeader); pw != "" {
		err := s.checkPassword(r, "link:"+l.ID, func() (bool, error) {
			return s.opt.Store.LinkCheckPassword(r.Context(), r.PathValue("token"), pw)
		})
		return err == nil
	}
	return false
}

// linkProof is the unlock cookie's value: a MAC of the link id under the
// server's secret, so the cookie cannot be forged nor reused on another link.
func (s *Server) linkProof(linkID string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("link unlock v1\x00" + linkID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) linkUnlock(w http.ResponseWriter, r *http.Request) error {
	tok := r.PathValue("token")
	l, err := s.opt.Store.LinkByToken(r.Context(), tok)
	if err != nil {
		return notFoundAs(err, "download link")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	pw := r.PostFormValue("password")
	if err := s.checkPassword(r, "link:"+l.ID, func() (bool, error) {
		return s.opt.Store.LinkCheckPassword(r.Context(), r.PathValue("token"), pw)
	}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: linkCookie, Value: s.linkProof(l.ID), Path: "/d/" + tok, HttpOnly: true,
		Secure: s.opt.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/d/"+tok, http.StatusSeeOther)
	return nil
}

func (s *Server) linkFile(w http.ResponseWriter, r *http.Request) error {
	st, err := s.resolveLink(r)
	if err != nil {
		return err
	}
	if err := st.refusal(); err != nil {
		return err
	}
	var f *File
	for _, c := range st.files() {
		if c.ID == r.PathValue("file") {
			f = &c
		}
	}
	if f == nil {
		return notFound("file")
	}
	left := st.left(*f)
	if f.Size > 0 && left <= 0 {
		// Used up: refused whatever the request (HEAD, conditional, ranged).
		return notEnoughLeft(*f, 0, 0)
	}
	blob, err := s.opt.Blobs.Open(r.Context(), f.UploadID)
	if err != nil {
		return fmt.Errorf("opening file %s of package %s: %w", f.ID, st.pkg.ID, err)
	}
	defer blob.Close()
	plan := planBlob(r, st.pkg.CreatedAt, blob.Size(), f.SHA256)
	if plan.status == http.StatusRequestedRangeNotSatisfiable {
		// Answered here rather than by ServeContent: errors are JSON everywhere.
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", blob.Size()))
		return errorf(http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable",
			"The Range asks for none of the %d bytes of %s.", blob.Size(), f.Path)
	}
	if plan.bytes > left {
		// A HEAD is refused as its GET would be.
		return notEnoughLeft(*f, plan.bytes, left)
	}
	if r.Method == http.MethodHead || plan.bytes == 0 {
		// Nothing to charge; the meter still lets no byte through.
		serveBlob(w, r, f.Path, st.pkg.CreatedAt, &meteredReaderAt{ra: blob}, blob.Size(), f.SHA256)
		return nil
	}
	var charges []FileCharge
	if st.limited() {
		charges = []FileCharge{{FileID: f.ID, Bytes: plan.bytes, MaxBytes: linkBudget(st.link.MaxDownloads, f.Size)}}
	}
	if len(charges) > 0 || plan.fromStart {
		if err := s.opt.Store.LinkCharge(r.Context(), st.link.ID, charges, plan.fromStart); err != nil {
			if errors.Is(err, ErrLimitReached) {
				// Another request took the bytes first, or the link just expired.
				return errorf(http.StatusGone, "download_limit_reached",
					"This link has not enough of %s left for this request; ask the sender for a new one.", f.Path)
			}
			return mapStoreError(err)
		}
	}
	m := &meteredReaderAt{ra: blob, max: plan.bytes}
	serveBlob(w, r, f.Path, st.pkg.CreatedAt, m, blob.Size(), f.SHA256)
	if len(charges) > 0 {
		read := m.read.Load()
		var lost int64
		if read < plan.bytes || r.Context().Err() != nil {
			// The connection broke: what was in the kernels' buffers
			// between here and the recipient never reached it, and an
			// honest resume (curl -C -, a browser) asks for it again.
			lost = min(read, lostPerBreak)
		}
		s.refund(r, st.link.ID, f.ID, plan.bytes-read, lost, min(f.Size, lostPerFile))
	}
	return nil
}

// A connection that breaks loses what was in flight: the server counts bytes
// it wrote, the recipient keeps bytes it read, and between the two sit the
// socket buffers of both ends (Linux autotunes them up to 4 MiB for sending
// and 6 MiB for receiving). So a break forgives up to lostPerBreak of what
// the request had sent, and a file forgives at most lostPerFile (or its
// size, if smaller) over its link's life: a strict "N times the size" would
// refuse the resume of a one-download link, and an unbounded refund would
// let a client that breaks connections on purpose read for ever.
const (
	lostPerBreak = 16 << 20
	lostPerFile  = 64 << 20
)

// refund gives back bytes charged but never read from the file, and forgives
// lost bytes up to maxLost, even when the client has gone (its request
// context is cancelled by then).
func (s *Server) refund(r *http.Request, linkID, fileID string, unsent, lost, maxLost int64) {
	if unsent <= 0 && lost <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.opt.Store.LinkRefund(ctx, linkID, fileID, max(unsent, 0), lost, maxLost); err != nil {
		// The bytes stay charged: the link serves less, never more.
		s.log.ErrorContext(ctx, "web: giving back unsent download bytes", "link", linkID, "file", fileID, "unsent", unsent, "lost", lost, "err", err)
	}
}

// linkZip streams the package as a zip. A zip cannot be resumed (it is built
// on the fly and ignores Range), so it costs one whole size of every file,
// charged before the first byte; files the stream never reached are given
// back when it breaks.
func (s *Server) linkZip(w http.ResponseWriter, r *http.Request) error {
	st, err := s.resolveLink(r)
	if err != nil {
		return err
	}
	if err := st.refusal(); err != nil {
		return err
	}
	files := st.files()
	var charges []FileCharge
	for _, f := range files {
		if left := st.left(f); f.Size > left {
			return notEnoughLeft(f, f.Size, left)
		}
		if st.limited() && f.Size > 0 {
			charges = append(charges, FileCharge{FileID: f.ID, Bytes: f.Size, MaxBytes: linkBudget(st.link.MaxDownloads, f.Size)})
		}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/zip")
		return nil
	}
	if err := s.opt.Store.LinkCharge(r.Context(), st.link.ID, charges, true); err != nil {
		if errors.Is(err, ErrLimitReached) {
			return limitReached()
		}
		return mapStoreError(err)
	}
	meters := make([]*meteredReaderAt, len(files))
	entries := make([]ZipEntry, len(files))
	for i, f := range files {
		entries[i] = ZipEntry{Path: f.Path, Size: f.Size, Modified: st.pkg.CreatedAt,
			Open: func(ctx context.Context) (io.ReaderAt, io.Closer, error) {
				b, err := s.opt.Blobs.Open(ctx, f.UploadID)
				if err != nil {
					return nil, nil, err
				}
				meters[i] = &meteredReaderAt{ra: b, max: f.Size}
				return meters[i], b, nil
			}}
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", contentDisposition("attachment", zipName(st.pkg.Name)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := WriteZip(r.Context(), w, entries); err != nil {
		// Headers are gone: the client sees a truncated zip, which zip readers
		// reject (no central directory). Log why.
		if !errors.Is(err, context.Canceled) {
			s.log.ErrorContext(r.Context(), "web: zip download failed midway", "package", st.pkg.ID, "err", err)
		}
	}
	if len(charges) == 0 {
		return nil
	}
	for i, f := range files {
		var read int64
		if meters[i] != nil {
			read = meters[i].read.Load()
		}
		if f.Size > read {
			// A zip cannot be resumed: only what was never read is given back.
			s.refund(r, st.link.ID, f.ID, f.Size-read, 0, 0)
		}
	}
	return nil
}

// zipName is the download's file name: the package name without characters
// that are unsafe in a file name.
func zipName(name string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(name))
	if clean == "" {
		clean = "package"
	}
	return clean + ".zip"
}
