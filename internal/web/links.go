package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	linkCookie         = "ferry_link"
	linkPasswordHeader = "X-Link-Password"
)

// linkState is a resolved download link and what the caller may do with it.
type linkState struct {
	link    Link
	pkg     Package
	locked  bool // a password is needed and was not given
	spent   bool // no downloads left
	expired bool
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
	st.spent = l.MaxDownloads > 0 && l.Downloads >= l.MaxDownloads
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
		return errorf(http.StatusGone, "download_limit_reached", "This link has no downloads left; ask the sender for a new one.")
	}
	return nil
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

// countsAsDownload: a request that starts at byte 0 is a new download; a
// Range continuing past 0 resumes one already counted.
func countsAsDownload(r *http.Request) bool {
	if r.Method == http.MethodHead {
		return false
	}
	rg := strings.TrimSpace(r.Header.Get("Range"))
	return rg == "" || strings.HasPrefix(rg, "bytes=0-")
}

func (s *Server) linkFile(w http.ResponseWriter, r *http.Request) error {
	st, err := s.resolveLink(r)
	if err != nil {
		return err
	}
	fileID := r.PathValue("file")
	var f *File
	for i := range st.pkg.Files {
		if st.pkg.Files[i].ID == fileID && st.pkg.Files[i].State == FileComplete {
			f = &st.pkg.Files[i]
		}
	}
	if err := st.refusal(); err != nil {
		// A resumed range of a download already counted may finish after the
		// last download was spent; expiry and passwords still apply.
		if !(st.spent && !st.expired && !st.locked && !countsAsDownload(r)) {
			return err
		}
	}
	if f == nil {
		return notFound("file")
	}
	blob, err := s.opt.Blobs.Open(r.Context(), f.UploadID)
	if err != nil {
		return fmt.Errorf("opening file %s of package %s: %w", f.ID, st.pkg.ID, err)
	}
	defer blob.Close()
	if countsAsDownload(r) {
		if err := s.opt.Store.LinkCountDownload(r.Context(), st.link.ID); err != nil {
			return mapStoreError(err)
		}
	}
	serveBlob(w, r, f.Path, st.pkg.CreatedAt, blob, blob.Size(), f.SHA256)
	return nil
}

func (s *Server) linkZip(w http.ResponseWriter, r *http.Request) error {
	st, err := s.resolveLink(r)
	if err != nil {
		return err
	}
	if err := st.refusal(); err != nil {
		return err
	}
	var entries []ZipEntry
	for _, f := range st.pkg.Files {
		if f.State != FileComplete {
			continue
		}
		entries = append(entries, ZipEntry{Path: f.Path, Size: f.Size, Modified: st.pkg.CreatedAt,
			Open: func(ctx context.Context) (io.ReaderAt, io.Closer, error) {
				b, err := s.opt.Blobs.Open(ctx, f.UploadID)
				if err != nil {
					return nil, nil, err
				}
				return b, b, nil
			}})
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/zip")
		return nil
	}
	if err := s.opt.Store.LinkCountDownload(r.Context(), st.link.ID); err != nil {
		return mapStoreError(err)
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", contentDisposition("attachment", zipName(st.pkg.Name)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := WriteZip(r.Context(), w, entries); err != nil {
		// Headers are gone: the client sees a truncated zip, which zip readers
		// reject (no central directory). Log why.
		if !errors.Is(err, context.Canceled) {
			s.log.Error("web: zip download failed midway", "package", st.pkg.ID, "err", err)
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
