package b2

import "github.com/ferryhq/ferry/internal/transfer"

// Names are Backblaze B2's file name rules: UTF-8 of at most 1,024 bytes,
// each "/"-separated segment at most 250 bytes, no control characters
// (below 32, and DEL) and no backslash.
var Names = transfer.NameRules{Provider: provider, Label: "B2 file names", MaxBytes: 1024, MaxSegmentBytes: 250,
	Refuse: func(r rune) string {
		switch {
		case r < 0x20 || r == 0x7f:
			return "must not contain control characters"
		case r == '\\':
			return "must not contain a backslash"
		}
		return ""
	},
}

// CheckName returns nil or a *transfer.NameError for the file name.
func CheckName(name string) error { return Names.Check(name) }

// CheckName implements transfer.NameChecker.
func (u *Uploader) CheckName(name string) error { return CheckName(name) }

var _ transfer.NameChecker = (*Uploader)(nil)
