// Package pathsafe is the single place where a sender's relative path is
// validated and normalised (NFC) before ferry stores, lists or delivers it,
// and where such a path is joined to a directory without ever leaving it.
// It must never accept a path that could escape a root, name a device on
// Windows, or differ from another accepted path only by case or Unicode form.
package pathsafe
