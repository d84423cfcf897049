package pathsafe

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Length limits, in bytes of the NFC form. 255 is the segment limit of ext4,
// APFS, NTFS (in UTF-16 units, which is never fewer than bytes/3) and S3 keys
// allow 1024 in total, but iconik and local disks allow more, so the total is
// PATH_MAX.
const (
	MaxSegmentBytes = 255
	MaxPathBytes    = 4096
)

// Code names why a path was refused; it is stable and safe to show (it is the
// "code" of ferry's JSON errors).
type Code string

// The refusal codes.
const (
	CodeEmpty             Code = "path_empty"
	CodeInvalidUTF8       Code = "path_invalid_utf8"
	CodeTooLong           Code = "path_too_long"
	CodeAbsolute          Code = "path_absolute"
	CodeBackslash         Code = "path_backslash"
	CodeEmptySegment      Code = "path_empty_segment"
	CodeDotSegment        Code = "path_dot_segment"
	CodeSegmentTooLong    Code = "path_segment_too_long"
	CodeControlCharacter  Code = "path_control_character"
	CodeReservedCharacter Code = "path_reserved_character"
	CodeTrailingDotSpace  Code = "path_trailing_dot_or_space"
	CodeReservedName      Code = "path_reserved_name"
	CodeSeparatorInName   Code = "path_separator_in_filename"
	CodeDuplicate         Code = "path_duplicate"
	CodeFileFolder        Code = "path_file_folder_conflict"
)

// Error is a refused path: a stable Code and a Message a sender can act on.
// The Message quotes the offending input with control characters escaped,
// so it is safe to log and to return.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// CodeOf returns the Code of a pathsafe error anywhere in err's chain, or "".
func CodeOf(err error) Code {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func refuse(code Code, path, format string, args ...any) *Error {
	return refuseAs("path", code, path, format, args...)
}

// refuseAs is refuse for what (a "path" or a "name").
func refuseAs(what string, code Code, s, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf("%s %s: ", what, quote(s)) + fmt.Sprintf(format, args...)}
}

// quote renders untrusted input for a message: escaped, and cut short so a
// 4 KiB path does not become a 4 KiB log line.
func quote(s string) string {
	const max = 120
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%+q...", s[:cut])
	}
	return fmt.Sprintf("%+q", s)
}

// Path is a validated, NFC-normalised, "/"-separated relative path. The zero
// Path is invalid (IsZero); every other Path satisfies all of the package's
// rules, because only Clean and Parse make one.
type Path struct{ s string }

// String returns the path, "/"-separated.
func (p Path) String() string { return p.s }

// IsZero reports whether p is the zero (invalid) Path.
func (p Path) IsZero() bool { return p.s == "" }

// Dir returns the folder part ("" for a file at the top of the package).
func (p Path) Dir() string {
	if i := strings.LastIndexByte(p.s, '/'); i >= 0 {
		return p.s[:i]
	}
	return ""
}

// Base returns the file name.
func (p Path) Base() string { return p.s[strings.LastIndexByte(p.s, '/')+1:] }

// Segments returns the folder names followed by the file name.
func (p Path) Segments() []string {
	if p.s == "" {
		return nil
	}
	return strings.Split(p.s, "/")
}

// Ancestors returns the folder paths that contain p, outermost first:
// "a/b/c.mov" has "a" and "a/b".
func (p Path) Ancestors() []string {
	var out []string
	for i := 0; i < len(p.s); i++ {
		if p.s[i] == '/' {
			out = append(out, p.s[:i])
		}
	}
	return out
}

// Key returns the comparison key of p: Unicode case folding of the NFC form,
// normalised again (folding may denormalise). Two paths with the same Key
// would collide on a case-insensitive file system (macOS, Windows) or in
// iconik's collection names, so a package refuses the second.
func (p Path) Key() string { return Key(p.s) }

// Key returns the comparison key of a "/"-separated path (see Path.Key).
func Key(s string) string {
	// A Caser keeps state: make one per call rather than share it.
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(s)))
}

// Clean validates the path an uploader sent and returns it normalised.
//
// relativePath is the folder path including the file name, "/"-separated, as
// Uppy and `ferry send` send it; "" or the string "null" (Uppy's value for a
// file picked without a folder) mean "no folder". filename is the file's own
// name; when both are given, the file name comes from filename and the folder
// from relativePath (so a file renamed in the uploader keeps its folder), and
// a relativePath ending in "/" is a folder only. One of the two must name the
// file.
//
// Backslashes are refused, not treated as separators: on Linux and macOS a
// backslash is an ordinary character of a name, so guessing would split some
// names wrongly; senders on Windows (browsers, `ferry send`) already send "/".
func Clean(relativePath, filename string) (Path, error) {
	if strings.Contains(filename, "/") {
		return Path{}, refuse(CodeSeparatorInName, filename, "a file name cannot contain \"/\"; send the folders in relativePath")
	}
	if relativePath == "null" {
		relativePath = ""
	}
	if relativePath != "" && (relativePath[0] == '/' || hasDriveLetter(relativePath)) {
		return Path{}, refuse(CodeAbsolute, relativePath, "the path must be relative to the package, not start at a root or drive")
	}
	full := filename
	if i := strings.LastIndexByte(relativePath, '/'); i >= 0 {
		if filename == "" {
			filename = relativePath[i+1:]
		}
		full = relativePath[:i] + "/" + filename
	} else if filename == "" {
		full = relativePath
	}
	return Parse(full)
}

