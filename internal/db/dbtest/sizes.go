package dbtest

import (
	"context"
	"math"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
)

// testSizesStayIntegers: a package total or file size past int64 is refused
// with ErrOutOfRange and nothing changes. SQLite would otherwise store the
// sum as a REAL that no later read of the package can scan (issue 9 item 4).
func testSizesStayIntegers(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	must(s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: 1, BytesDelta: math.MaxInt64}))
	_, err := s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: 1, BytesDelta: math.MaxInt64})
	wantErr(t, err, db.ErrOutOfRange)
	_, err = s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, BytesDelta: 1})
	wantErr(t, err, db.ErrOutOfRange)
	err = s.InTx(ctx, func(tx db.Tx) error {
		_, err := tx.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, BytesDelta: 1})
		return err
	})
	wantErr(t, err, db.ErrOutOfRange)
	got := must(s.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: p.ID}))
	if got.TotalSize != math.MaxInt64 || got.FileCount != 1 {
		t.Fatalf("after refused overflows the package reads %d files, %d bytes", got.FileCount, got.TotalSize)
	}
	got = must(s.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: p.ID, FilesDelta: -1, BytesDelta: -math.MaxInt64}))
	if got.TotalSize != 0 || got.FileCount != 0 {
		t.Fatalf("after giving everything back: %d files, %d bytes", got.FileCount, got.TotalSize)
	}
	f := must(s.FileCreate(ctx, &db.FileCreateParams{PackageID: p.ID, Path: "big", PathKey: "big", Size: math.MaxInt64}))
	if f.Size != math.MaxInt64 {
		t.Fatalf("file size %d", f.Size)
	}
}

// testFileGetInFolder: one file inside a folder key, by byte range of keys,
// only in the package asked about.
func testFileGetInFolder(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	other := mkPackage(t, s, "")
	for _, path := range []string{"a/b/c.txt", "ab.txt", "a0/x.txt"} {
		mkFile(t, s, p.ID, path)
	}
	mkFile(t, s, other.ID, "z/y.txt")
	cases := []struct{ folder, want string }{
		{"a", "a/b/c.txt"},
		{"a/b", "a/b/c.txt"},
		{"a/b/c.txt", ""},
		{"ab.txt", ""},
		{"a0", "a0/x.txt"},
		{"z", ""},
	}
	for _, c := range cases {
		run(t, c.folder, func(t *testing.T) {
			f, err := s.FileGetInFolder(ctx, &db.FileGetInFolderParams{PackageID: p.ID, FolderKey: c.folder})
			switch {
			case c.want == "":
				wantErr(t, err, db.ErrNotFound)
			case err != nil:
				t.Fatalf("want %q, got %v", c.want, err)
			case f.Path != c.want:
				t.Fatalf("got %q, want %q", f.Path, c.want)
			}
		})
	}
}
