// Package b2 uploads a file to Backblaze B2 through the native API with the
// upload URL and token iconik hands out: b2_upload_file for small files,
// else a large file with parallel b2_upload_part and b2_finish_large_file.
// Every part carries its SHA-1. It never logs an authorization token.
package b2
