package portal

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
)

// The object name hook runs for whole files and for partials, after the
// path rules and before anything is reserved: its refusal reaches the
// sender as it is, and a failing check is an error, never an admission.
func TestAdmitAsksTheObjectNameCheckBeforeReservingAnything(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var asked []string
	tooLong := &Error{Status: http.StatusUnprocessableEntity, Code: "object_name_too_long", Message: "S3 object keys are at most 1,024 bytes"}
	broken := errors.New("database gone")
	f.svc.objectNames = func(ctx context.Context, q db.Queries, pkg *db.Package, p *db.Portal, path string) error {
		asked = append(asked, path)
		switch path {
		case "long/clip.mov":
			return tooLong
		case "broken.mov":
			return broken
		}
		if p == nil || p.Slug != "names" || pkg.PortalID != p.ID {
			t.Errorf("check for %s got portal %+v and package %+v", path, p, pkg)
		}
		return nil
	}
	f.portal(t, "names", db.Limits{}, "")
	pkg, tok := f.pkg(t, "names")
	for _, tc := range []struct {
		name string
		u    Upload
		code string
	}{
		{"whole file", Upload{Token: tok, RelativePath: "long/clip.mov", Size: 10}, "object_name_too_long"},
		{"partial", Upload{Token: tok, RelativePath: "long/clip.mov", Size: 5, Partial: true, FileSize: 10}, "object_name_too_long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Admit(ctx, tc.u)
			wantCode(t, err, tc.code)
		})
	}
	if _, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "broken.mov", Size: 1}); !errors.Is(err, broken) || AsError(err) != nil {
		t.Fatalf("a failing check gave %v, want the failure as an error (not a refusal)", err)
	}
	if _, err := f.svc.Admit(ctx, Upload{Token: tok, RelativePath: "../x.mov", Size: 1}); AsError(err) == nil || AsError(err).Code == "object_name_too_long" {
		t.Fatalf("a path pathsafe refuses got %v: the check must come after the path rules", err)
	}
	got, err := f.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: pkg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.FileCount != 0 || got.TotalSize != 0 {
		t.Fatalf("refused uploads reserved %d files and %d bytes", got.FileCount, got.TotalSize)
	}
	f.admit(t, tok, "fine.mov", 3)
	if want := []string{"long/clip.mov", "long/clip.mov", "broken.mov", "fine.mov"}; len(asked) != len(want) {
		t.Fatalf("checked %q, want %q", asked, want)
	}
}