// Parse validates a complete "/"-separated relative path (for example one
// read back from storage) and returns it normalised to NFC.
func Parse(s string) (Path, error) {
	if s == "" {
		return Path{}, &Error{Code: CodeEmpty, Message: "path is empty: the file needs a name"}
	}
	if !utf8.ValidString(s) {
		return Path{}, refuse(CodeInvalidUTF8, s, "the name is not valid UTF-8")
	}
	s = norm.NFC.String(s)
	if len(s) > MaxPathBytes {
		return Path{}, refuse(CodeTooLong, s, "the path is %d bytes long; the limit is %d", len(s), MaxPathBytes)
	}
	if s[0] == '/' || hasDriveLetter(s) {
		return Path{}, refuse(CodeAbsolute, s, "the path must be relative to the package, not start at a root or drive")
	}
	for _, r := range s {
		switch {
		case r == '\\':
			return Path{}, refuse(CodeBackslash, s, "a backslash is not allowed; separate folders with \"/\"")
		case unicode.IsControl(r) || isBidiControl(r):
			return Path{}, refuse(CodeControlCharacter, s, "control character %U is not allowed in a name", r)
		case r == ':':
			// A colon names a drive or an NTFS alternate data stream on
			// Windows and is shown as "/" by macOS Finder.
			return Path{}, refuse(CodeReservedCharacter, s, "\":\" is not allowed in a name")
		}
	}
	for seg := range strings.SplitSeq(s, "/") {
		if err := checkSegment("path", s, seg); err != nil {
			return Path{}, err
		}
	}
	return Path{s: s}, nil
}

// Segment validates a name that becomes exactly one folder of a storage
// path, such as a package or portal name in iconik's directory_path
// ("Portal Downloads/<portal>/<package>/..."), and returns it normalised to
// NFC. It applies the segment rules of Parse: no "/" or "\", not "." or
// "..", no control or bidi characters, no trailing dot or space, no Windows
// device name, at most MaxSegmentBytes. Unlike a file path, a name may hold
// ":" (a title like "Dailies: day 3"); it is an ordinary character in
// object keys and iconik titles.
func Segment(name string) (string, error) {
	if name == "" {
		return "", &Error{Code: CodeEmpty, Message: "name is empty"}
	}
	if !utf8.ValidString(name) {
		return "", refuseAs("name", CodeInvalidUTF8, name, "the name is not valid UTF-8")
	}
	name = norm.NFC.String(name)
	for _, r := range name {
		switch {
		case r == '/':
			return "", refuseAs("name", CodeSeparatorInName, name, "a name cannot contain \"/\": it would split the folder")
		case r == '\\':
			return "", refuseAs("name", CodeBackslash, name, "a backslash is not allowed in a name")
		case unicode.IsControl(r) || isBidiControl(r):
			return "", refuseAs("name", CodeControlCharacter, name, "control character %U is not allowed in a name", r)
		}
	}
	if err := checkSegment("name", name, name); err != nil {
		return "", err
	}
	return name, nil
}

// SafeSegment maps any title to one that Segment accepts, for callers that
// must not fail (a title read back from an older database): control and
// bidi characters are dropped, "/" and "\" become "-", trailing dots and
// spaces are trimmed, the name is cut to MaxSegmentBytes, and a name that is
// still refused ("..", "CON") is prefixed with "_". An empty result is
// "untitled".
func SafeSegment(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\':
			return '-'
		case unicode.IsControl(r) || isBidiControl(r):
			return -1
		}
		return r
	}, norm.NFC.String(name))
	name = strings.TrimSpace(name)
	if len(name) > MaxSegmentBytes {
		cut := MaxSegmentBytes
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	name = strings.TrimRight(name, ". ")
	if name == "" {
		return "untitled"
	}
	if _, err := Segment(name); err != nil {
		// Only a reserved name is left ("CON", "nul.txt"); a prefix frees it.
		name = "_" + name
		if len(name) > MaxSegmentBytes {
			name = strings.TrimRight(name[:MaxSegmentBytes-3], ". ")
		}
		if _, err := Segment(name); err != nil {
			return "untitled"
		}
	}
	return name
}

