package pathsafe

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

func TestCleanRefusesHostilePaths(t *testing.T) {
	long := strings.Repeat("a", 256)
	cases := []struct {
		name     string
		rel, fn  string
		wantCode Code
	}{
		{"empty", "", "", CodeEmpty},
		{"null relative path and no name", "null", "", CodeEmpty},
		{"parent segment", "../etc/passwd", "", CodeDotSegment},
		{"parent in the middle", "a/../../b.txt", "", CodeDotSegment},
		{"parent as file name", "a/..", "", CodeDotSegment},
		{"dot segment", "a/./b.txt", "", CodeDotSegment},
		{"dot only", ".", "", CodeDotSegment},
		{"absolute", "/etc/passwd", "", CodeAbsolute},
		{"absolute via filename only", "", "/etc/passwd", CodeSeparatorInName},
		{"UNC", "//server/share/x", "", CodeAbsolute},
		{"drive letter", "C:/Windows/x.dll", "", CodeAbsolute},
		{"drive letter without slash", "c:x.dll", "", CodeAbsolute},
		{"backslash traversal", `..\..\x`, "", CodeBackslash},
		{"backslash folder", `a\b.txt`, "", CodeBackslash},
		{"NUL byte", "a\x00b.txt", "", CodeControlCharacter},
		{"newline", "a\nb.txt", "", CodeControlCharacter},
		{"escape sequence", "\x1b[31mred.txt", "", CodeControlCharacter},
		{"DEL", "a\x7fb", "", CodeControlCharacter},
		{"C1 control", "a\u0085b", "", CodeControlCharacter},
		{"right-to-left override", "evil\u202Egpj.exe", "", CodeControlCharacter},
		{"invalid UTF-8", "a\xffb.txt", "", CodeInvalidUTF8},
		{"overlong UTF-8 slash", "a\xc0\xafb", "", CodeInvalidUTF8},
		{"doubled slash", "a//b.txt", "", CodeEmptySegment},
		{"trailing slash without name", "a/b/", "", CodeEmptySegment},
		{"segment too long", long, "", CodeSegmentTooLong},
		{"path too long", strings.Repeat("abcdefgh/", 456) + "x", "", CodeTooLong},
		{"CON", "CON", "", CodeReservedName},
		{"con with extension", "a/con.txt", "", CodeReservedName},
		{"Aux with double extension", "Aux.tar.gz", "", CodeReservedName},
		{"NUL folder", "nul/file.txt", "", CodeReservedName},
		{"COM1", "com1", "", CodeReservedName},
		{"LPT9 with extension", "x/LPT9.mov", "", CodeReservedName},
		{"COM superscript", "COM\u00b9.txt", "", CodeReservedName},
		{"reserved with space before dot", "CON .txt", "", CodeReservedName},
		{"CONIN$", "conin$", "", CodeReservedName},
		{"trailing dot", "a/b.", "", CodeTrailingDotSpace},
		{"trailing space folder", "a /b.txt", "", CodeTrailingDotSpace},
		{"three dots", ".../x", "", CodeTrailingDotSpace},
		{"colon stream", "a/b.txt:secret", "", CodeReservedCharacter},
		{"slash in filename", "a/b.txt", "c/d.txt", CodeSeparatorInName},
		{"traversal in filename", "a/", "..", CodeDotSegment},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Clean(tc.rel, tc.fn)
			if err == nil {
				t.Fatalf("Clean(%q, %q) = %q, want refusal %s", tc.rel, tc.fn, p, tc.wantCode)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *pathsafe.Error", err)
			}
			if pe.Code != tc.wantCode {
				t.Fatalf("code = %s (%s), want %s", pe.Code, pe.Message, tc.wantCode)
			}
			if strings.ContainsFunc(pe.Message, unicode.IsControl) {
				t.Fatalf("message carries a raw control character: %q", pe.Message)
			}
		})
	}
}

