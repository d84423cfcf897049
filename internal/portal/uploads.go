package portal

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

// Upload is what an uploader asks to store (from tus metadata).
type Upload struct {
	Token        string // the package's upload token
	RelativePath string // folder path incl. file name; "" or "null" = none
	Filename     string
	Size         int64  // -1 = not known yet (tus creation-defer-length)
	SHA256       string // declared by the sender, lower-case hex, optional
	UploadID     string // the tus upload id, if known at admission
	Partial      bool   // one byte range of a parallel upload: no file row
	// FileSize is, for a partial, the size of the whole file it is a part
	// of (tus metadata file_size); -1 = not sent. Partials must send it,
	// with RelativePath/Filename, so they are checked before any byte of
	// theirs is stored.
	FileSize int64
	// Final is a parallel upload's concatenation: its bytes are its
	// partials', already counted against the package when they were admitted.
	Final bool
}

// Admission is an accepted upload: its package and, unless partial, the
// file row now reserved for it.
type Admission struct {
	Package *db.Package
	Portal  *db.Portal // nil for a package without portal
	File    *db.File   // nil for a partial
	Path    pathsafe.Path
	// Replaced is the unfinished file row of the same path this admission
	// took the place of (nil if none). Its upload can no longer become a
	// file: the caller stops it taking bytes (its UploadID).
	Replaced *db.File
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckFile applies a portal's per-file limits to a validated path and size
// (-1 = unknown): extensions (denied first, then allowed; compound ones like
// tar.gz match as suffixes) and the largest file.
func CheckFile(l db.Limits, p pathsafe.Path, size int64) error {
	name := strings.ToLower(p.Base())
	for _, ext := range l.DeniedExtensions {
		if strings.HasSuffix(name, "."+ext) {
			return refuse(http.StatusUnprocessableEntity, "extension_denied", "%s: files ending in .%s are not accepted by this portal.", p, ext)
		}
	}
	if len(l.AllowedExtensions) > 0 {
		ok := false
		for _, ext := range l.AllowedExtensions {
			ok = ok || strings.HasSuffix(name, "."+ext)
		}
		if !ok {
			return refuse(http.StatusUnprocessableEntity, "extension_not_allowed", "%s: this portal accepts only files ending in .%s.", p, strings.Join(l.AllowedExtensions, ", ."))
		}
	}
	if size < 0 && (l.MaxFileSize > 0 || l.MaxPackageSize > 0) {
		return refuse(http.StatusBadRequest, "length_required", "%s: this portal limits sizes, so the upload must state its length (Upload-Length).", p)
	}
	if l.MaxFileSize > 0 && size > l.MaxFileSize {
		return tooLarge("file_too_large", "%s is %s; this portal accepts files of at most %s.", p, HumanBytes(size), HumanBytes(l.MaxFileSize))
	}
	return nil
}

func tooLarge(code, format string, args ...any) *Error {
	return refuse(http.StatusRequestEntityTooLarge, code, format, args...)
}

// errUncountable refuses a size ferry cannot add to the package: the sum
// would leave int64. Only a portal without a package limit gets this far.
func errUncountable() *Error {
	return tooLarge("package_too_large", "The package would hold more bytes than ferry can count; send the rest as another package.")
}

// addSize adds two sizes, reporting whether the sum fits in an int64.
func addSize(a, b int64) (int64, bool) {
	sum := a + b
	if (b > 0 && sum < a) || (b < 0 && sum > a) {
		return 0, false
	}
	return sum, true
}

// addUsage adds to uploading package id's file count and size with the
// package locked (in tx, it is the package's lock; see PackageAddUsage),
// checking the sums in Go first: one that would leave int64 is refused
// (the database would refuse it too, as db.ErrOutOfRange).
func addUsage(ctx context.Context, tx db.Queries, id string, files int, bytes int64) (*db.Package, error) {
	cur, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: id})
	if err != nil || (files == 0 && bytes == 0) {
		return cur, err
	}
	if _, ok := addSize(cur.TotalSize, bytes); !ok {
		return nil, errUncountable()
	}
	if _, ok := addSize(int64(cur.FileCount), int64(files)); !ok {
		return nil, errUncountable()
	}
	cur, err = tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: id, FilesDelta: files, BytesDelta: bytes})
	if errors.Is(err, db.ErrOutOfRange) {
		return nil, errUncountable()
	}
	return cur, err
}

