package azure

import "github.com/ferryhq/ferry/internal/transfer"

// Names are Azure Blob Storage's blob name rules: 1 to 1,024 characters, at
// most 254 path segments, and no segment ending with a dot (Azure strips or
// refuses those; a delivered tree would not match its collections).
var Names = transfer.NameRules{Provider: provider, Label: "Azure blob names", MaxChars: 1024, MaxSegments: 254, NoTrailingDot: true}

// CheckName returns nil or a *transfer.NameError for the blob name.
func CheckName(name string) error { return Names.Check(name) }

// CheckName implements transfer.NameChecker.
func (u *Uploader) CheckName(name string) error { return CheckName(name) }

var _ transfer.NameChecker = (*Uploader)(nil)
