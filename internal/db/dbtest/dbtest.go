package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
)

// Open returns a fresh, migrated, empty store for one test, closed by the
// test's cleanup.
type Open func(t *testing.T) db.Store

// Run runs the whole suite against the stores open makes.
func Run(t *testing.T, open Open) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s db.Store)
	}{
		{"UsersAreUniqueByCaseInsensitiveEmail", testUsers},
		{"SessionsExpireAndBelongToUsers", testSessions},
		{"APITokensAreScopedToTheirUser", testAPITokens},
		{"APITokensExpireAndRevokeKeepingTheirRow", testAPITokenRevoke},
		{"PortalsRoundTripEveryField", testPortals},
		{"PortalWithPackagesCannotBeDeleted", testPortalDeleteRestricted},
		{"PackagesMoveUploadingFinalizedExpired", testPackageStates},
		{"PackageListFiltersAndPages", testPackageList},
		{"FilesAreUniqueByPathKeyAndMoveStateOnce", testFiles},
		{"FileFindPathConflictFindsFileFolderClashes", testFilePathConflicts},
		{"FileGetInFolderFindsOneFileInsideAFolder", testFileGetInFolder},
		{"SizesStayIntegersAndOverflowIsRefused", testSizesStayIntegers},
		{"DownloadLinksCountUntilExpiry", testDownloadLinks},
		{"DownloadLinkBytesNeverPassTheirLimit", testDownloadLinkBytes},
		{"InTxCommitsOrRollsBack", testInTx},
		{"PackageAddUsageSerialisesConcurrentAdmissions", testConcurrentAdmission},
		{"TimesRoundTripInUTCMicroseconds", testTimes},
		{"ConnectionsRoundTripAndMarkBroken", testConnections},
		{"DeliveriesResumeAndClaimOnce", testDeliveries},
		{"GuardedPendingMarksLetOneReplicaCreate", testGuardedPending},
		{"NotificationsAreRecordedOncePerEventKindAndRecipient", testNotifications},
		{"RiverJobsAreCountedByState", testRiverJobCounts},
	}
	for _, c := range cases {
		run(t, c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func randBytes(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// must returns v or stops the test: it panics with a mustError that Run's
// recover turns into t.Fatal, since Go cannot pass (v, err) and t together.
// Use it only on the test's own goroutine.
func must[T any](v T, err error) T {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(mustError{fmt.Errorf("%s:%d: %w", filepath.Base(file), line, err)})
	}
	return v
}

type mustError struct{ err error }

// run is t.Run that turns a must failure into t.Fatal.
func run(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		defer func() {
			if r := recover(); r != nil {
				if m, ok := r.(mustError); ok {
					t.Fatal(m.err)
				}
				panic(r)
			}
		}()
		fn(t)
	})
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func mkUser(t *testing.T, q db.Queries, email string) *db.User {
	t.Helper()
	return must(q.UserCreate(context.Background(), &db.UserCreateParams{Email: email, PasswordHash: "h", CreatedAt: t0}))
}

func mkPackage(t *testing.T, q db.Queries, portalID string) *db.Package {
	t.Helper()
	return must(q.PackageCreate(context.Background(), &db.PackageCreateParams{
		PortalID: portalID, Name: "pkg", UploadTokenHash: randBytes(t), CreatedAt: t0,
	}))
}

func mkFile(t *testing.T, q db.Queries, pkgID, path string) *db.File {
	t.Helper()
	return must(q.FileCreate(context.Background(), &db.FileCreateParams{PackageID: pkgID, Path: path, PathKey: path, Size: 10}))
}

func testUsers(t *testing.T, s db.Store) {
	ctx := context.Background()
	u := must(s.UserCreate(ctx, &db.UserCreateParams{Email: "Ada@Example.com", PasswordHash: "hash", IsAdmin: true, CreatedAt: t0}))
	if u.ID == "" || u.Email != "ada@example.com" || !u.IsAdmin || !u.CreatedAt.Equal(t0) {
		t.Fatalf("created %+v", u)
	}
	_, err := s.UserCreate(ctx, &db.UserCreateParams{Email: "ADA@example.com", PasswordHash: "x"})
	wantErr(t, err, db.ErrConflict)
	got := must(s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: "ada@EXAMPLE.com"}))
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("get by email = %+v, want %+v", got, u)
	}
	_, err = s.UserGetByID(ctx, &db.UserGetByIDParams{ID: "missing"})
	wantErr(t, err, db.ErrNotFound)
	mkUser(t, s, "bob@example.com")
	if n := must(s.UserCount(ctx)); n != 2 {
		t.Fatalf("UserCount = %d, want 2", n)
	}
	list := must(s.UserList(ctx))
	if len(list) != 2 || list[0].Email != "ada@example.com" || list[1].Email != "bob@example.com" {
		t.Fatalf("UserList = %+v", list)
	}
	up := must(s.UserSetPassword(ctx, &db.UserSetPasswordParams{ID: u.ID, PasswordHash: "new"}))
	if up.PasswordHash != "new" {
		t.Fatalf("password not set: %+v", up)
	}
	_, err = s.UserSetPassword(ctx, &db.UserSetPasswordParams{ID: "missing", PasswordHash: "x"})
	wantErr(t, err, db.ErrNotFound)
	must(0, s.InTx(ctx, func(tx db.Tx) error { return tx.UsersLock(ctx) }))
	must(0, s.UserDelete(ctx, &db.UserDeleteParams{ID: u.ID}))
	wantErr(t, s.UserDelete(ctx, &db.UserDeleteParams{ID: u.ID}), db.ErrNotFound)
	if n := must(s.UserCount(ctx)); n != 1 {
		t.Fatalf("UserCount after delete = %d, want 1", n)
	}
}

