// Package gcs uploads a file to Google Cloud Storage through a resumable
// upload session started from iconik's signed upload_url: chunks of a
// multiple of 256 KiB, one after the other as the protocol requires, with
// the final object's MD5 and CRC32C checked. It never logs the session URI.
package gcs
