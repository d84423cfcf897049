package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/testbed"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type fixture struct {
	svc   *Service
	db    db.Store
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return fixtureOn(store)
}

func fixtureOn(store db.Store) *fixture {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	return &fixture{svc: New(store, Options{Now: c.Now}), db: store, clock: c}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e := AsError(err)
	if e == nil || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if e.Status < 400 || e.Message == "" {
		t.Fatalf("error %s has status %d and message %q", code, e.Status, e.Message)
	}
}

func (f *fixture) portal(t *testing.T, slug string, l db.Limits, password string) *db.Portal {
	t.Helper()
	in := PortalInput{Name: slug, Slug: slug, Active: true, Limits: l, RetentionDays: 7}
	if password != "" {
		in.Password = &password
	}
	p, err := f.svc.CreatePortal(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) pkg(t *testing.T, slug string) (*db.Package, string) {
	t.Helper()
	p, tok, err := f.svc.CreatePackage(context.Background(), NewPackage{PortalSlug: slug, SenderEmail: "s@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}

func (f *fixture) admit(t *testing.T, tok, path string, size int64) *db.File {
	t.Helper()
	a, err := f.svc.Admit(context.Background(), Upload{Token: tok, RelativePath: path, Size: size})
	if err != nil {
		t.Fatalf("Admit(%q): %v", path, err)
	}
	return a.File
}

func TestPortalCreateAndUpdate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.portal(t, "dailies", db.Limits{}, "secret1")
	if p.PasswordHash == "" || p.PasswordHash == "secret1" {
		t.Fatalf("password stored as %q", p.PasswordHash)
	}
	_, err := f.svc.CreatePortal(ctx, PortalInput{Name: "x", Slug: "DAILIES"})
	wantCode(t, err, "slug_taken")
	_, err = f.svc.CreatePortal(ctx, PortalInput{Name: "x", Slug: "no good"})
	wantCode(t, err, "invalid_slug")

	// nil password keeps the hash, "" removes it.
	up, err := f.svc.UpdatePortal(ctx, p.ID, PortalInput{Name: "Dailies", Slug: "dailies", Active: false})
	if err != nil || up.PasswordHash != p.PasswordHash || up.Active {
		t.Fatalf("update kept password? %v %+v", err, up)
	}
	if err := CheckPortalPassword(up, "secret1"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, CheckPortalPassword(up, "wrong"), "password_incorrect")
	wantCode(t, CheckPortalPassword(up, ""), "password_required")
	up, err = f.svc.UpdatePortal(ctx, p.ID, PortalInput{Name: "Dailies", Slug: "dailies", Password: ptr("")})
	if err != nil || up.PasswordHash != "" || CheckPortalPassword(up, "") != nil {
		t.Fatalf("password not removed: %v %+v", err, up)
	}
	f.portal(t, "other", db.Limits{}, "")
	_, err = f.svc.UpdatePortal(ctx, p.ID, PortalInput{Name: "x", Slug: "other"})
	wantCode(t, err, "slug_taken")
	_, err = f.svc.UpdatePortal(ctx, "missing", PortalInput{Name: "x", Slug: "x"})
	wantCode(t, err, "portal_not_found")
}

func TestCreatePackageRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "open", db.Limits{}, "")
	f.portal(t, "locked", db.Limits{}, "hunter22")
	closed := f.portal(t, "closed", db.Limits{}, "")
	if _, err := f.svc.UpdatePortal(ctx, closed.ID, PortalInput{Name: "closed", Slug: "closed", Active: false}); err != nil {
		t.Fatal(err)
	}
	u, err := f.svc.CreateUser(ctx, "op@example.com", "a long enough password", true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		in       NewPackage
		wantCode string
		wantName string
	}{
		{"portal package", NewPackage{PortalSlug: "open", Name: "  Day   1 ", SenderEmail: "S@Example.com"}, "", "Day 1"},
		{"default name from sender", NewPackage{PortalSlug: "open", SenderEmail: "s@example.com"}, "", "Package from s@example.com 2026-05-01 10:00"},
		{"user package without email", NewPackage{UserID: u.ID}, "", "Package 2026-05-01 10:00"},
		{"sender email required", NewPackage{PortalSlug: "open"}, "sender_email_required", ""},
		{"sender email invalid", NewPackage{PortalSlug: "open", SenderEmail: "nope"}, "invalid_sender_email", ""},
		{"unknown portal", NewPackage{PortalSlug: "nope", SenderEmail: "s@example.com"}, "portal_not_found", ""},
		{"inactive portal", NewPackage{PortalSlug: "closed", SenderEmail: "s@example.com"}, "portal_inactive", ""},
		{"password missing", NewPackage{PortalSlug: "locked", SenderEmail: "s@example.com"}, "password_required", ""},
		{"password wrong", NewPackage{PortalSlug: "locked", SenderEmail: "s@example.com", Password: "x"}, "password_incorrect", ""},
		{"password right", NewPackage{PortalSlug: "locked", SenderEmail: "s@example.com", Password: "hunter22", Name: "n"}, "", "n"},
		{"neither portal nor user", NewPackage{SenderEmail: "s@example.com"}, "portal_required", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, tok, err := f.svc.CreatePackage(ctx, c.in)
			if c.wantCode != "" {
				wantCode(t, err, c.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != c.wantName || p.State != db.PackageUploading || len(tok) < 43 {
				t.Fatalf("package %+v token %q", p, tok)
			}
			if string(p.UploadTokenHash) == tok || !TokenEqual(p.UploadTokenHash, HashToken(tok)) {
				t.Fatal("the token is not stored hashed")
			}
			got, err := f.svc.PackageByToken(ctx, tok)
			if err != nil || got.ID != p.ID {
				t.Fatalf("PackageByToken = %v, %v", got, err)
			}
		})
	}
	_, err = f.svc.PackageByToken(ctx, "not-a-token")
	wantCode(t, err, "unauthorized")
}

func TestAdmitRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "limited", db.Limits{MaxFileSize: 100, MaxPackageSize: 250, MaxFileCount: 4, DeniedExtensions: []string{"exe"}}, "")
	_, tok := f.pkg(t, "limited")
	steps := []struct {
		name     string
		up       Upload
		wantCode string
		wantPath string
	}{
		{"first file", Upload{RelativePath: "Day 1/a.mov", Filename: "a.mov", Size: 100}, "", "Day 1/a.mov"},
		{"uppy null folder", Upload{RelativePath: "null", Filename: "b.mov", Size: 10}, "", "b.mov"},
		{"bad token", Upload{Token: "x", RelativePath: "c.mov", Size: 1}, "unauthorized", ""},
		{"no token", Upload{Token: "-", RelativePath: "c.mov", Size: 1}, "unauthorized", ""},
		{"traversal", Upload{RelativePath: "../c.mov", Size: 1}, "path_dot_segment", ""},
		{"reserved name", Upload{RelativePath: "x/aux.mov", Size: 1}, "path_reserved_name", ""},
		{"denied extension", Upload{RelativePath: "setup.exe", Size: 1}, "extension_denied", ""},
		{"file too large", Upload{RelativePath: "big.mov", Size: 101}, "file_too_large", ""},
		{"deferred length with limits", Upload{RelativePath: "d.mov", Size: -1}, "length_required", ""},
		{"bad sha256", Upload{RelativePath: "d.mov", Size: 1, SHA256: "ABC"}, "invalid_sha256", ""},
		{"case duplicate", Upload{RelativePath: "day 1/A.MOV", Size: 1}, "path_duplicate", ""},
		{"file where a folder is", Upload{RelativePath: "Day 1", Size: 1}, "path_file_folder_conflict", ""},
		{"folder where a file is", Upload{RelativePath: "b.mov/c.mov", Size: 1}, "path_file_folder_conflict", ""},
		{"package too large", Upload{RelativePath: "c.mov", Size: 100, SHA256: hexSum("x")}, "", "c.mov"},
		{"package now too large", Upload{RelativePath: "d.mov", Size: 41}, "package_too_large", ""},
		{"fits exactly", Upload{RelativePath: "d.mov", Size: 40}, "", "d.mov"},
		{"too many files", Upload{RelativePath: "e.mov", Size: 0}, "too_many_files", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			u := s.up
			switch u.Token {
			case "":
				u.Token = tok
			case "-":
				u.Token = ""
			}
			a, err := f.svc.Admit(ctx, u)
			if s.wantCode != "" {
				wantCode(t, err, s.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.File.Path != s.wantPath || a.File.State != db.FileUploading || a.File.Size != u.Size || a.File.SHA256 != u.SHA256 {
				t.Fatalf("file %+v", a.File)
			}
		})
	}
	p, _ := f.svc.PackageByToken(ctx, tok)
	if p.FileCount != 4 || p.TotalSize != 250 {
		t.Fatalf("package usage %d files %d bytes, want 4 and 250: refused admissions must give their reservation back", p.FileCount, p.TotalSize)
	}
}

// A partial of a parallel upload is checked like a whole file before any
// of its bytes is stored, and its bytes count against the package.
func TestAdmitChecksPartialsBeforeTheirBytesAreStored(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "limited", db.Limits{MaxFileSize: 100, MaxPackageSize: 250, MaxFileCount: 2, DeniedExtensions: []string{"exe"}}, "")
	pkg, tok := f.pkg(t, "limited")
	done := f.admit(t, tok, "done.mov", 50)
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: done.ID}, Size: 50}, nil); err != nil {
		t.Fatal(err)
	}
	part := func(rel string, size, fileSize int64) Upload {
		return Upload{Token: tok, Partial: true, RelativePath: rel, Size: size, FileSize: fileSize}
	}
	steps := []struct {
		name     string
		up       Upload
		wantCode string
	}{
		{"no metadata", Upload{Token: tok, Partial: true, Size: 10, FileSize: -1}, "partial_metadata_required"},
		{"no file size", part("a.mov", 10, -1), "partial_metadata_required"},
		{"traversal", part("../a.mov", 10, 20), "path_dot_segment"},
		{"absolute", part("/etc/a.mov", 10, 20), "path_absolute"},
		{"backslash", part(`a\..\b.mov`, 10, 20), "path_backslash"},
		{"reserved name", part("CON.mov", 10, 20), "path_reserved_name"},
		{"denied extension", part("setup.exe", 10, 20), "extension_denied"},
		{"whole file too large", part("big.mov", 10, 101), "file_too_large"},
		{"part larger than its file", part("a.mov", 30, 20), "invalid_partial"},
		{"deferred length", part("a.mov", -1, 20), "length_required"},
		{"bad sha256", Upload{Token: tok, Partial: true, RelativePath: "a.mov", Size: 1, FileSize: 2, SHA256: "ABC"}, "invalid_sha256"},
		{"duplicate of a complete file", part("done.mov", 10, 20), "path_duplicate"},
		{"case twin of a complete file", part("DONE.MOV", 10, 20), "path_duplicate"},
		{"folder where a file is", part("done.mov/x.mov", 10, 20), "path_file_folder_conflict"},
		{"first partial", part("clip.mov", 50, 100), ""},
		{"sibling partial of the same file", part("clip.mov", 50, 100), ""},
		{"partials of another file", part("other.mov", 100, 100), ""},
		{"partials piling up past the package size", part("more.mov", 1, 1), "package_too_large"},
		{"final of the first file", Upload{Token: tok, Final: true, RelativePath: "clip.mov", Size: 100}, ""},
		{"a third file's partial", part("third.mov", 0, 0), "too_many_files"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a, err := f.svc.Admit(ctx, st.up)
			if st.wantCode != "" {
				wantCode(t, err, st.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.up.Partial && a.File != nil {
				t.Fatalf("partial got a file row %+v", a.File)
			}
		})
	}
	p, _ := f.svc.PackageByToken(ctx, tok)
	if p.FileCount != 2 || p.TotalSize != 250 {
		t.Fatalf("package usage %d files %d bytes, want 2 files and 250 bytes (50 done + 100 in clip.mov's partials + 100 in other.mov's)", p.FileCount, p.TotalSize)
	}
	// other.mov's partials fail their checksum: their share comes back.
	if err := f.svc.ReleasePartial(ctx, pkg.ID, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admit(ctx, part("clip.mov", 100, 100)); err != nil {
		t.Fatalf("after the release: %v", err)
	}
	files, err := f.db.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: pkg.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range files {
		if fl.State != db.FileComplete {
			if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: fl.ID}, Size: fl.Size}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The last clip.mov partial was abandoned: the finalized package's size
	// is its files', not what partials took while it was uploading.
	fin, err := f.svc.Finalize(ctx, pkg.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Package.TotalSize != 150 || fin.Package.FileCount != 2 {
		t.Fatalf("finalized package: %d files, %d bytes; want 2 and 150", fin.Package.FileCount, fin.Package.TotalSize)
	}
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestAdmitReplacesAnUnfinishedUploadOfTheSamePath(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{MaxFileCount: 1}, "")
	_, tok := f.pkg(t, "p")
	first := f.admit(t, tok, "a/x.mov", 10)
	second := f.admit(t, tok, "a/x.mov", 20) // crashed client retries: replaces, within the 1-file limit
	if first.ID == second.ID {
		t.Fatal("no new row")
	}
	if err := f.svc.FailFile(ctx, FileRef{FileID: second.ID}, "disk error"); err != nil {
		t.Fatal(err)
	}
	third := f.admit(t, tok, "a/x.mov", 30) // failed: replaced too
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: third.ID}, Size: 30}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "a/x.mov", Size: 30})
	wantCode(t, err, "path_duplicate") // complete: never replaced
	p, _ := f.svc.PackageByToken(ctx, tok)
	if p.FileCount != 1 || p.TotalSize != 30 {
		t.Fatalf("usage %d files %d bytes, want 1 and 30", p.FileCount, p.TotalSize)
	}
}

