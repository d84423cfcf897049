// Package dataplane emulates the storage providers behind iconik storages (S3, GCS, Azure Blob, B2)
// under <BaseURL>/_storage/: it hands out signed upload URLs, speaks each provider's upload protocol,
// checks what the real provider checks and keeps the bytes on disk. It must never hold an object or
// part in memory, never let a key escape its storage directory, and never log or return secrets.
package dataplane