// errNoName refuses an upload whose metadata names no file, saying which
// keys were read.
func errNoName() *Error {
	return invalid("path", string(pathsafe.CodeEmpty),
		"The upload names no file: ferry reads the tus metadata filename (the file's name) or relativePath (its folder path including the name) and found neither.")
}

// errReplaced refuses to complete an upload whose file row is gone.
func errReplaced(path string) *Error {
	what := "This upload"
	if path != "" {
		what = "This upload of " + path
	}
	return refuse(http.StatusGone, "upload_replaced", "%s is no longer part of the package: a newer upload of the same path replaced it, or the file was cancelled. Its bytes are discarded; the newer upload is the one that counts.", what)
}

// folderSpelling refuses p when one of its folders is already in the
// package spelled differently (case or Unicode form): files that differ
// that way collide, and so do folders. Every file admitted passed this
// check, so one file inside the deepest existing folder shows how each of
// p's folders down to it is spelled.
func folderSpelling(ctx context.Context, tx db.Queries, pkgID string, p pathsafe.Path) error {
	anc := p.Ancestors()
	for i := len(anc) - 1; i >= 0; i-- {
		f, err := tx.FileGetInFolder(ctx, &db.FileGetInFolderParams{PackageID: pkgID, FolderKey: pathsafe.Key(anc[i])})
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		have, want := strings.Split(f.Path, "/"), p.Segments()
		for j := 0; j <= i && j < len(have); j++ {
			if have[j] != want[j] {
				existing := strings.Join(have[:j+1], "/")
				return &pathsafe.Error{Code: pathsafe.CodeDuplicate, Message: fmt.Sprintf(
					"path %q: the package already has the folder %q; folder names that differ only by upper/lower case or Unicode form collide, so send it as %q",
					p.String(), existing, existing+p.String()[len(anc[j]):])}
			}
		}
		return nil
	}
	return nil
}

// HumanBytes renders a size for a message ("1.5 GiB").
func HumanBytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"}
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

// packageAndPortal resolves an upload token to an uploading package of an
// active portal.
func (s *Service) packageAndPortal(ctx context.Context, token string) (*db.Package, *db.Portal, error) {
	pkg, err := s.PackageByToken(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if pkg.State != db.PackageUploading {
		return nil, nil, notUploading(pkg)
	}
	if pkg.PortalID == "" {
		return pkg, nil, nil
	}
	portal, err := s.db.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: pkg.PortalID})
	if err != nil {
		return nil, nil, fmt.Errorf("portal: loading portal %s of package %s: %w", pkg.PortalID, pkg.ID, err)
	}
	if !portal.Active {
		return nil, nil, refuse(http.StatusForbidden, "portal_inactive", "This portal is not accepting uploads right now; contact its owner.")
	}
	return pkg, portal, nil
}

func notUploading(pkg *db.Package) *Error {
	return refuse(http.StatusConflict, "package_not_uploading", "The package is %s and accepts no more files; create a new package.", pkg.State)
}