func checkSegment(what, full, seg string) error {
	switch {
	case seg == "":
		return refuseAs(what, CodeEmptySegment, full, "empty folder name (a leading, doubled or trailing \"/\")")
	case seg == "." || seg == "..":
		return refuseAs(what, CodeDotSegment, full, "%q is not allowed as a folder or file name", seg)
	case len(seg) > MaxSegmentBytes:
		return refuseAs(what, CodeSegmentTooLong, full, "a name is %d bytes long; the limit is %d", len(seg), MaxSegmentBytes)
	case strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " "):
		return refuseAs(what, CodeTrailingDotSpace, full, "name %s ends with a dot or a space, which Windows drops", quote(seg))
	case isReservedName(seg):
		return refuseAs(what, CodeReservedName, full, "name %s is reserved for a device on Windows", quote(seg))
	}
	return nil
}

func hasDriveLetter(s string) bool {
	return len(s) >= 2 && s[1] == ':' && (s[0]|0x20 >= 'a' && s[0]|0x20 <= 'z')
}

// isBidiControl reports the explicit directional formatting characters,
// which can make "evil\u202Egpj.exe" display as "evilexe.jpg".
func isBidiControl(r rune) bool {
	return r == '\u200E' || r == '\u200F' || r == '\u061C' ||
		(r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// reservedNames are Windows device names. COM0/LPT0 and the superscript
// digits are reserved by current Windows versions too, as are CONIN$/CONOUT$.
var reservedNames = func() map[string]bool {
	m := map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true}
	for _, d := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³"} {
		m["COM"+d] = true
		m["LPT"+d] = true
	}
	return m
}()

// isReservedName reports a Windows device name, with or without an extension
// ("con", "Con.txt", "LPT1.tar.gz"), and with spaces before the dot, which
// Windows ignores ("CON .txt").
func isReservedName(seg string) bool {
	stem := seg
	if i := strings.IndexByte(stem, '.'); i >= 0 {
		stem = stem[:i]
	}
	stem = strings.TrimRight(stem, " ")
	if len(stem) < 3 || len(stem) > 7 {
		return false
	}
	return reservedNames[strings.ToUpper(stem)]
}

// Join returns the local path of p under root. root must be absolute; the
// result is always root itself joined with p's segments, never outside root
// (checked again here, as defence in depth against a future rule change).
// Join is lexical: callers that may meet symlinks planted inside root should
// open the result through an os.Root.
func Join(root string, p Path) (string, error) {
	if p.IsZero() {
		return "", errors.New("pathsafe: join: empty path")
	}
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("pathsafe: join: root %q is not absolute", root)
	}
	root = filepath.Clean(root)
	out := filepath.Join(root, filepath.FromSlash(p.s))
	rel, err := filepath.Rel(root, out)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("pathsafe: join: %s escapes root %q", quote(p.s), root)
	}
	return out, nil
}

// Set holds the paths of one package and refuses a path whose Key is already
// there, or that would make a file and a folder share a name ("a/b" and
// "a/b/c"). The zero Set is empty and ready; a Set is not safe for
// concurrent use.
type Set struct {
	files map[string]Path // key -> path
	dirs  map[string]Path // folder key -> first file inside it
}

// Len returns the number of files in the set.
func (s *Set) Len() int { return len(s.files) }

// Add adds p, or returns an *Error (CodeDuplicate or CodeFileFolder).
func (s *Set) Add(p Path) error {
	if p.IsZero() {
		return &Error{Code: CodeEmpty, Message: "path is empty: the file needs a name"}
	}
	if s.files == nil {
		s.files, s.dirs = map[string]Path{}, map[string]Path{}
	}
	k := p.Key()
	if q, ok := s.files[k]; ok {
		return DuplicateError(p.s, q.s)
	}
	if q, ok := s.dirs[k]; ok {
		return FileFolderError(p.s, q.s)
	}
	anc := p.Ancestors()
	for _, a := range anc {
		if q, ok := s.files[Key(a)]; ok {
			return FileFolderError(p.s, q.s)
		}
	}
	s.files[k] = p
	for _, a := range anc {
		if _, ok := s.dirs[Key(a)]; !ok {
			s.dirs[Key(a)] = p
		}
	}
	return nil
}

// DuplicateError is the refusal of path because existing is already in the
// package under the same Key.
func DuplicateError(path, existing string) *Error {
	if path == existing {
		return refuse(CodeDuplicate, path, "the package already has a file with this path")
	}
	return refuse(CodeDuplicate, path, "the package already has %s; names that differ only by upper/lower case or Unicode form collide", quote(existing))
}

// FileFolderError is the refusal of path because it and existing would need
// the same name to be both a file and a folder.
func FileFolderError(path, existing string) *Error {
	return refuse(CodeFileFolder, path, "it clashes with %s: the same name cannot be both a file and a folder", quote(existing))
}
