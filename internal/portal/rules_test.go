package portal

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

func ptr[T any](v T) *T { return &v }

func TestValidatePortal(t *testing.T) {
	good := func() PortalInput {
		return PortalInput{Name: " Dailies ", Slug: "Dailies-2026", Active: true,
			Recipients: []string{"Ed@Example.com", "ed@example.com", "b@example.org"},
			Limits:     db.Limits{MaxFileSize: 10, MaxPackageSize: 100, AllowedExtensions: []string{".MOV", "mxf", "tar.gz"}, DeniedExtensions: []string{"exe"}}}
	}
	cases := []struct {
		name     string
		edit     func(*PortalInput)
		wantCode string
	}{
		{"good", func(*PortalInput) {}, ""},
		{"empty name", func(p *PortalInput) { p.Name = "  " }, "invalid_name"},
		{"long name", func(p *PortalInput) { p.Name = strings.Repeat("x", MaxNameLen+1) }, "invalid_name"},
		{"slug with slash", func(p *PortalInput) { p.Slug = "a/b" }, "invalid_slug"},
		{"slug with leading hyphen", func(p *PortalInput) { p.Slug = "-a" }, "invalid_slug"},
		{"slug with trailing hyphen", func(p *PortalInput) { p.Slug = "a-" }, "invalid_slug"},
		{"slug with dot dot", func(p *PortalInput) { p.Slug = ".." }, "invalid_slug"},
		{"slug with unicode", func(p *PortalInput) { p.Slug = "café" }, "invalid_slug"},
		{"slug too long", func(p *PortalInput) { p.Slug = strings.Repeat("a", 65) }, "invalid_slug"},
		{"empty slug", func(p *PortalInput) { p.Slug = "" }, "invalid_slug"},
		{"recipient with display name", func(p *PortalInput) { p.Recipients = []string{"Ed <ed@example.com>"} }, "invalid_recipient"},
		{"recipient list in one", func(p *PortalInput) { p.Recipients = []string{"a@example.com, b@example.com"} }, "invalid_recipient"},
		{"recipient without domain dot", func(p *PortalInput) { p.Recipients = []string{"ed@localhost"} }, "invalid_recipient"},
		{"too many recipients", func(p *PortalInput) { p.Recipients = make([]string, MaxRecipients+1) }, "invalid_recipient"},
		{"negative file size", func(p *PortalInput) { p.Limits.MaxFileSize = -1 }, "invalid_limits"},
		{"negative count", func(p *PortalInput) { p.Limits.MaxFileCount = -1 }, "invalid_limits"},
		{"file larger than package", func(p *PortalInput) { p.Limits.MaxFileSize = 1000 }, "invalid_limits"},
		{"extension with slash", func(p *PortalInput) { p.Limits.DeniedExtensions = []string{"a/b"} }, "invalid_limits"},
		{"extension with space", func(p *PortalInput) { p.Limits.AllowedExtensions = []string{"m ov"} }, "invalid_limits"},
		{"extension allowed and denied", func(p *PortalInput) { p.Limits.DeniedExtensions = []string{"mov"} }, "invalid_limits"},
		{"negative retention", func(p *PortalInput) { p.RetentionDays = -1 }, "invalid_retention"},
		{"huge retention", func(p *PortalInput) { p.RetentionDays = MaxRetentionDays + 1 }, "invalid_retention"},
		{"short password", func(p *PortalInput) { p.Password = ptr("abc") }, "invalid_password"},
		{"removing password is fine", func(p *PortalInput) { p.Password = ptr("") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := good()
			c.edit(&in)
			err := ValidatePortal(&in)
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e := AsError(err); e == nil || e.Code != c.wantCode || e.Status != 400 || e.Field == "" {
				t.Fatalf("err = %#v, want code %s with a field", e, c.wantCode)
			}
		})
	}
	in := good()
	if err := ValidatePortal(&in); err != nil {
		t.Fatal(err)
	}
	if in.Name != "Dailies" || in.Slug != "dailies-2026" || strings.Join(in.Recipients, ",") != "ed@example.com,b@example.org" ||
		strings.Join(in.Limits.AllowedExtensions, ",") != "mov,mxf,tar.gz" {
		t.Fatalf("not normalised: %+v", in)
	}
}

