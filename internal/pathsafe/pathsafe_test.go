package pathsafe

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

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

func TestSegmentRefusesNamesThatAreNotOneFolder(t *testing.T) {
	cases := []struct {
		name, in string
		wantCode Code
	}{
		{"empty", "", CodeEmpty},
		{"parent", "..", CodeDotSegment},
		{"dot", ".", CodeDotSegment},
		{"NUL", "cam\x00A", CodeControlCharacter},
		{"ESC", "\x1b[31mred", CodeControlCharacter},
		{"newline", "a\nb", CodeControlCharacter},
		{"right-to-left override", "evil\u202Egpj", CodeControlCharacter},
		{"slash", "a/b", CodeSeparatorInName},
		{"traversal with slash", "../x", CodeSeparatorInName},
		{"backslash", `a\b`, CodeBackslash},
		{"trailing dot", "Dailies.", CodeTrailingDotSpace},
		{"trailing space", "Dailies ", CodeTrailingDotSpace},
		{"three dots", "...", CodeTrailingDotSpace},
		{"CON", "CON", CodeReservedName},
		{"lpt1 with extension", "lpt1.txt", CodeReservedName},
		{"very long", strings.Repeat("é", 128), CodeSegmentTooLong},
		{"invalid UTF-8", "a\xffb", CodeInvalidUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Segment(tc.in)
			if err == nil {
				t.Fatalf("Segment(%q) = %q, want refusal %s", tc.in, got, tc.wantCode)
			}
			if c := CodeOf(err); c != tc.wantCode {
				t.Fatalf("code = %s (%v), want %s", c, err, tc.wantCode)
			}
			if strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("message carries a raw control character: %q", err.Error())
			}
		})
	}
}

func TestSegmentAcceptsAndNormalisesGoodNames(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Dailies", "Dailies"},
		{"Café crème", "Café crème"},
		{"Cafe\u0301", "Caf\u00e9"}, // decomposed é becomes NFC
		{"Shoot 🎬 day 3", "Shoot 🎬 day 3"},
		{"Dailies: day 3", "Dailies: day 3"},
		{".hidden", ".hidden"},
		{"CONFIG", "CONFIG"},
		{"Package from s@example.com 2026-01-02 15:04", "Package from s@example.com 2026-01-02 15:04"},
		{strings.Repeat("a", MaxSegmentBytes), strings.Repeat("a", MaxSegmentBytes)},
	}
	for _, tc := range cases {
		got, err := Segment(tc.in)
		if err != nil {
			t.Errorf("Segment(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Segment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSafeSegmentMapsEveryTitleToOneAcceptedFolder(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Dailies", "Dailies"},
		{"  cam A  ", "cam A"},
		{"a/b", "a-b"},
		{`a\b`, "a-b"},
		{"..", "untitled"},
		{".", "untitled"},
		{"", "untitled"},
		{"cam\x00A", "camA"},
		{"\x1b[31mred", "[31mred"},
		{"Dailies...", "Dailies"},
		{"CON", "_CON"},
		{"nul.txt", "_nul.txt"},
		{"Shoot 🎬", "Shoot 🎬"},
		{"Cafe\u0301", "Caf\u00e9"},
		{"a\xffb", "a\uFFFDb"},
	}
	for _, tc := range cases {
		if got := SafeSegment(tc.in); got != tc.want {
			t.Errorf("SafeSegment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := SafeSegment(strings.Repeat("é", 200))
	if len(long) > MaxSegmentBytes || !utf8.ValidString(long) {
		t.Errorf("SafeSegment of a long name = %d bytes (valid UTF-8: %v)", len(long), utf8.ValidString(long))
	}
	for _, in := range []string{"..", "a/../b", "CON .txt", strings.Repeat("x.", 300), "\u202E..", " . "} {
		if _, err := Segment(SafeSegment(in)); err != nil {
			t.Errorf("Segment(SafeSegment(%q)) refused: %v", in, err)
		}
	}
}