// Admit authorises an upload before any byte is stored and reserves its
// file row: token -> uploading package of an active portal, path through
// pathsafe, extension and size limits, then, with the package locked so
// concurrent admissions serialise, duplicates and the package's size and
// file count. A path that was admitted before but never completed (a retry
// after a crash or a failed checksum) is replaced; a completed one or a
// case/Unicode twin is refused.
func (s *Service) Admit(ctx context.Context, u Upload) (*Admission, error) {
	pkg, portal, err := s.packageAndPortal(ctx, u.Token)
	if err != nil {
		return nil, err
	}
	var limits db.Limits
	if portal != nil {
		limits = portal.Limits
	}
	adm := &Admission{Package: pkg, Portal: portal}
	if u.Partial {
		return s.admitPartial(ctx, u, adm, limits)
	}
	if noName(u) {
		return nil, errNoName()
	}
	p, err := pathsafe.Clean(u.RelativePath, u.Filename)
	if err != nil {
		return nil, AsError(err)
	}
	if u.SHA256 != "" && !sha256RE.MatchString(u.SHA256) {
		return nil, invalid("sha256", "invalid_sha256", "sha256 must be 64 lower-case hex digits.")
	}
	if err := CheckFile(limits, p, u.Size); err != nil {
		return nil, err
	}
	if err := s.checkObjectNames(ctx, pkg, portal, p); err != nil {
		return nil, err
	}
	size := max(u.Size, 0)
	// A final's bytes were counted against the package as its partials
	// were admitted, and its size is theirs: count the file, not the bytes
	// again.
	bytesDelta := size
	if u.Final {
		bytesDelta = 0
	}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		// AddUsage first: it locks the package row, so the checks below
		// see every admission that committed before this one.
		cur, err := addUsage(ctx, tx, pkg.ID, 1, bytesDelta)
		if errors.Is(err, db.ErrPrecondition) {
			return refuse(http.StatusConflict, "package_not_uploading", "The package accepts no more files; create a new package.")
		}
		if err != nil {
			return err
		}
		anc := p.Ancestors()
		for i := range anc {
			anc[i] = pathsafe.Key(anc[i])
		}
		clash, err := tx.FileFindPathConflict(ctx, &db.FileFindPathConflictParams{PackageID: pkg.ID, PathKey: p.Key(), AncestorKeys: anc})
		switch {
		case errors.Is(err, db.ErrNotFound):
		case err != nil:
			return err
		case clash.PathKey != p.Key():
			return AsError(pathsafe.FileFolderError(p.String(), clash.Path))
		case clash.State == db.FileComplete || clash.Path != p.String():
			return AsError(pathsafe.DuplicateError(p.String(), clash.Path))
		default:
			// Same path, never completed: the new upload replaces it.
			if cur, err = tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: pkg.ID, FilesDelta: -1, BytesDelta: -clash.Size}); err != nil {
				return err
			}
			if err := tx.FileDelete(ctx, &db.FileDeleteParams{ID: clash.ID}); err != nil {
				return err
			}
			adm.Replaced = clash
		}
		if err := folderSpelling(ctx, tx, pkg.ID, p); err != nil {
			return err
		}
		if limits.MaxFileCount > 0 && cur.FileCount > limits.MaxFileCount {
			return tooLarge("too_many_files", "This portal accepts at most %d files per package.", limits.MaxFileCount)
		}
		if limits.MaxPackageSize > 0 && cur.TotalSize > limits.MaxPackageSize {
			return tooLarge("package_too_large", "Adding %s (%s) would make the package %s; this portal accepts at most %s per package.",
				p, HumanBytes(size), HumanBytes(cur.TotalSize), HumanBytes(limits.MaxPackageSize))
		}
		f, err := tx.FileCreate(ctx, &db.FileCreateParams{PackageID: pkg.ID, Path: p.String(), PathKey: p.Key(), Size: size,
			SHA256: u.SHA256, UploadID: u.UploadID, CreatedAt: s.now()})
		if errors.Is(err, db.ErrConflict) {
			return AsError(pathsafe.DuplicateError(p.String(), p.String()))
		}
		if err != nil {
			return err
		}
		adm.File, adm.Path = f, p
		adm.Package = cur
		return nil
	})
	if err != nil {
		if e := AsError(err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("portal: admitting %s to package %s: %w", p, pkg.ID, err)
	}
	return adm, nil
}