func TestAdmitRefusesClosedPackagesAndPortals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	portal := f.portal(t, "p", db.Limits{}, "")
	pkg, tok := f.pkg(t, "p")
	file := f.admit(t, tok, "a.mov", 1)
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: file.ID}, Size: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Finalize(ctx, pkg.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "b.mov", Size: 1})
	wantCode(t, err, "package_not_uploading")

	_, tok2 := f.pkg(t, "p")
	if _, err := f.svc.UpdatePortal(ctx, portal.ID, PortalInput{Name: "p", Slug: "p", Active: false}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Admit(ctx, Upload{Token: tok2, RelativePath: "b.mov", Size: 1})
	wantCode(t, err, "portal_inactive")
}

func TestCompleteFileIsIdempotentAndChecksSHA256(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	pkg, tok := f.pkg(t, "p")
	good := sha256.Sum256([]byte("good"))
	a, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "a.mov", Size: 4, SHA256: hex.EncodeToString(good[:]), UploadID: "up-a"})
	if err != nil || a.File.UploadID != "up-a" {
		t.Fatalf("%v %+v", err, a)
	}
	hooks := 0
	hook := func(ctx context.Context, tx db.Tx, p *db.Package, file *db.File) error {
		hooks++
		if p.ID != pkg.ID || file.State != db.FileComplete {
			return fmt.Errorf("hook saw %+v %+v", p, file)
		}
		return nil
	}
	for range 2 {
		done, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{UploadID: "up-a"}, Size: 4, SHA256: good[:]}, hook)
		if err != nil {
			t.Fatal(err)
		}
		if done.State != db.FileComplete || !done.SHA256Verified || done.SHA256 != hex.EncodeToString(good[:]) {
			t.Fatalf("completed %+v", done)
		}
	}
	if hooks != 1 {
		t.Fatalf("hook ran %d times, want once", hooks)
	}

	bad := f.admit(t, tok, "b.mov", 4)
	if _, err := f.db.FileGetByID(ctx, &db.FileGetByIDParams{ID: bad.ID}); err != nil {
		t.Fatal(err)
	}
	withSum, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "c.mov", Size: 4, SHA256: hex.EncodeToString(good[:])})
	if err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("evil"))
	got, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: withSum.File.ID}, Size: 4, SHA256: other[:]}, hook)
	wantCode(t, err, "checksum_mismatch")
	if got == nil || got.State != db.FileFailed || got.FailureReason == "" {
		t.Fatalf("mismatch not recorded: %+v", got)
	}
	stored, _ := f.db.FileGetByID(ctx, &db.FileGetByIDParams{ID: withSum.File.ID})
	if stored.State != db.FileFailed {
		t.Fatalf("mismatch was rolled back: %+v", stored)
	}
	_, err = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: withSum.File.ID}, Size: 4}, hook)
	wantCode(t, err, "file_failed")
	if hooks != 1 {
		t.Fatalf("hook ran for a failed file")
	}

	// A hook error rolls the completion back, so a retry completes it.
	boom := errors.New("queue down")
	_, err = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: bad.ID}, Size: 4}, func(context.Context, db.Tx, *db.Package, *db.File) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the hook's", err)
	}
	if again, _ := f.db.FileGetByID(ctx, &db.FileGetByIDParams{ID: bad.ID}); again.State != db.FileUploading {
		t.Fatalf("completion survived a failed hook: %+v", again)
	}
	// A file row that is gone (replaced by a newer upload of the same path,
	// or cancelled) can never be completed: a refusal, not a failure.
	_, err = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: "nope"}, Size: 4}, nil)
	wantCode(t, err, "upload_replaced")
}

