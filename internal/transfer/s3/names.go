package s3

import "github.com/ferryhq/ferry/internal/transfer"

// Names are S3's object key rules: any UTF-8, at most 1,024 bytes (AWS's
// documented limit; S3-compatible servers follow it, Versity answers
// KeyTooLongError past it).
var Names = transfer.NameRules{Provider: provider, Label: "S3 object keys", MaxBytes: 1024}

// CheckName returns nil or a *transfer.NameError for the object key name.
func CheckName(name string) error { return Names.Check(name) }

// CheckName implements transfer.NameChecker.
func (u *Uploader) CheckName(name string) error { return CheckName(name) }

var _ transfer.NameChecker = (*Uploader)(nil)