// noName reports whether u names no file (Uppy sends relativePath "null"
// for a file picked without a folder).
func noName(u Upload) bool {
	return (u.RelativePath == "" || u.RelativePath == "null") && u.Filename == ""
}

// errPartialMetadata refuses a partial upload that does not say which file
// it belongs to.
func errPartialMetadata() *Error {
	return invalid("metadata", "partial_metadata_required",
		"A partial upload must carry the tus metadata relativePath (or filename) and file_size (the whole file's size), so it can be checked before its bytes are stored; with tus-js-client set them in metadataForPartialUploads.")
}

// admitPartial checks one partial of a parallel upload against the same
// rules as a whole file before any of its bytes is stored: the path it
// names (pathsafe), the extension and file size limits against the whole
// file's size, duplicates of a complete file, and the package's file count
// and size, counting the bytes of every partial admitted so far (so a token
// cannot pile up partials). No file row is made: sibling partials share a
// path, and the final upload reserves the file.
func (s *Service) admitPartial(ctx context.Context, u Upload, adm *Admission, limits db.Limits) (*Admission, error) {
	if noName(u) || u.FileSize < 0 {
		return nil, errPartialMetadata()
	}
	p, err := pathsafe.Clean(u.RelativePath, u.Filename)
	if err != nil {
		return nil, AsError(err)
	}
	if u.SHA256 != "" && !sha256RE.MatchString(u.SHA256) {
		return nil, invalid("sha256", "invalid_sha256", "sha256 must be 64 lower-case hex digits.")
	}
	if u.Size < 0 {
		return nil, refuse(http.StatusBadRequest, "length_required", "%s: a partial upload must state its length (Upload-Length).", p)
	}
	if u.Size > u.FileSize {
		return nil, invalid("file_size", "invalid_partial", "%s: a part of %s cannot belong to a file of %s.", p, HumanBytes(u.Size), HumanBytes(u.FileSize))
	}
	if err := CheckFile(limits, p, u.FileSize); err != nil {
		return nil, err
	}
	if err := s.checkObjectNames(ctx, adm.Package, adm.Portal, p); err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		// AddUsage first: it locks the package row, so concurrent
		// admissions serialise and each sees the partial bytes before it.
		cur, err := addUsage(ctx, tx, adm.Package.ID, 0, u.Size)
		if errors.Is(err, db.ErrPrecondition) {
			return notUploading(adm.Package)
		}
		if err != nil {
			return err
		}
		anc := p.Ancestors()
		for i := range anc {
			anc[i] = pathsafe.Key(anc[i])
		}
		newFile := true
		clash, err := tx.FileFindPathConflict(ctx, &db.FileFindPathConflictParams{PackageID: adm.Package.ID, PathKey: p.Key(), AncestorKeys: anc})
		switch {
		case errors.Is(err, db.ErrNotFound):
		case err != nil:
			return err
		case clash.PathKey != p.Key():
			return AsError(pathsafe.FileFolderError(p.String(), clash.Path))
		case clash.State == db.FileComplete || clash.Path != p.String():
			return AsError(pathsafe.DuplicateError(p.String(), clash.Path))
		default:
			newFile = false // an unfinished upload of this path: the final replaces it
		}
		if err := folderSpelling(ctx, tx, adm.Package.ID, p); err != nil {
			return err
		}
		if newFile && limits.MaxFileCount > 0 && cur.FileCount+1 > limits.MaxFileCount {
			return tooLarge("too_many_files", "This portal accepts at most %d files per package.", limits.MaxFileCount)
		}
		if limits.MaxPackageSize > 0 && cur.TotalSize > limits.MaxPackageSize {
			return tooLarge("package_too_large", "Adding a part of %s (%s) would make the package %s; this portal accepts at most %s per package.",
				p, HumanBytes(u.Size), HumanBytes(cur.TotalSize), HumanBytes(limits.MaxPackageSize))
		}
		adm.Package, adm.Path = cur, p
		return nil
	})
	if err != nil {
		if e := AsError(err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("portal: admitting a partial of %s to package %s: %w", p, adm.Package.ID, err)
	}
	return adm, nil
}