func TestCompleteFileRecordsDeferredLength(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	_, tok := f.pkg(t, "p")
	file := f.admit(t, tok, "a.mov", -1)
	if file.Size != 0 {
		t.Fatalf("deferred size stored as %d", file.Size)
	}
	done, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: file.ID}, Size: 12345}, nil)
	if err != nil || done.Size != 12345 || done.SHA256Verified {
		t.Fatalf("%v %+v", err, done)
	}
	if p, _ := f.svc.PackageByToken(ctx, tok); p.TotalSize != 12345 {
		t.Fatalf("package size %d, want 12345", p.TotalSize)
	}
}

func TestCancelFileGivesLimitsBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{MaxFileCount: 1}, "")
	_, tok := f.pkg(t, "p")
	a := f.admit(t, tok, "a.mov", 5)
	removed, err := f.svc.CancelFile(ctx, FileRef{UploadID: "", FileID: a.ID})
	if err != nil || removed.ID != a.ID {
		t.Fatalf("%v %+v", err, removed)
	}
	if r, err := f.svc.CancelFile(ctx, FileRef{FileID: a.ID}); err != nil || r != nil {
		t.Fatalf("second cancel: %v %+v", err, r)
	}
	b := f.admit(t, tok, "b.mov", 5) // the slot is free again
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: b.ID}, Size: 5}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CancelFile(ctx, FileRef{FileID: b.ID})
	wantCode(t, err, "file_complete")
	if err := f.svc.FailFile(ctx, FileRef{FileID: b.ID}, "late"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.FileGetByID(ctx, &db.FileGetByIDParams{ID: b.ID}); got.State != db.FileComplete {
		t.Fatalf("FailFile changed a complete file: %+v", got)
	}
}

