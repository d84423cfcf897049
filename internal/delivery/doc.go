// Package delivery puts finalized (or still uploading) packages into iconik as
// durable River jobs: one job per file walks asset -> format -> file set ->
// file -> job -> bytes -> close -> keyframes and description (shared with
// the delivery's other files that get there together, batch.go) -> finished,
// recording every iconik id before the next step, so a crash or retry resumes
// and never creates a second object. It must never merge two packages into
// one collection path, never report a file delivered whose SHA-256 differs
// from the one recorded at ingest, and never log a token or a signed URL.
package delivery