// ReleasePartial gives back the share of package packageID's size limit that
// a partial upload of size bytes took when it was admitted, once its bytes
// are gone without becoming part of a file (it failed its checksum). A
// package no longer uploading is left as it is.
func (s *Service) ReleasePartial(ctx context.Context, packageID string, size int64) error {
	if packageID == "" || size <= 0 {
		return nil
	}
	_, err := s.db.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: packageID, BytesDelta: -size})
	if err != nil && !errors.Is(err, db.ErrPrecondition) {
		return fmt.Errorf("portal: releasing a partial upload of package %s: %w", packageID, err)
	}
	return nil
}

// FileRef names a file row: by ID (preferred), else by tus UploadID.
type FileRef struct{ FileID, UploadID string }

func (s *Service) file(ctx context.Context, q db.Queries, ref FileRef) (*db.File, error) {
	if ref.FileID != "" {
		f, err := q.FileGetByID(ctx, &db.FileGetByIDParams{ID: ref.FileID})
		if err == nil || !errors.Is(err, db.ErrNotFound) || ref.UploadID == "" {
			return f, err
		}
	}
	return q.FileGetByUploadID(ctx, &db.FileGetByUploadIDParams{UploadID: ref.UploadID})
}

// Completion is a finished upload of a whole file.
type Completion struct {
	FileRef
	Size   int64
	SHA256 []byte // computed over the stored bytes; nil if not computed
	// Path is the path the upload was admitted for, only for messages
	// (the file row may be gone); "" if not known.
	Path string
}

// CompleteHook runs in the transaction that records a file complete, so work
// queued there (a delivery job) commits or rolls back with the record.
type CompleteHook func(ctx context.Context, tx db.Tx, pkg *db.Package, f *db.File) error

// CompleteFile records that the file's bytes are all stored. It is
// idempotent: a file already complete is returned as is and the hook does
// not run again. A computed SHA-256 that differs from the one the sender
// declared marks the file failed (committed) and returns checksum_mismatch.
// A deferred-length file's real size is added to the package here; a size
// the package cannot count marks the file failed too (package_too_large).
// An upload whose file row is gone or belongs to another upload (a newer
// upload of the same path replaced it) is refused with 410 upload_replaced.
// Every refusal is final: completing the same upload again gives the same.
func (s *Service) CompleteFile(ctx context.Context, c Completion, hook CompleteHook) (*db.File, error) {
	var out *db.File
	var failed *Error
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		f, err := s.file(ctx, tx, c.FileRef)
		if errors.Is(err, db.ErrNotFound) {
			return errReplaced(c.Path)
		}
		if err != nil {
			return fmt.Errorf("finding the file of upload %q: %w", c.UploadID, err)
		}
		// Lock the package as Admit does, then read the row again: an
		// admission of the same path either replaced it before (gone) or
		// sees it complete after (a duplicate), never both.
		if _, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: f.PackageID}); err != nil && !errors.Is(err, db.ErrPrecondition) {
			return err
		}
		if f, err = tx.FileGetByID(ctx, &db.FileGetByIDParams{ID: f.ID}); errors.Is(err, db.ErrNotFound) {
			return errReplaced(c.Path)
		} else if err != nil {
			return err
		}
		if c.UploadID != "" && f.UploadID != "" && f.UploadID != c.UploadID {
			return errReplaced(f.Path)
		}
		switch f.State {
		case db.FileComplete:
			out = f
			return nil
		case db.FileFailed:
			return refuse(http.StatusConflict, "file_failed", "%s failed earlier (%s); upload it again.", f.Path, f.FailureReason)
		}
		fail := func(e *Error, reason string) error {
			var err error
			if out, err = tx.FileSetFailed(ctx, &db.FileSetFailedParams{ID: f.ID, Reason: reason}); err != nil {
				return err
			}
			failed = e
			return nil // commit the failure; report it below
		}
		digest, verified := f.SHA256, false
		if c.SHA256 != nil {
			digest, verified = hex.EncodeToString(c.SHA256), true
			if f.SHA256 != "" && f.SHA256 != digest {
				reason := fmt.Sprintf("sha256 of the received bytes is %s, the sender declared %s", digest, f.SHA256)
				return fail(refuse(http.StatusUnprocessableEntity, "checksum_mismatch", "%s arrived damaged: %s. Upload it again.", f.Path, reason), reason)
			}
		}
		if c.Size != f.Size {
			_, err := addUsage(ctx, tx, f.PackageID, 0, c.Size-f.Size)
			if e := AsError(err); e != nil {
				return fail(e, e.Message)
			}
			if err != nil && !errors.Is(err, db.ErrPrecondition) {
				return err
			}
		}
		out, err = tx.FileSetComplete(ctx, &db.FileSetCompleteParams{ID: f.ID, Size: c.Size, SHA256: digest, SHA256Verified: verified, CompletedAt: s.now()})
		if err != nil {
			return err
		}
		if hook != nil {
			pkg, err := tx.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: f.PackageID})
			if err != nil {
				return err
			}
			return hook(ctx, tx, pkg, out)
		}
		return nil
	})
	if err != nil {
		if e := AsError(err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("portal: completing %s: %w", c.describe(), err)
	}
	if failed != nil {
		return out, failed
	}
	return out, nil
}