func TestFinalize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "") // retention 7 days
	pkg, tok := f.pkg(t, "p")
	_, err := f.svc.Finalize(ctx, pkg.ID, nil)
	wantCode(t, err, "package_empty")
	a := f.admit(t, tok, "a.mov", 1)
	b := f.admit(t, tok, "b.mov", 1)
	_, err = f.svc.Finalize(ctx, pkg.ID, nil)
	wantCode(t, err, "files_incomplete")
	if err := f.svc.FailFile(ctx, FileRef{FileID: b.ID}, "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: a.ID}, Size: 1}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Finalize(ctx, pkg.ID, nil)
	wantCode(t, err, "files_failed")
	if _, err := f.svc.CancelFile(ctx, FileRef{FileID: b.ID}); err != nil {
		t.Fatal(err)
	}
	hooks := 0
	hook := func(ctx context.Context, tx db.Tx, fin *Finalized) error {
		hooks++
		if len(fin.Files) != 1 || fin.Portal == nil || fin.Package.State != db.PackageFinalized {
			return fmt.Errorf("hook saw %+v", fin)
		}
		return nil
	}
	for i := range 2 {
		fin, err := f.svc.Finalize(ctx, pkg.ID, hook)
		if err != nil {
			t.Fatal(err)
		}
		want := f.clock.Now().AddDate(0, 0, 7)
		if fin.Package.State != db.PackageFinalized || fin.Package.ExpiresAt == nil || !fin.Package.ExpiresAt.Equal(want) || fin.AlreadyFinalized != (i == 1) {
			t.Fatalf("call %d: %+v expires %v, want %v", i, fin.Package, fin.Package.ExpiresAt, want)
		}
	}
	if hooks != 1 {
		t.Fatalf("hook ran %d times, want once", hooks)
	}
	_, err = f.svc.Finalize(ctx, "missing", nil)
	wantCode(t, err, "package_not_found")

	f.clock.Add(7*24*time.Hour - time.Second)
	if due, err := f.svc.ExpireDue(ctx, 0); err != nil || len(due) != 0 {
		t.Fatalf("expired early: %v %v", due, err)
	}
	f.clock.Add(time.Second)
	due, err := f.svc.ExpireDue(ctx, 0)
	if err != nil || len(due) != 1 || due[0].State != db.PackageExpired {
		t.Fatalf("ExpireDue = %+v, %v", due, err)
	}
	_, err = f.svc.Finalize(ctx, pkg.ID, nil)
	wantCode(t, err, "package_not_uploading")
}

