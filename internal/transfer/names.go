package transfer

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// NameChecker is the optional capability of an Uploader that knows which
// object names its provider can never store (length, characters, segments),
// so a file can be refused before a byte of it is stored, instead of failing
// at the provider after its upload. Every provider package implements it,
// with the same rules as its package-level CheckName.
type NameChecker interface {
	// CheckName returns nil or a *NameError for the full object name (the
	// key on the storage, "/"-separated).
	CheckName(name string) error
}

// NameError is an object name a provider can never store. Limit is the rule
// in words, for people ("S3 object keys are at most 1,024 bytes of UTF-8");
// Over is how far the name exceeds a length limit (bytes, characters or
// segments), 0 for a character rule.
type NameError struct {
	Provider string // s3, gcs, azure, b2
	Rule     string // NameTooLong, NameSegmentTooLong, NameTooManySegments, NameCharacter
	Limit    string
	Over     int
	// Detail says what in the name breaks the rule ("a line feed in
	// segment 3", "1,263 bytes").
	Detail string
}

// The rules a NameError can name.
const (
	NameTooLong         = "too_long"
	NameSegmentTooLong  = "segment_too_long"
	NameTooManySegments = "too_many_segments"
	NameCharacter       = "character"
)

func (e *NameError) Error() string {
	if e.Detail == "" {
		return e.Provider + ": object name refused: " + e.Limit
	}
	return e.Provider + ": object name refused: " + e.Limit + " (" + e.Detail + ")"
}

// AsNameError returns the *NameError in err's chain, or nil.
func AsNameError(err error) *NameError {
	var ne *NameError
	if errors.As(err, &ne) {
		return ne
	}
	return nil
}

// NameRules are one provider's object name rules, as data; the provider
// packages declare theirs and Check applies them.
type NameRules struct {
	Provider string
	Label    string // "S3 object keys", for messages
	// MaxBytes bounds the name's UTF-8 bytes, MaxChars its characters
	// (Unicode code points); 0 = no such bound.
	MaxBytes, MaxChars int
	// MaxSegmentBytes bounds each "/"-separated segment; MaxSegments their
	// number; 0 = no such bound.
	MaxSegmentBytes, MaxSegments int
	// Refuse says why a character can never be part of a name ("" = fine).
	Refuse func(r rune) string
	// RefusePrefixes are name prefixes the provider reserves, with the reason.
	RefusePrefixes map[string]string
	// NoTrailingDot refuses segments (and names) ending in "." (Azure).
	NoTrailingDot bool
}

// Check returns nil or a *NameError for name.
func (nr NameRules) Check(name string) error {
	refuse := func(rule, detail string, over int, limit string, args ...any) error {
		return &NameError{Provider: nr.Provider, Rule: rule, Limit: fmt.Sprintf(limit, args...), Over: over, Detail: detail}
	}
	if name == "" {
		return refuse(NameTooLong, "an empty name", 0, "%s must not be empty", nr.Label)
	}
	if !utf8.ValidString(name) {
		return refuse(NameCharacter, "bytes that are not UTF-8", 0, "%s must be valid UTF-8", nr.Label)
	}
	if nr.MaxBytes > 0 && len(name) > nr.MaxBytes {
		return refuse(NameTooLong, Count(len(name))+" bytes", len(name)-nr.MaxBytes, "%s are at most %s bytes of UTF-8", nr.Label, Count(nr.MaxBytes))
	}
	if n := utf8.RuneCountInString(name); nr.MaxChars > 0 && n > nr.MaxChars {
		return refuse(NameTooLong, Count(n)+" characters", n-nr.MaxChars, "%s are at most %s characters", nr.Label, Count(nr.MaxChars))
	}
	for prefix, why := range nr.RefusePrefixes {
		if strings.HasPrefix(name, prefix) {
			return refuse(NameCharacter, "it starts with "+prefix, 0, "%s %s", nr.Label, why)
		}
	}
	segs := strings.Split(name, "/")
	if nr.MaxSegments > 0 && len(segs) > nr.MaxSegments {
		return refuse(NameTooManySegments, Count(len(segs))+" segments", len(segs)-nr.MaxSegments, "%s have at most %s path segments", nr.Label, Count(nr.MaxSegments))
	}
	for i, seg := range segs {
		if nr.MaxSegmentBytes > 0 && len(seg) > nr.MaxSegmentBytes {
			return refuse(NameSegmentTooLong, fmt.Sprintf("segment %d is %s bytes", i+1, Count(len(seg))), len(seg)-nr.MaxSegmentBytes,
				"each \"/\"-separated segment of %s is at most %s bytes of UTF-8", nr.Label, Count(nr.MaxSegmentBytes))
		}
		if nr.NoTrailingDot && strings.HasSuffix(seg, ".") {
			return refuse(NameCharacter, fmt.Sprintf("segment %d %q ends with a dot", i+1, seg), 0, "%s must not have a segment ending with a dot", nr.Label)
		}
		if nr.Refuse != nil {
			for _, r := range seg {
				if why := nr.Refuse(r); why != "" {
					return refuse(NameCharacter, fmt.Sprintf("%U in segment %d", r, i+1), 0, "%s %s", nr.Label, why)
				}
			}
		}
	}
	return nil
}

// Count renders n with thousands separators ("1,024"), as the limits are
// written in the providers' documentation.
func Count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Refused reports whether the provider refused a request for a reason that
// no retry of the same file can change (a key too long, a name with a
// character it refuses, a request it calls malformed): the caller should
// fail the file at once with the provider's reason instead of retrying it
// for minutes. Expired URLs (401/403), missing uploads (404, the state of a
// resumed upload may be stale), throttling and 5xx are never refusals, nor
// are the codes Retryable accepts.
func Refused(err error) bool {
	var te *Error
	if !errors.As(err, &te) || te.Retryable() || te.Expired() {
		return false
	}
	if AsNameError(err) != nil {
		return true
	}
	switch te.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
	default:
		return false
	}
	switch te.Code {
	// A resumed upload whose recorded parts or blocks no longer match what
	// the provider holds: the uploader starts the file over on the next
	// attempt, so these are not final.
	case "InvalidPart", "InvalidPartOrder", "NoSuchUpload", "InvalidBlockList", "InvalidBlockId", "file_not_present":
		return false
	}
	return true
}
