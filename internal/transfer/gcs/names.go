package gcs

import "github.com/ferryhq/ferry/internal/transfer"

// Names are Cloud Storage's object name rules: 1 to 1,024 bytes of UTF-8,
// no carriage return or line feed, and nothing under the reserved
// ".well-known/acme-challenge/" prefix.
var Names = transfer.NameRules{Provider: provider, Label: "Cloud Storage object names", MaxBytes: 1024,
	Refuse: func(r rune) string {
		if r == '\r' || r == '\n' {
			return "must not contain a carriage return or line feed"
		}
		return ""
	},
	RefusePrefixes: map[string]string{".well-known/acme-challenge/": "must not start with .well-known/acme-challenge/ (reserved)"},
}

// CheckName returns nil or a *transfer.NameError for the object name.
func CheckName(name string) error { return Names.Check(name) }

// CheckName implements transfer.NameChecker.
func (u *Uploader) CheckName(name string) error { return CheckName(name) }

var _ transfer.NameChecker = (*Uploader)(nil)
