// Package tus is a small tus 1.0 client: creation, PATCH with offsets, HEAD to
// resume, concatenation (parallel partial uploads) and termination, and
// ferry's one-pass integrity: a PATCH body hashed as it is sent, its digest
// in an Upload-Checksum trailer (digest.go).
// It streams bodies from an io.ReaderAt and must never buffer a whole part in memory.
//
// Why our own: the only Go tus client (eventials/go-tus) is unmaintained and
// lacks the concatenation extension that parallel streams need.
package tus