func TestCleanAcceptsAndNormalises(t *testing.T) {
	cases := []struct {
		name       string
		rel, fn    string
		want       string
		dir, base  string
		ancestors  int
		wantKeyFor string // another spelling with the same key, if any
	}{
		{"plain file", "", "clip.mov", "clip.mov", "", "clip.mov", 0, "CLIP.MOV"},
		{"uppy null means no folder", "null", "clip.mov", "clip.mov", "", "clip.mov", 0, ""},
		{"folder from relative path", "Day 1/Cam A/clip.mov", "clip.mov", "Day 1/Cam A/clip.mov", "Day 1/Cam A", "clip.mov", 2, "day 1/cam a/CLIP.mov"},
		{"relative path only", "a/b.txt", "", "a/b.txt", "a", "b.txt", 1, ""},
		{"renamed file keeps folder", "a/old.txt", "new.txt", "a/new.txt", "a", "new.txt", 1, ""},
		{"folder only relative path", "a/b/", "c.txt", "a/b/c.txt", "a/b", "c.txt", 2, ""},
		{"NFD becomes NFC", "Cafe\u0301/re\u0301sume\u0301.pdf", "", "Caf\u00e9/r\u00e9sum\u00e9.pdf", "Caf\u00e9", "r\u00e9sum\u00e9.pdf", 1, "CAFÉ/RÉSUMÉ.PDF"},
		{"leading dot file", ".hidden", "", ".hidden", "", ".hidden", 0, ""},
		{"name starting with two dots", "..0/..x", "", "..0/..x", "..0", "..x", 1, ""},
		{"dots inside names", "v1.2..3/a..b", "", "v1.2..3/a..b", "v1.2..3", "a..b", 1, ""},
		{"name starting with CON is fine", "CONTRACT.pdf", "", "CONTRACT.pdf", "", "CONTRACT.pdf", 0, ""},
		{"COM10 is fine", "COM10", "", "COM10", "", "COM10", 0, ""},
		{"folder named null", "null/a.txt", "", "null/a.txt", "null", "a.txt", 1, ""},
		{"emoji and CJK", "映像/🎬 take.mov", "", "映像/🎬 take.mov", "映像", "🎬 take.mov", 1, ""},
		{"kelvin sign normalises", "\u212Aelvin", "", "Kelvin", "", "Kelvin", 0, "kelvin"},
		{"255-byte segment", strings.Repeat("é", 127) + "x", "", strings.Repeat("é", 127) + "x", "", strings.Repeat("é", 127) + "x", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Clean(tc.rel, tc.fn)
			if err != nil {
				t.Fatalf("Clean(%q, %q): %v", tc.rel, tc.fn, err)
			}
			if p.String() != tc.want || p.Dir() != tc.dir || p.Base() != tc.base || len(p.Ancestors()) != tc.ancestors {
				t.Fatalf("got %q dir %q base %q ancestors %q; want %q dir %q base %q", p, p.Dir(), p.Base(), p.Ancestors(), tc.want, tc.dir, tc.base)
			}
			if tc.wantKeyFor != "" && Key(tc.wantKeyFor) != p.Key() {
				t.Fatalf("Key(%q) = %q, want the same as Key(%q) = %q", tc.wantKeyFor, Key(tc.wantKeyFor), p, p.Key())
			}
		})
	}
}