func TestFinalizeHookErrorLeavesPackageOpen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	pkg, tok := f.pkg(t, "p")
	a := f.admit(t, tok, "a.mov", 1)
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: a.ID}, Size: 1}, nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("cannot enqueue")
	if _, err := f.svc.Finalize(ctx, pkg.ID, func(context.Context, db.Tx, *Finalized) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if p, _ := f.svc.PackageByToken(ctx, tok); p.State != db.PackageUploading {
		t.Fatalf("package finalized without its deliveries: %+v", p)
	}
}

func TestUsersSessionsAndAPITokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.svc.CreateUser(ctx, "x", "a long enough password", false)
	wantCode(t, err, "invalid_email")
	_, err = f.svc.CreateUser(ctx, "ed@example.com", "short", false)
	wantCode(t, err, "weak_password")
	u, err := f.svc.CreateUser(ctx, "Ed@Example.com", "a long enough password", true)
	if err != nil || u.Email != "ed@example.com" || !u.IsAdmin {
		t.Fatalf("%v %+v", err, u)
	}
	_, err = f.svc.CreateUser(ctx, "ED@example.com", "a long enough password", false)
	wantCode(t, err, "email_taken")

	cases := []struct {
		email, pw string
		ok        bool
	}{
		{"ed@example.com", "a long enough password", true},
		{"ED@EXAMPLE.COM", "a long enough password", true},
		{"ed@example.com", "a long enough passworD", false},
		{"nobody@example.com", "a long enough password", false},
		{"not an email", "a long enough password", false},
	}
	for _, c := range cases {
		got, err := f.svc.Authenticate(ctx, c.email, c.pw)
		if c.ok && (err != nil || got.ID != u.ID) {
			t.Errorf("Authenticate(%q) = %v, %v", c.email, got, err)
		}
		if !c.ok {
			if e := AsError(err); e == nil || e.Code != "unauthorized" || e.Message != "The email or password is not correct." {
				t.Errorf("Authenticate(%q, %q) = %v; want the same unauthorized answer", c.email, c.pw, err)
			}
		}
	}
	if err := f.svc.SetPassword(ctx, u.ID, "another long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, u.Email, "another long password"); err != nil {
		t.Fatal(err)
	}

	tok, sess, err := f.svc.CreateSession(ctx, u.ID, time.Hour)
	if err != nil || len(sess.CSRFSecret) < 32 || string(sess.TokenHash) == tok {
		t.Fatalf("%v %+v", err, sess)
	}
	if s2, u2, err := f.svc.SessionByToken(ctx, tok); err != nil || s2.ID != sess.ID || u2.ID != u.ID {
		t.Fatalf("SessionByToken: %v", err)
	}
	f.clock.Add(time.Hour)
	_, _, err = f.svc.SessionByToken(ctx, tok)
	wantCode(t, err, "unauthorized")
	tok2, _, _ := f.svc.CreateSession(ctx, u.ID, time.Hour)
	if err := f.svc.DeleteSession(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.SessionByToken(ctx, tok2)
	wantCode(t, err, "unauthorized")

	_, _, err = f.svc.CreateAPIToken(ctx, u.ID, "", nil)
	wantCode(t, err, "invalid_name")
	api, row, err := f.svc.CreateAPIToken(ctx, u.ID, "ci", nil)
	if err != nil || row.Name != "ci" {
		t.Fatal(err)
	}
	if got, err := f.svc.UserByAPIToken(ctx, api); err != nil || got.ID != u.ID {
		t.Fatalf("UserByAPIToken: %v", err)
	}
	if r, _ := f.db.APITokenGetByHash(ctx, &db.APITokenGetByHashParams{TokenHash: HashToken(api)}); r.LastUsedAt == nil {
		t.Fatal("use not recorded")
	}
	_, err = f.svc.UserByAPIToken(ctx, api+"x")
	wantCode(t, err, "unauthorized")
}