func testSessions(t *testing.T, s db.Store) {
	ctx := context.Background()
	u := mkUser(t, s, "a@example.com")
	live := must(s.SessionCreate(ctx, &db.SessionCreateParams{TokenHash: randBytes(t), UserID: u.ID, CSRFSecret: []byte("csrf"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	old := must(s.SessionCreate(ctx, &db.SessionCreateParams{TokenHash: randBytes(t), UserID: u.ID, CSRFSecret: []byte("csrf"), CreatedAt: t0, ExpiresAt: t0.Add(-time.Second)}))
	got := must(s.SessionGetByHash(ctx, &db.SessionGetByHashParams{TokenHash: live.TokenHash}))
	if !reflect.DeepEqual(got, live) || !bytes.Equal(got.CSRFSecret, []byte("csrf")) {
		t.Fatalf("get = %+v, want %+v", got, live)
	}
	_, err := s.SessionCreate(ctx, &db.SessionCreateParams{TokenHash: randBytes(t), UserID: "no-such-user", CSRFSecret: []byte("x"), ExpiresAt: t0})
	wantErr(t, err, db.ErrConflict)
	if n := must(s.SessionDeleteExpired(ctx, &db.SessionDeleteExpiredParams{Now: t0})); n != 1 {
		t.Fatalf("SessionDeleteExpired = %d, want 1", n)
	}
	_, err = s.SessionGetByHash(ctx, &db.SessionGetByHashParams{TokenHash: old.TokenHash})
	wantErr(t, err, db.ErrNotFound)
	if err := s.SessionDelete(ctx, &db.SessionDeleteParams{TokenHash: live.TokenHash}); err != nil {
		t.Fatal(err)
	}
	_, err = s.SessionGetByHash(ctx, &db.SessionGetByHashParams{TokenHash: live.TokenHash})
	wantErr(t, err, db.ErrNotFound)
}

func testAPITokens(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mkUser(t, s, "a@example.com"), mkUser(t, s, "b@example.com")
	tok := must(s.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: a.ID, Name: "ci", TokenHash: randBytes(t), CreatedAt: t0}))
	if tok.LastUsedAt != nil {
		t.Fatalf("new token has LastUsedAt %v", tok.LastUsedAt)
	}
	_, err := s.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: a.ID, Name: "dup", TokenHash: tok.TokenHash})
	wantErr(t, err, db.ErrConflict)
	if err := s.APITokenTouch(ctx, &db.APITokenTouchParams{ID: tok.ID, LastUsedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got := must(s.APITokenGetByHash(ctx, &db.APITokenGetByHashParams{TokenHash: tok.TokenHash}))
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0.Add(time.Minute)) || got.UserID != a.ID || got.Name != "ci" {
		t.Fatalf("after touch: %+v", got)
	}
	if l := must(s.APITokenListByUser(ctx, &db.APITokenListByUserParams{UserID: b.ID})); len(l) != 0 {
		t.Fatalf("b sees a's tokens: %+v", l)
	}
	wantErr(t, s.APITokenDelete(ctx, &db.APITokenDeleteParams{ID: tok.ID, UserID: b.ID}), db.ErrNotFound)
	if err := s.APITokenDelete(ctx, &db.APITokenDeleteParams{ID: tok.ID, UserID: a.ID}); err != nil {
		t.Fatal(err)
	}
	if l := must(s.APITokenListByUser(ctx, &db.APITokenListByUserParams{UserID: a.ID})); len(l) != 0 {
		t.Fatalf("deleted token still listed: %+v", l)
	}
}

func testAPITokenRevoke(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mkUser(t, s, "a@example.com"), mkUser(t, s, "b@example.com")
	exp := t0.Add(30 * 24 * time.Hour)
	tok := must(s.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: a.ID, Name: "ci", TokenHash: randBytes(t), CreatedAt: t0, ExpiresAt: &exp}))
	forever := must(s.APITokenCreate(ctx, &db.APITokenCreateParams{UserID: b.ID, Name: "ops", TokenHash: randBytes(t), CreatedAt: t0.Add(time.Second)}))
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) || tok.RevokedAt != nil || forever.ExpiresAt != nil {
		t.Fatalf("created: %+v / %+v", tok, forever)
	}

	// Touch only moves forward, and a touch of an unknown id is no error.
	for _, at := range []time.Time{t0.Add(2 * time.Minute), t0.Add(time.Minute)} {
		if err := s.APITokenTouch(ctx, &db.APITokenTouchParams{ID: tok.ID, LastUsedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.APITokenTouch(ctx, &db.APITokenTouchParams{ID: "missing", LastUsedAt: t0}); err != nil {
		t.Fatalf("touching an unknown token: %v", err)
	}
	if got := must(s.APITokenGetByID(ctx, &db.APITokenGetByIDParams{ID: tok.ID})); got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("last use went back: %+v", got.LastUsedAt)
	}

	// Revoking keeps the row and the first revocation time.
	rev := must(s.APITokenRevoke(ctx, &db.APITokenRevokeParams{ID: tok.ID, RevokedAt: t0.Add(time.Hour)}))
	again := must(s.APITokenRevoke(ctx, &db.APITokenRevokeParams{ID: tok.ID, RevokedAt: t0.Add(2 * time.Hour)}))
	if rev.RevokedAt == nil || !rev.RevokedAt.Equal(t0.Add(time.Hour)) || !again.RevokedAt.Equal(*rev.RevokedAt) {
		t.Fatalf("revoked: %+v, again: %+v", rev.RevokedAt, again.RevokedAt)
	}
	got := must(s.APITokenGetByHash(ctx, &db.APITokenGetByHashParams{TokenHash: tok.TokenHash}))
	if got.RevokedAt == nil || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.Name != "ci" {
		t.Fatalf("revoked token read back as %+v", got)
	}
	_, err := s.APITokenRevoke(ctx, &db.APITokenRevokeParams{ID: "missing", RevokedAt: t0})
	wantErr(t, err, db.ErrNotFound)
	_, err = s.APITokenGetByID(ctx, &db.APITokenGetByIDParams{ID: "missing"})
	wantErr(t, err, db.ErrNotFound)

	// The list holds every user's tokens, oldest first, revoked ones too.
	l := must(s.APITokenList(ctx, &db.APITokenListParams{}))
	if len(l) != 2 || l[0].ID != tok.ID || l[1].ID != forever.ID || l[0].RevokedAt == nil || l[1].RevokedAt != nil {
		t.Fatalf("list: %+v", l)
	}
}

func portalParams(slug string) *db.PortalCreateParams {
	return &db.PortalCreateParams{
		Name: "Portal " + slug, Slug: slug, Active: true, PasswordHash: "pw",
		Recipients: []string{"a@example.com", "b@example.com"}, WelcomeMessage: "Hello\nthere",
		Limits: db.Limits{MaxFileSize: 1 << 40, MaxPackageSize: 5 << 40, MaxFileCount: 10000,
			AllowedExtensions: []string{"mov", "mxf"}, DeniedExtensions: []string{"exe"}},
		ConnectionIDs: []string{"c1"}, RetentionDays: 30, CreatedAt: t0,
	}
}

func testPortals(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := must(s.PortalCreate(ctx, portalParams("dailies")))
	want := portalParams("dailies")
	if p.Name != want.Name || p.Slug != want.Slug || !p.Active || p.PasswordHash != "pw" ||
		!reflect.DeepEqual(p.Recipients, want.Recipients) || p.WelcomeMessage != want.WelcomeMessage ||
		!reflect.DeepEqual(p.Limits, want.Limits) || !reflect.DeepEqual(p.ConnectionIDs, want.ConnectionIDs) ||
		p.RetentionDays != 30 || !p.CreatedAt.Equal(t0) || !p.UpdatedAt.Equal(t0) {
		t.Fatalf("created %+v, want %+v", p, want)
	}
	_, err := s.PortalCreate(ctx, portalParams("dailies"))
	wantErr(t, err, db.ErrConflict)
	got := must(s.PortalGetBySlug(ctx, &db.PortalGetBySlugParams{Slug: "dailies"}))
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("get by slug = %+v, want %+v", got, p)
	}
	other := must(s.PortalCreate(ctx, &db.PortalCreateParams{Name: "A first", Slug: "other"}))
	if other.Recipients != nil || other.Limits.AllowedExtensions != nil || other.Active {
		t.Fatalf("empty lists or flags did not round-trip: %+v", other)
	}
	up := must(s.PortalUpdate(ctx, &db.PortalUpdateParams{ID: p.ID, Name: "Renamed", Slug: "renamed", Active: false,
		Recipients: []string{"c@example.com"}, Limits: db.Limits{MaxFileCount: 3}, UpdatedAt: t0.Add(time.Hour)}))
	if up.Name != "Renamed" || up.Slug != "renamed" || up.Active || up.PasswordHash != "" || up.Limits.MaxFileCount != 3 ||
		up.Limits.MaxFileSize != 0 || !up.CreatedAt.Equal(t0) || !up.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("updated %+v", up)
	}
	_, err = s.PortalUpdate(ctx, &db.PortalUpdateParams{ID: p.ID, Name: "x", Slug: "other"})
	wantErr(t, err, db.ErrConflict)
	_, err = s.PortalUpdate(ctx, &db.PortalUpdateParams{ID: "missing", Name: "x", Slug: "x"})
	wantErr(t, err, db.ErrNotFound)
	list := must(s.PortalList(ctx, &db.PortalListParams{}))
	if len(list) != 2 || list[0].Name != "A first" || list[1].Name != "Renamed" {
		t.Fatalf("PortalList = %+v", list)
	}
	if err := s.PortalDelete(ctx, &db.PortalDeleteParams{ID: other.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: other.ID})
	wantErr(t, err, db.ErrNotFound)
	wantErr(t, s.PortalDelete(ctx, &db.PortalDeleteParams{ID: other.ID}), db.ErrNotFound)
}