func (r FileRef) describe() string {
	if r.FileID != "" {
		return "file " + r.FileID
	}
	return "upload " + r.UploadID
}

// FailFile records that a finished upload failed (an integrity check).
// Failing a file that is complete or already failed, or no longer exists,
// changes nothing.
func (s *Service) FailFile(ctx context.Context, ref FileRef, reason string) error {
	f, err := s.file(ctx, s.db, ref)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("portal: failing %s: %w", ref.describe(), err)
	}
	if _, err := s.db.FileSetFailed(ctx, &db.FileSetFailedParams{ID: f.ID, Reason: reason}); err != nil && !errors.Is(err, db.ErrPrecondition) {
		return fmt.Errorf("portal: failing file %s: %w", f.ID, err)
	}
	return nil
}

// CancelFile removes a file that is not complete (the sender terminated its
// upload) and gives its share of the package's limits back. It returns the
// removed row (its UploadID says which bytes to delete); a complete file is
// refused, a missing one is not an error (nil, nil).
func (s *Service) CancelFile(ctx context.Context, ref FileRef) (*db.File, error) {
	var out *db.File
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		f, err := s.file(ctx, tx, ref)
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if f.State == db.FileComplete {
			return refuse(http.StatusConflict, "file_complete", "%s is completely uploaded and can no longer be cancelled.", f.Path)
		}
		if _, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: f.PackageID, FilesDelta: -1, BytesDelta: -f.Size}); err != nil && !errors.Is(err, db.ErrPrecondition) {
			return err
		}
		out = f
		return tx.FileDelete(ctx, &db.FileDeleteParams{ID: f.ID})
	})
	if err != nil {
		if e := AsError(err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("portal: cancelling %s: %w", ref.describe(), err)
	}
	return out, nil
}

// Finalized is what Finalize closed: the package, its files, its portal (nil
// without one). AlreadyFinalized is true when an earlier call did it (a
// retried request): the hook did not run again.
type Finalized struct {
	Package          *db.Package
	Files            []*db.File
	Portal           *db.Portal
	AlreadyFinalized bool
}

// FinalizeHook runs in the transaction that finalizes the package: enqueue
// deliveries and notifications there, so they exist if and only if the
// package is finalized.
type FinalizeHook func(ctx context.Context, tx db.Tx, fin *Finalized) error

