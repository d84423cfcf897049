package server

import "github.com/ferryhq/ferry/internal/ingest"

func ingestUpload(id string, size int64) ingest.Upload {
	return ingest.Upload{ID: id, Size: size, Metadata: map[string]string{}}
}

func checksums(sum []byte) ingest.Checksums { return ingest.Checksums{SHA256: sum} }