func testPortalDeleteRestricted(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := must(s.PortalCreate(ctx, portalParams("x")))
	mkPackage(t, s, p.ID)
	wantErr(t, s.PortalDelete(ctx, &db.PortalDeleteParams{ID: p.ID}), db.ErrConflict)
	_, err := s.PackageCreate(ctx, &db.PackageCreateParams{PortalID: "no-such-portal", Name: "x", UploadTokenHash: randBytes(t)})
	wantErr(t, err, db.ErrConflict)
}

func testPackageStates(t *testing.T, s db.Store) {
	ctx := context.Background()
	u := mkUser(t, s, "a@example.com")
	p := must(s.PackageCreate(ctx, &db.PackageCreateParams{CreatedByUserID: u.ID, Name: "Shoot", Description: "d",
		SenderEmail: "s@example.com", UploadTokenHash: randBytes(t), CreatedAt: t0}))
	if p.State != db.PackageUploading || p.PortalID != "" || p.CreatedByUserID != u.ID || p.FinalizedAt != nil || p.ExpiresAt != nil {
		t.Fatalf("created %+v", p)
	}
	_, err := s.PackageCreate(ctx, &db.PackageCreateParams{Name: "dup", UploadTokenHash: p.UploadTokenHash})
	wantErr(t, err, db.ErrConflict)
	got := must(s.PackageGetByUploadTokenHash(ctx, &db.PackageGetByUploadTokenHashParams{UploadTokenHash: p.UploadTokenHash}))
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("by token = %+v, want %+v", got, p)
	}
	if got = must(s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: 2, BytesDelta: 5 << 30})); got.FileCount != 2 {
		t.Fatalf("usage = %d files, want 2", got.FileCount)
	}
	got = must(s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: -1, BytesDelta: -1}))
	if got.FileCount != 1 || got.TotalSize != 5<<30-1 {
		t.Fatalf("usage = %d files %d bytes", got.FileCount, got.TotalSize)
	}
	exp := t0.Add(48 * time.Hour)
	fin := must(s.PackageSetFinalized(ctx, &db.PackageSetFinalizedParams{ID: p.ID, FinalizedAt: t0.Add(time.Hour), ExpiresAt: &exp}))
	if fin.State != db.PackageFinalized || fin.FinalizedAt == nil || !fin.FinalizedAt.Equal(t0.Add(time.Hour)) || !fin.ExpiresAt.Equal(exp) {
		t.Fatalf("finalized %+v", fin)
	}
	_, err = s.PackageSetFinalized(ctx, &db.PackageSetFinalizedParams{ID: p.ID, FinalizedAt: t0})
	wantErr(t, err, db.ErrPrecondition)
	_, err = s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: 1})
	wantErr(t, err, db.ErrPrecondition)

	if l := must(s.PackageListExpirable(ctx, &db.PackageListExpirableParams{Now: exp.Add(-time.Second)})); len(l) != 0 {
		t.Fatalf("expirable before expiry: %+v", l)
	}
	l := must(s.PackageListExpirable(ctx, &db.PackageListExpirableParams{Now: exp}))
	if len(l) != 1 || l[0].ID != p.ID {
		t.Fatalf("expirable at expiry: %+v", l)
	}
	if e := must(s.PackageSetExpired(ctx, &db.PackageSetExpiredParams{ID: p.ID})); e.State != db.PackageExpired {
		t.Fatalf("expired: %+v", e)
	}
	if l := must(s.PackageListExpirable(ctx, &db.PackageListExpirableParams{Now: exp.Add(time.Hour)})); len(l) != 0 {
		t.Fatalf("expired package listed again: %+v", l)
	}
	if err := s.PackageDelete(ctx, &db.PackageDeleteParams{ID: p.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: p.ID})
	wantErr(t, err, db.ErrNotFound)
}