func TestDownloadLinks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	pkg, tok := f.pkg(t, "p")
	_, _, err := f.svc.CreateDownloadLink(ctx, pkg.ID, LinkOptions{})
	wantCode(t, err, "package_not_finalized")
	a := f.admit(t, tok, "a.mov", 1)
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: a.ID}, Size: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Finalize(ctx, pkg.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.CreateDownloadLink(ctx, pkg.ID, LinkOptions{DownloadLimit: -1})
	wantCode(t, err, "invalid_link")
	_, _, err = f.svc.CreateDownloadLink(ctx, "missing", LinkOptions{})
	wantCode(t, err, "package_not_found")

	_, row, err := f.svc.CreateDownloadLink(ctx, pkg.ID, LinkOptions{TTL: time.Hour, Password: "pw12", DownloadLimit: 2})
	if err != nil || row.PasswordHash == "pw12" || row.PasswordHash == "" || row.DownloadLimit != 2 || row.ExpiresAt == nil {
		t.Fatalf("%v %+v", err, row)
	}
}

// TestAdmitLimitsHoldUnderConcurrencyOnPostgres races admissions to one
// package on PostgreSQL, where they really run in parallel: the file count
// limit must hold exactly.
func TestAdmitLimitsHoldUnderConcurrencyOnPostgres(t *testing.T) {
	dsn := testbed.Postgres(t).CreateDatabase(t)
	store, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := fixtureOn(store)
	f.portal(t, "p", db.Limits{MaxFileCount: 5, MaxPackageSize: 1000}, "")
	pkg, tok := f.pkg(t, "p")
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, refused := 0, 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Admit(context.Background(), Upload{Token: tok, RelativePath: fmt.Sprintf("f%d.mov", i), Size: 100})
			mu.Lock()
			defer mu.Unlock()
			switch e := AsError(err); {
			case err == nil:
				admitted++
			case e != nil && e.Code == "too_many_files":
				refused++
			default:
				t.Errorf("admission %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	p, err := store.PackageGetByID(context.Background(), &db.PackageGetByIDParams{ID: pkg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if admitted != 5 || refused != 11 || p.FileCount != 5 || p.TotalSize != 500 {
		t.Fatalf("admitted %d refused %d; package %d files %d bytes; want 5, 11, 5, 500", admitted, refused, p.FileCount, p.TotalSize)
	}
}

// A package or portal name becomes one folder of the delivered tree
// (Portal Downloads/<portal>/<package>/...), so it must be one safe segment.
func TestNamesThatAreNotOneSafeFolderAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.portal(t, "open", db.Limits{}, "")
	cases := []struct {
		name, in string
		wantOK   string // "" = refused with invalid_name
	}{
		{"parent", "..", ""},
		{"dot", ".", ""},
		{"NUL", "cam\x00A", ""},
		{"ESC", "\x1b[2Jcam", ""},
		{"slash", "a/b", ""},
		{"backslash", `a\b`, ""},
		{"trailing dot", "Dailies.", ""},
		{"device name", "CON", ""},
		{"very long", strings.Repeat("é", 150), ""},
		{"accents", "Café crème", "Café crème"},
		{"decomposed accent becomes NFC", "Cafe\u0301", "Caf\u00e9"},
		{"emoji", "Shoot 🎬 day 3", "Shoot 🎬 day 3"},
		{"colon", "Dailies: day 3", "Dailies: day 3"},
	}
	for i, c := range cases {
		t.Run("package "+c.name, func(t *testing.T) {
			pkg, _, err := f.svc.CreatePackage(ctx, NewPackage{PortalSlug: "open", SenderEmail: "s@example.com", Name: c.in})
			if c.wantOK == "" {
				wantCode(t, err, "invalid_name")
				if e := AsError(err); e.Status != http.StatusBadRequest || strings.ContainsFunc(e.Message, unicode.IsControl) {
					t.Fatalf("status %d, message %q", e.Status, e.Message)
				}
				return
			}
			if err != nil || pkg.Name != c.wantOK {
				t.Fatalf("CreatePackage(%q) = %v, %v; want name %q", c.in, pkg, err, c.wantOK)
			}
		})
		t.Run("portal "+c.name, func(t *testing.T) {
			slug := fmt.Sprintf("p%d", i)
			got, err := f.svc.CreatePortal(ctx, PortalInput{Name: c.in, Slug: slug})
			_, uerr := f.svc.UpdatePortal(ctx, p.ID, PortalInput{Name: c.in, Slug: "open", Active: true})
			if c.wantOK == "" {
				wantCode(t, err, "invalid_name")
				wantCode(t, uerr, "invalid_name")
				return
			}
			if err != nil || uerr != nil || got.Name != c.wantOK {
				t.Fatalf("CreatePortal(%q) = %v, %v; UpdatePortal: %v", c.in, got, err, uerr)
			}
		})
	}
}
