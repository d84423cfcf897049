// Package concatstore is a tusd DataStore on local disk whose final (concatenated) upload is the
// ordered list of its partial uploads, read back as one stream: concatenation copies no byte.
// It also hashes every byte with SHA-256 as it arrives, persisting the hash state next to the
// upload so a resumed upload is never re-read, and writes with O_DIRECT, flushing the disk's write
// cache as bytes arrive so that the fsync before an upload counts as complete is short (flush.go).
// The bytes pass through buffers from one arena in huge pages, shared by every PATCH of the
// process within a fixed budget (arena.go).
// It must never write outside its directory.
package concatstore