// listExtra gives some of testPackageList's packages longer names, so that
// the search matches a part of a name and treats % as a literal.
var listExtra = []string{"", " 100% done", "", " Day Rolls", ""}

func testPackageList(t *testing.T, s db.Store) {
	ctx := context.Background()
	portal := must(s.PortalCreate(ctx, portalParams("p")))
	var ids []string
	for i := range 5 {
		pid := ""
		if i%2 == 0 {
			pid = portal.ID
		}
		p := must(s.PackageCreate(ctx, &db.PackageCreateParams{PortalID: pid, Name: fmt.Sprint(i) + listExtra[i], SenderEmail: fmt.Sprintf("S%d@Example.com", i%3),
			UploadTokenHash: randBytes(t), CreatedAt: t0.Add(time.Duration(i) * time.Minute)}))
		ids = append(ids, p.ID)
	}
	must(s.PackageSetFinalized(ctx, &db.PackageSetFinalizedParams{ID: ids[4], FinalizedAt: t0}))
	names := func(l []*db.Package) (out []string) {
		for _, p := range l {
			out = append(out, strings.TrimSuffix(p.Name, listExtra[p.Name[0]-'0']))
		}
		return out
	}
	cases := []struct {
		name   string
		params db.PackageListParams
		want   []string
	}{
		{"all newest first", db.PackageListParams{}, []string{"4", "3", "2", "1", "0"}},
		{"by portal", db.PackageListParams{PortalID: portal.ID}, []string{"4", "2", "0"}},
		{"by state", db.PackageListParams{State: db.PackageUploading}, []string{"3", "2", "1", "0"}},
		{"portal and state", db.PackageListParams{PortalID: portal.ID, State: db.PackageFinalized}, []string{"4"}},
		{"page", db.PackageListParams{Limit: 2, Offset: 1}, []string{"3", "2"}},
		{"by sender, any case", db.PackageListParams{SenderEmail: "s1@EXAMPLE.com"}, []string{"4", "1"}},
		{"sender and portal", db.PackageListParams{SenderEmail: "s1@example.com", PortalID: portal.ID}, []string{"4"}},
		{"query matches a sender, any case", db.PackageListParams{Query: "S2@EXAMPLE"}, []string{"2"}},
		{"query matches part of a name", db.PackageListParams{Query: "roll"}, []string{"3"}},
		{"query wildcards are literal", db.PackageListParams{Query: "%"}, []string{"1"}},
		{"query and portal", db.PackageListParams{Query: "example.com", PortalID: portal.ID}, []string{"4", "2", "0"}},
	}
	for _, c := range cases {
		run(t, c.name, func(t *testing.T) {
			got := names(must(s.PackageList(ctx, &c.params)))
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("PackageList(%+v) = %v, want %v", c.params, got, c.want)
			}
		})
	}
}