// Finalize closes package id for uploads once every file is complete, and
// sets its expiry from the portal's retention. It is idempotent.
func (s *Service) Finalize(ctx context.Context, id string, hook FinalizeHook) (*Finalized, error) {
	fin := &Finalized{}
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		// A zero AddUsage locks the package against concurrent admissions,
		// so no file can slip in between the check and the state change.
		pkg, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: id})
		if errors.Is(err, db.ErrPrecondition) {
			pkg, err = tx.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: id})
			if errors.Is(err, db.ErrNotFound) {
				return refuse(http.StatusNotFound, "package_not_found", "There is no such package.")
			}
			if err != nil {
				return err
			}
			if pkg.State != db.PackageFinalized {
				return refuse(http.StatusConflict, "package_not_uploading", "The package is %s and can no longer be finalized.", pkg.State)
			}
			fin.AlreadyFinalized = true
		} else if err != nil {
			return err
		}
		if fin.Files, err = tx.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: id}); err != nil {
			return err
		}
		if pkg.PortalID != "" {
			if fin.Portal, err = tx.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: pkg.PortalID}); err != nil {
				return err
			}
		}
		fin.Package = pkg
		if fin.AlreadyFinalized {
			return nil
		}
		if len(fin.Files) == 0 {
			return refuse(http.StatusConflict, "package_empty", "The package has no files yet; upload at least one before finishing.")
		}
		var pending, failed []string
		for _, f := range fin.Files {
			switch f.State {
			case db.FileUploading:
				pending = append(pending, f.Path)
			case db.FileFailed:
				failed = append(failed, f.Path)
			}
		}
		if len(failed) > 0 {
			return refuse(http.StatusConflict, "files_failed", "%d file(s) failed and must be uploaded again or removed first: %s.", len(failed), listSome(failed))
		}
		if len(pending) > 0 {
			return refuse(http.StatusConflict, "files_incomplete", "%d file(s) are not completely uploaded yet: %s.", len(pending), listSome(pending))
		}
		// While uploading, the size counts the bytes of admitted partials,
		// some of which may never have become a file (abandoned, cleaned up):
		// the finalized package's size is its files'.
		var total int64
		for _, f := range fin.Files {
			var ok bool
			if total, ok = addSize(total, f.Size); !ok {
				return errUncountable()
			}
		}
		if total != pkg.TotalSize {
			if _, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: id, BytesDelta: total - pkg.TotalSize}); err != nil {
				return err
			}
		}
		now := s.now()
		var days int
		if fin.Portal != nil {
			days = fin.Portal.RetentionDays
		}
		if fin.Package, err = tx.PackageSetFinalized(ctx, &db.PackageSetFinalizedParams{ID: id, FinalizedAt: now, ExpiresAt: ExpiresAt(now, days)}); err != nil {
			return err
		}
		if hook != nil {
			return hook(ctx, tx, fin)
		}
		return nil
	})
	if err != nil {
		if e := AsError(err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("portal: finalizing package %s: %w", id, err)
	}
	return fin, nil
}

func listSome(paths []string) string {
	const show = 3
	if len(paths) <= show {
		return strings.Join(paths, ", ")
	}
	return strings.Join(paths[:show], ", ") + fmt.Sprintf(" and %d more", len(paths)-show)
}

// ExpireDue marks every package whose expiry has passed as expired and
// returns them, so the caller can delete their bytes. It does at most limit
// (0 = 100) per call.
func (s *Service) ExpireDue(ctx context.Context, limit int) ([]*db.Package, error) {
	due, err := s.db.PackageListExpirable(ctx, &db.PackageListExpirableParams{Now: s.now(), Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("portal: listing expired packages: %w", err)
	}
	var out []*db.Package
	for _, p := range due {
		e, err := s.db.PackageSetExpired(ctx, &db.PackageSetExpiredParams{ID: p.ID})
		if err != nil {
			return out, fmt.Errorf("portal: expiring package %s: %w", p.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}
