// Package s3store is the upload store on S3-compatible object storage: every upload's bytes are
// one multipart upload (parts pushed as they arrive, SHA-256 computed on arrival with its state
// kept in the upload's record), a parallel upload's final is read across its partials' objects
// (never downloaded and uploaded again), and every record lives in the bucket, so any replica
// serves any request. It must never hold more than two bounded part buffers per PATCH in memory,
// and never log or return credentials.
package s3store