func testFiles(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	f := must(s.FileCreate(ctx, &db.FileCreateParams{PackageID: p.ID, Path: "A/b.mov", PathKey: "a/b.mov", Size: 42, SHA256: "ab", UploadID: "up1", CreatedAt: t0}))
	if f.State != db.FileUploading || f.Size != 42 || f.SHA256 != "ab" || f.UploadID != "up1" || f.CompletedAt != nil || f.SHA256Verified {
		t.Fatalf("created %+v", f)
	}
	_, err := s.FileCreate(ctx, &db.FileCreateParams{PackageID: p.ID, Path: "a/B.mov", PathKey: "a/b.mov"})
	wantErr(t, err, db.ErrConflict)
	_, err = s.FileCreate(ctx, &db.FileCreateParams{PackageID: "no-such-package", Path: "x", PathKey: "x"})
	wantErr(t, err, db.ErrConflict)

	got := must(s.FileGetByUploadID(ctx, &db.FileGetByUploadIDParams{UploadID: "up1"}))
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("by upload id = %+v, want %+v", got, f)
	}
	_, err = s.FileGetByUploadID(ctx, &db.FileGetByUploadIDParams{UploadID: ""})
	wantErr(t, err, db.ErrNotFound)
	got = must(s.FileGetByPathKey(ctx, &db.FileGetByPathKeyParams{PackageID: p.ID, PathKey: "a/b.mov"}))
	if got.ID != f.ID {
		t.Fatalf("by path key = %+v", got)
	}
	done := must(s.FileSetComplete(ctx, &db.FileSetCompleteParams{ID: f.ID, Size: 43, SHA256: "cd", SHA256Verified: true, CompletedAt: t0.Add(time.Second)}))
	if done.State != db.FileComplete || done.Size != 43 || done.SHA256 != "cd" || !done.SHA256Verified || !done.CompletedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("completed %+v", done)
	}
	_, err = s.FileSetComplete(ctx, &db.FileSetCompleteParams{ID: f.ID, Size: 1})
	wantErr(t, err, db.ErrPrecondition)
	_, err = s.FileSetFailed(ctx, &db.FileSetFailedParams{ID: f.ID, Reason: "x"})
	wantErr(t, err, db.ErrPrecondition)

	g := mkFile(t, s, p.ID, "c.txt")
	g2 := must(s.FileSetUploadID(ctx, &db.FileSetUploadIDParams{ID: g.ID, UploadID: "up2"}))
	if g2.UploadID != "up2" {
		t.Fatalf("upload id not set: %+v", g2)
	}
	failed := must(s.FileSetFailed(ctx, &db.FileSetFailedParams{ID: g.ID, Reason: "sha256 mismatch"}))
	if failed.State != db.FileFailed || failed.FailureReason != "sha256 mismatch" {
		t.Fatalf("failed %+v", failed)
	}
	list := must(s.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: p.ID}))
	if len(list) != 2 || list[0].PathKey != "a/b.mov" || list[1].PathKey != "c.txt" {
		t.Fatalf("FileListByPackage = %+v", list)
	}
	if err := s.FileDelete(ctx, &db.FileDeleteParams{ID: g.ID}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.FileDelete(ctx, &db.FileDeleteParams{ID: g.ID}), db.ErrNotFound)
	if err := s.PackageDelete(ctx, &db.PackageDeleteParams{ID: p.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.FileGetByID(ctx, &db.FileGetByIDParams{ID: f.ID})
	wantErr(t, err, db.ErrNotFound) // cascaded
}

func testFilePathConflicts(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	other := mkPackage(t, s, "")
	for _, path := range []string{"a/b", "d/e/f.txt", "g.txt", "h/i.txt"} {
		mkFile(t, s, p.ID, path)
	}
	mkFile(t, s, other.ID, "x/y")
	cases := []struct {
		key       string
		ancestors []string
		want      string // conflicting path, "" = none
	}{
		{"a/b", []string{"a"}, "a/b"},
		{"a/b/c.txt", []string{"a", "a/b"}, "a/b"},
		{"d/e", []string{"d"}, "d/e/f.txt"},
		{"d", nil, "d/e/f.txt"},
		{"d/e/g.txt", []string{"d", "d/e"}, ""},
		{"a/bc", []string{"a"}, ""},
		{"a/b0", []string{"a"}, ""},
		{"a/b.txt", []string{"a"}, ""},
		{"h/i.txt/j", []string{"h", "h/i.txt"}, "h/i.txt"},
		{"g.tx", nil, ""},
		{"x", nil, ""}, // other package's folder
	}
	for _, c := range cases {
		run(t, c.key, func(t *testing.T) {
			f, err := s.FileFindPathConflict(ctx, &db.FileFindPathConflictParams{PackageID: p.ID, PathKey: c.key, AncestorKeys: c.ancestors})
			switch {
			case c.want == "":
				wantErr(t, err, db.ErrNotFound)
			case err != nil:
				t.Fatalf("want conflict with %q, got %v", c.want, err)
			case f.Path != c.want:
				t.Fatalf("conflict = %q, want %q", f.Path, c.want)
			}
		})
	}
}

func testDownloadLinks(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	exp := t0.Add(time.Hour)
	l := must(s.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: p.ID, TokenHash: randBytes(t), PasswordHash: "pw", DownloadLimit: 2, CreatedAt: t0, ExpiresAt: &exp}))
	got := must(s.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: l.TokenHash}))
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("get = %+v, want %+v", got, l)
	}
	_, err := s.DownloadLinkIncrementCount(ctx, &db.DownloadLinkIncrementCountParams{ID: l.ID, Now: exp})
	wantErr(t, err, db.ErrPrecondition) // expired
	// The count is informational: the limit is enforced on bytes.
	for want := 1; want <= 3; want++ {
		got := must(s.DownloadLinkIncrementCount(ctx, &db.DownloadLinkIncrementCountParams{ID: l.ID, Now: t0}))
		if got.DownloadCount != want {
			t.Fatalf("count = %d, want %d", got.DownloadCount, want)
		}
	}
	unlimited := must(s.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: p.ID, TokenHash: randBytes(t), CreatedAt: t0.Add(time.Second)}))
	for range 3 {
		must(s.DownloadLinkIncrementCount(ctx, &db.DownloadLinkIncrementCountParams{ID: unlimited.ID, Now: t0.Add(1000 * time.Hour)}))
	}
	if list := must(s.DownloadLinkListByPackage(ctx, &db.DownloadLinkListByPackageParams{PackageID: p.ID})); len(list) != 2 || list[0].ID != l.ID {
		t.Fatalf("list = %+v", list)
	}
	if err := s.DownloadLinkDelete(ctx, &db.DownloadLinkDeleteParams{ID: l.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.DownloadLinkGetByHash(ctx, &db.DownloadLinkGetByHashParams{TokenHash: l.TokenHash})
	wantErr(t, err, db.ErrNotFound)
}

func testDownloadLinkBytes(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	l := must(s.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: p.ID, TokenHash: randBytes(t), DownloadLimit: 2, CreatedAt: t0}))
	charge := func(file string, n, max int64) error {
		_, err := s.DownloadLinkFileCharge(ctx, &db.DownloadLinkFileChargeParams{LinkID: l.ID, FileID: file, Bytes: n, MaxBytes: max})
		return err
	}
	const max = 1 << 40 // large values stay exact in both dialects
	wantErr(t, charge("a", max+1, max), db.ErrPrecondition)
	if err := charge("a", max-10, max); err != nil {
		t.Fatal(err)
	}
	wantErr(t, charge("a", 11, max), db.ErrPrecondition)
	if err := charge("a", 10, max); err != nil {
		t.Fatal(err)
	}
	wantErr(t, charge("a", 1, max), db.ErrPrecondition)
	if err := charge("b", 0, 0); err != nil { // an empty file costs nothing
		t.Fatal(err)
	}
	if err := s.DownloadLinkFileRefund(ctx, &db.DownloadLinkFileRefundParams{LinkID: l.ID, FileID: "a", Bytes: 7}); err != nil {
		t.Fatal(err)
	}
	if err := charge("a", 7, max); err != nil {
		t.Fatal("a refund did not give the bytes back:", err)
	}
	if err := s.DownloadLinkFileRefund(ctx, &db.DownloadLinkFileRefundParams{LinkID: l.ID, FileID: "b", Bytes: 5}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DownloadLinkFileRefund(ctx, &db.DownloadLinkFileRefundParams{LinkID: l.ID, FileID: "never", Bytes: 5}), db.ErrNotFound)
	list := must(s.DownloadLinkFileList(ctx, &db.DownloadLinkFileListParams{LinkID: l.ID}))
	if len(list) != 2 || list[0].FileID != "a" || list[0].BytesServed != max || list[1].FileID != "b" || list[1].BytesServed != 0 {
		t.Fatalf("list = %+v %+v", list[0], list[len(list)-1])
	}

	// Bytes lost in a broken connection are forgiven, but only up to the cap
	// over the link's life: breaking connections on purpose cannot reopen it.
	const size = 100
	if err := charge("d", 2*size, 2*size); err != nil {
		t.Fatal(err)
	}
	lost := func(n int64) {
		t.Helper()
		if err := s.DownloadLinkFileRefund(ctx, &db.DownloadLinkFileRefundParams{LinkID: l.ID, FileID: "d", Lost: n, MaxLost: 30}); err != nil {
			t.Fatal(err)
		}
	}
	lost(20)
	if err := charge("d", 20, 2*size); err != nil {
		t.Fatal("lost bytes were not forgiven:", err)
	}
	lost(20) // only 10 of these are still under the cap
	wantErr(t, charge("d", 11, 2*size), db.ErrPrecondition)
	if err := charge("d", 10, 2*size); err != nil {
		t.Fatal(err)
	}
	lost(50) // the cap is used up
	wantErr(t, charge("d", 1, 2*size), db.ErrPrecondition)

	// Concurrent charges of one file never pass the limit together.
	const workers, limit = 24, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range workers {
		wg.Go(func() {
			err := charge("c", 1, limit)
			if err != nil && !errors.Is(err, db.ErrPrecondition) {
				t.Errorf("charge: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			}
		})
	}
	wg.Wait()
	if ok != limit {
		t.Fatalf("%d concurrent one-byte charges passed, want %d", ok, limit)
	}

	// The bytes go with the link.
	if err := s.DownloadLinkDelete(ctx, &db.DownloadLinkDeleteParams{ID: l.ID}); err != nil {
		t.Fatal(err)
	}
	if list := must(s.DownloadLinkFileList(ctx, &db.DownloadLinkFileListParams{LinkID: l.ID})); len(list) != 0 {
		t.Fatalf("rows outlived their link: %+v", list)
	}
}

func testInTx(t *testing.T, s db.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx db.Tx) error {
		mkUser(t, tx, "rolled@example.com")
		if _, err := tx.SQLTx().ExecContext(ctx, "UPDATE users SET is_admin = true"); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom)
	_, err = s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: "rolled@example.com"})
	wantErr(t, err, db.ErrNotFound)

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("InTx swallowed a panic")
			}
		}()
		_ = s.InTx(ctx, func(tx db.Tx) error {
			mkUser(t, tx, "panic@example.com")
			panic("boom")
		})
	}()
	_, err = s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: "panic@example.com"})
	wantErr(t, err, db.ErrNotFound)

	if err := s.InTx(ctx, func(tx db.Tx) error {
		u := mkUser(t, tx, "kept@example.com")
		_, err := tx.SQLTx().ExecContext(ctx, "UPDATE users SET is_admin = true WHERE id = $1", u.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if u := must(s.UserGetByEmail(ctx, &db.UserGetByEmailParams{Email: "kept@example.com"})); !u.IsAdmin {
		t.Fatalf("raw SQL in the transaction was lost: %+v", u)
	}
}

// testConcurrentAdmission is the pattern portal admission relies on: lock
// the package with PackageAddUsage, then check a limit against the files,
// then insert. However many admissions race, the limit holds.
func testConcurrentAdmission(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	const workers, limit = 12, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.InTx(ctx, func(tx db.Tx) error {
				pkg, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: 1, BytesDelta: 1})
				if err != nil {
					return err
				}
				files, err := tx.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: p.ID})
				if err != nil {
					return err
				}
				if len(files) >= limit || pkg.FileCount > limit {
					return errLimit
				}
				_, err = tx.FileCreate(ctx, &db.FileCreateParams{PackageID: p.ID, Path: fmt.Sprint(i), PathKey: fmt.Sprint(i), Size: 1})
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, errLimit) {
			t.Fatalf("admission failed: %v", err)
		}
	}
	files := must(s.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: p.ID}))
	pkg := must(s.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: p.ID}))
	if len(files) != limit || pkg.FileCount != limit || pkg.TotalSize != limit {
		t.Fatalf("%d files, count %d, size %d; want %d of each", len(files), pkg.FileCount, pkg.TotalSize, limit)
	}
}

var errLimit = errors.New("limit")

func testTimes(t *testing.T, s db.Store) {
	ctx := context.Background()
	local := time.FixedZone("UTC+5", 5*3600)
	in := time.Date(2026, 12, 31, 23, 59, 59, 999999999, local)
	u := must(s.UserCreate(ctx, &db.UserCreateParams{Email: "t@example.com", PasswordHash: "h", CreatedAt: in}))
	want := in.UTC().Truncate(time.Microsecond)
	if u.CreatedAt != want {
		t.Fatalf("CreatedAt = %v, want %v (UTC, microseconds)", u.CreatedAt, want)
	}
	again := must(s.UserGetByID(ctx, &db.UserGetByIDParams{ID: u.ID}))
	if again.CreatedAt != want {
		t.Fatalf("read back %v, want %v", again.CreatedAt, want)
	}
	before := time.Now().Add(-time.Minute)
	v := must(s.UserCreate(ctx, &db.UserCreateParams{Email: "zero@example.com", PasswordHash: "h"}))
	if v.CreatedAt.Before(before) || v.CreatedAt.Location() != time.UTC {
		t.Fatalf("zero CreatedAt became %v, want about now in UTC", v.CreatedAt)
	}
}
