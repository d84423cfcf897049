// Command scale measures what replicas buy on one machine: ingest and
// delivery throughput of one `ferry serve` replica against two behind a
// round-robin proxy (both on one PostgreSQL), and the S3 upload store
// against local disk for the same upload, as ratios measured in one run.
// It starts its own peers (PostgreSQL, the Versity S3 gateway, an iconik
// emulator process) and never touches anything outside its temp directory.
package main
