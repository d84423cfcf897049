package portal

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/testbed"
)

// issue 9 item 4: sizes near the int64 limit on a portal without limits. A
// sum that would overflow is refused as too large (413), and the package
// stays readable and usable afterwards.
func TestSizeSumsThatWouldOverflowAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	_, tok := f.pkg(t, "p")
	f.admit(t, tok, "huge1.bin", math.MaxInt64)
	_, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "huge2.bin", Size: math.MaxInt64})
	wantCode(t, err, "package_too_large")
	_, err = f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "part.bin", Size: 1, Partial: true, FileSize: 1})
	wantCode(t, err, "package_too_large")
	// A deferred length that completes past the limit.
	later := f.admit(t, tok, "later.bin", -1)
	_, err = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: later.ID}, Size: 10}, nil)
	wantCode(t, err, "package_too_large")
	p, err := f.svc.PackageByToken(ctx, tok)
	if err != nil || p.TotalSize != math.MaxInt64 || p.FileCount != 2 {
		t.Fatalf("package after refused overflows: %+v, %v", p, err)
	}
	small := f.admit(t, tok, "small.bin", 0)
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: small.ID}, Size: 0}, nil); err != nil {
		t.Fatalf("completing an empty file next to the huge one: %v", err)
	}
}

// issue 9 item 1: the upload whose file row a newer upload of the same path
// replaced is refused when it completes (410 upload_replaced), and the newer
// one completes.
func TestCompletingAReplacedUploadIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	_, tok := f.pkg(t, "p")
	a, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "race.txt", Size: 5, UploadID: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "race.txt", Size: 5, UploadID: "B"})
	if err != nil || b.Replaced == nil || b.Replaced.UploadID != "A" {
		t.Fatalf("second admission: %+v, %v; want it to name the replaced upload A", b, err)
	}
	_, err = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: a.File.ID, UploadID: "A"}, Size: 5, Path: "race.txt"}, nil)
	wantCode(t, err, "upload_replaced")
	if e := AsError(err); e.Status != 410 || !strings.Contains(e.Message, "race.txt") {
		t.Fatalf("refusal %d %q", e.Status, e.Message)
	}
	if _, err := f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: b.File.ID, UploadID: "B"}, Size: 5}, nil); err != nil {
		t.Fatalf("the newer upload: %v", err)
	}
}

// issue 9 item 11: a folder spelled differently from one already in the
// package collides, like a file does.
func TestFoldersDifferingOnlyInCaseCollide(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.portal(t, "p", db.Limits{}, "")
	_, tok := f.pkg(t, "p")
	f.admit(t, tok, "Dir/Sub/a.txt", 1)
	for _, p := range []string{"dir/b.txt", "Dir/sub/b.txt", "DIR/SUB/x/y.txt"} {
		_, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: p, Size: 1})
		wantCode(t, err, "path_duplicate")
		_, err = f.svc.Admit(ctx, Upload{Token: tok, RelativePath: p, Size: 1, Partial: true, FileSize: 1})
		wantCode(t, err, "path_duplicate")
	}
	f.admit(t, tok, "Dir/Sub/x/y.txt", 1)
	f.admit(t, tok, "Dir/other/z.txt", 1)
	f.admit(t, tok, "dir2/z.txt", 1)
}

// issue 9 item 1 on PostgreSQL, where transactions run side by side: an
// upload completing while a newer upload of the same path is admitted ends
// one way or the other (the first completes and the second is a duplicate,
// or the second replaces it and the first is refused as replaced), never
// both, never neither, and never a failure.
func TestCompletionRacingAReplacementEndsOneWayOnPostgres(t *testing.T) {
	dsn := testbed.Postgres(t).CreateDatabase(t)
	store, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	f := fixtureOn(store)
	f.portal(t, "p", db.Limits{}, "")
	_, tok := f.pkg(t, "p")
	for i := range 20 {
		path := fmt.Sprintf("race%d.txt", i)
		a, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: path, Size: 5, UploadID: "A" + path})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var completeErr, admitErr error
		wg.Go(func() {
			_, completeErr = f.svc.CompleteFile(ctx, Completion{FileRef: FileRef{FileID: a.File.ID, UploadID: "A" + path}, Size: 5, Path: path}, nil)
		})
		wg.Go(func() {
			_, admitErr = f.svc.Admit(ctx, Upload{Token: tok, RelativePath: path, Size: 5, UploadID: "B" + path})
		})
		wg.Wait()
		ce, ae := AsError(completeErr), AsError(admitErr)
		switch {
		case completeErr == nil && ae != nil && ae.Code == "path_duplicate":
		case ce != nil && ce.Code == "upload_replaced" && admitErr == nil:
		default:
			t.Fatalf("%s: completion %v, admission %v", path, completeErr, admitErr)
		}
	}
}
