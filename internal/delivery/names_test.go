package delivery_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/portal"
)

// TestAdmissionChecksTheFullObjectNameOnEveryStorageOfThePortal: the name
// checked is the storage prefix + root + portal + package (with the longest
// "(n)" suffix) + path, against each provider's own rule (bytes on S3,
// characters and segments on Azure), on every connection the portal
// delivers to.
func TestAdmissionChecksTheFullObjectNameOnEveryStorageOfThePortal(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	conn := func(name, method, prefix string) string {
		c, err := store.ConnectionCreate(ctx, &db.ConnectionCreateParams{Name: name, BaseURL: "u", AppID: "a", TokenSealed: "t",
			StorageID: name, StorageMethod: method, StoragePath: prefix, StorageAddsUUID: strings.HasSuffix(name, "uuid"),
			PortalRoot: "Portal Downloads", SendRoot: "MASV"})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	s3, az, azDot := conn("s3", "S3", "media/ferry"), conn("azure", "AZURE", ""), conn("azure-dot", "AZURE", "media.")
	s3UUID := conn("s3-uuid", "S3", "media/ferry")
	pkg := &db.Package{Name: "Shoot"}
	head := len("media/ferry/Portal Downloads/P/Shoot" + delivery.TitleSuffixReserve + "/")
	cases := []struct {
		name  string
		conns []string
		path  string
		code  string // "" = accepted
		in    string // in the message
	}{
		{"fits S3 exactly", []string{s3}, strings.Repeat("a", 1024-head), "", ""},
		{"one byte over on S3", []string{s3}, strings.Repeat("a", 1025-head), "object_name_too_long", "S3 object keys are at most 1,024 bytes"},
		{"room for the UUID iconik adds to file names", []string{s3UUID}, strings.Repeat("a", 1024-head), "object_name_too_long", "by at least 37 bytes"},
		{"S3 counts bytes", []string{s3}, strings.Repeat("é", 490), "object_name_too_long", "Shorten its path by at least"},
		{"Azure counts characters", []string{az}, strings.Repeat("é", 490), "", ""},
		{"every connection is checked", []string{az, s3}, strings.Repeat("é", 490), "object_name_too_long", "S3"},
		{"Azure's 254 segments", []string{az}, strings.Repeat("d/", 251) + "f", "object_name_too_long", "254 path segments"},
		{"Azure refuses a segment ending with a dot", []string{azDot}, "clip.mov", "object_name_refused", "ending with a dot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := delivery.CheckAdmission(ctx, store, pkg, &db.Portal{Name: "P", ConnectionIDs: c.conns}, c.path)
			pe := portal.AsError(err)
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.code != "" && (pe == nil || pe.Code != c.code || pe.Status != 422 || !strings.Contains(pe.Message, c.in)):
				t.Fatalf("got %v, want a 422 %s mentioning %q", err, c.code, c.in)
			}
		})
	}
	if err := delivery.CheckAdmission(ctx, store, pkg, nil, strings.Repeat("a", 2000)); err != nil {
		t.Fatalf("a package without a portal has no storage to check yet: %v", err)
	}
}