func TestCheckFile(t *testing.T) {
	limits := db.Limits{MaxFileSize: 100, AllowedExtensions: []string{"mov", "tar.gz"}, DeniedExtensions: []string{"exe", "mov.exe"}}
	cases := []struct {
		path     string
		size     int64
		limits   db.Limits
		wantCode string
	}{
		{"a/clip.mov", 100, limits, ""},
		{"a/CLIP.MOV", 1, limits, ""},
		{"x.tar.gz", 1, limits, ""},
		{"clip.mov", 101, limits, "file_too_large"},
		{"clip.mov.exe", 1, limits, "extension_denied"},
		{"setup.EXE", 1, limits, "extension_denied"},
		{"notes.txt", 1, limits, "extension_not_allowed"},
		{"movie", 1, limits, "extension_not_allowed"},
		{"x.gz", 1, limits, "extension_not_allowed"},
		{"clip.mov", -1, limits, "length_required"},
		{"clip.mov", -1, db.Limits{}, ""},
		{"anything.bin", 1 << 50, db.Limits{}, ""},
		{"setup.exe", 1, db.Limits{DeniedExtensions: []string{"exe"}}, "extension_denied"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			p, err := pathsafe.Parse(c.path)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckFile(c.limits, p, c.size)
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e := AsError(err); e == nil || e.Code != c.wantCode || e.Message == "" {
				t.Fatalf("err = %v, want %s", err, c.wantCode)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	cases := []struct{ in, want string }{
		{" Ed@Example.COM ", "ed@example.com"},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org"},
		{"", ""},
		{"ed", ""},
		{"@example.com", ""},
		{"ed@", ""},
		{"ed@example.", ""},
		{"Ed <ed@example.com>", ""},
		{"ed@example.com\nBcc: x@example.com", ""},
		{strings.Repeat("a", 250) + "@example.com", ""},
	}
	for _, c := range cases {
		got, err := NormalizeEmail(c.in)
		if (c.want == "") != (err != nil) || got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestTokensAreRandomURLSafeAndStoredHashed(t *testing.T) {
	a, ha, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, hb, _ := NewToken()
	if a == b || bytes.Equal(ha, hb) {
		t.Fatal("two tokens are equal")
	}
	if len(a) < 43 || strings.ContainsAny(a, "+/=") {
		t.Fatalf("token %q is short or not URL-safe", a)
	}
	if bytes.Contains(ha, []byte(a)) || !TokenEqual(ha, HashToken(a)) || TokenEqual(ha, hb) || TokenEqual(ha, ha[:31]) {
		t.Fatal("hashing or comparison is wrong")
	}
}

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q is not a salted argon2id PHC string", h)
	}
	cases := []struct {
		name, hash, pw string
		ok             bool
		bad            bool
	}{
		{"right", h, "correct horse", true, false},
		{"wrong", h, "correct horsE", false, false},
		{"empty", h, "", false, false},
		{"not a hash", "plain", "x", false, true},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv", "x", false, true},
		{"huge memory", strings.Replace(h, "m=19456", "m=4000000", 1), "correct horse", false, true},
		{"bad salt", strings.Join(append(strings.Split(h, "$")[:4], "!!", strings.Split(h, "$")[5]), "$"), "x", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := CheckPassword(c.hash, c.pw)
			if ok != c.ok || (err != nil) != c.bad {
				t.Fatalf("CheckPassword = %v, %v; want %v, bad=%v", ok, err, c.ok, c.bad)
			}
		})
	}
}

func TestExpiresAt(t *testing.T) {
	at := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	if ExpiresAt(at, 0) != nil || ExpiresAt(at, -1) != nil {
		t.Fatal("no retention must mean no expiry")
	}
	if got := ExpiresAt(at, 30); !got.Equal(time.Date(2026, 4, 27, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("30 days after %v = %v", at, got)
	}
}

func TestDefaultPackageName(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	if got := DefaultPackageName("ed@example.com", at); got != "Package from ed@example.com 2026-01-02 02:04" {
		t.Fatal(got)
	}
	if got := DefaultPackageName("", at); got != "Package 2026-01-02 02:04" {
		t.Fatal(got)
	}
}
