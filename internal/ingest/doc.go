// Package ingest receives resumable uploads (tus, with tusd embedded) into the data directory,
// hashing every byte on arrival and recording completion through the Gate. Parallel uploads are
// concatenated without copying (see concatstore). It must never accept a byte the Gate did not
// admit, nor serve or log upload tokens.
package ingest
