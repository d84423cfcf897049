// Package ingest receives resumable uploads (tus, with tusd embedded) into the data directory,
// hashing every byte on arrival and recording completion through the Gate. Parallel uploads are
// concatenated without copying (see concatstore). It must never accept a byte the Gate did not
// admit, nor serve or log upload tokens.
//
// Integrity: an upload completes only once its SHA-256, computed on arrival, matches what the
// sender declared: in the sha256 metadata at creation (a sender that hashed first), or, for an
// upload created with sha256_trailer (a sender that hashes while it sends, as ferry send does),
// in an Upload-Checksum trailer of the PATCH carrying the last byte, or the header of an empty
// PATCH at the final offset when a proxy dropped the trailer (see checksum.go). A mismatch answers
// 460 checksum_mismatch and drops the bytes; a missing announced digest answers 400
// checksum_missing and keeps them. A final upload's partials were each verified on arrival; the
// whole file's SHA-256 comes from delivery's first sequential read of it.
package ingest
