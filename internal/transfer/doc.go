// Package transfer sends one stored file straight to a customer's cloud
// storage through the URLs iconik hands out: S3 presigned multipart, GCS
// resumable sessions, Azure SAS block blobs and Backblaze B2 native uploads
// (one subpackage each, like tusd's stores). It must never buffer more than
// parallelism x part size, never report success for bytes the provider did
// not acknowledge, never wait forever on a connection where nothing moves
// (idleconn), and never print a signed URL's query (its signature).
package transfer