func TestSetRefusesCaseDuplicatesAndFileFolderClashes(t *testing.T) {
	cases := []struct {
		name     string
		paths    []string
		wantCode Code // for the last path; "" = all accepted
	}{
		{"distinct files", []string{"a/b.txt", "a/c.txt", "d.txt"}, ""},
		{"exact duplicate", []string{"a/b.txt", "a/b.txt"}, CodeDuplicate},
		{"case duplicate", []string{"a/b.txt", "A/B.TXT"}, CodeDuplicate},
		{"unicode form duplicate", []string{"caf\u00e9.txt", "cafe\u0301.txt"}, CodeDuplicate},
		{"sharp s folds to ss", []string{"stra\u00dfe.txt", "STRASSE.txt"}, CodeDuplicate},
		{"file then folder", []string{"a/b", "a/b/c.txt"}, CodeFileFolder},
		{"folder then file", []string{"a/b/c.txt", "a/b"}, CodeFileFolder},
		{"folder then file differing by case", []string{"a/b/c.txt", "A/B"}, CodeFileFolder},
		{"shared folder is fine", []string{"a/b/c.txt", "a/b/d.txt", "a/e.txt"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s Set
			for i, raw := range tc.paths {
				p, err := Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				err = s.Add(p)
				last := i == len(tc.paths)-1
				switch {
				case !last && err != nil:
					t.Fatalf("Add(%q): %v", raw, err)
				case last && tc.wantCode == "" && err != nil:
					t.Fatalf("Add(%q): %v", raw, err)
				case last && tc.wantCode != "" && CodeOf(err) != tc.wantCode:
					t.Fatalf("Add(%q) = %v, want code %s", raw, err, tc.wantCode)
				}
			}
		})
	}
}

func TestJoinStaysInsideRoot(t *testing.T) {
	root := t.TempDir()
	p, err := Clean("a/b/c.txt", "c.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Join(root, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "a", "b", "c.txt"); got != want {
		t.Fatalf("Join = %q, want %q", got, want)
	}
	if _, err := Join("relative/root", p); err == nil {
		t.Fatal("Join accepted a relative root")
	}
	if _, err := Join(root, Path{}); err == nil {
		t.Fatal("Join accepted the zero Path")
	}
}

// checkInvariants is shared by the fuzz target and its seed corpus.
func checkInvariants(t *testing.T, rel, name string) {
	p, err := Clean(rel, name)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
			t.Fatalf("Clean(%q, %q) error %v has no code or message", rel, name, err)
		}
		if strings.ContainsFunc(pe.Message, unicode.IsControl) {
			t.Fatalf("message carries a raw control character: %q", pe.Message)
		}
		return
	}
	s := p.String()
	if !norm.NFC.IsNormalString(s) {
		t.Fatalf("Clean(%q, %q) = %q is not NFC", rel, name, s)
	}
	again, err := Parse(s)
	if err != nil || again != p {
		t.Fatalf("output %q does not re-validate to itself: %q, %v", s, again, err)
	}
	if idem, err := Clean(s, p.Base()); err != nil || idem != p {
		t.Fatalf("Clean not idempotent on %q: %q, %v", s, idem, err)
	}
	if len(s) > MaxPathBytes || strings.HasPrefix(s, "/") || strings.Contains(s, "\\") {
		t.Fatalf("output %q breaks a rule", s)
	}
	for _, seg := range p.Segments() {
		if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegmentBytes {
			t.Fatalf("output %q has bad segment %q", s, seg)
		}
	}
	root := filepath.FromSlash("/srv/ferry/data")
	joined, err := Join(root, p)
	if err != nil {
		t.Fatalf("Join(%q): %v", s, err)
	}
	if !strings.HasPrefix(joined, root+string(filepath.Separator)) {
		t.Fatalf("Join(%q) = %q escapes %q", s, joined, root)
	}
	if rel, err := filepath.Rel(root, joined); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		t.Fatalf("Join(%q) = %q is outside %q (rel %q)", s, joined, root, rel)
	}
}

func FuzzClean(f *testing.F) {
	for _, seed := range [][2]string{
		{"a/b/c.txt", "c.txt"}, {"null", "x.mov"}, {"../x", ""}, {"a/./b", ""}, {"CON.txt", ""},
		{"Cafe\u0301/x", ""}, {"a\\b", ""}, {"/abs", ""}, {"C:/x", ""}, {"a/b/", "c"}, {"\u212A", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, rel, name string) { checkInvariants(t, rel, name) })
}
