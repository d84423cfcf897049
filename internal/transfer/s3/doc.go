// Package s3 uploads a file to S3 or an S3-compatible server through
// presigned URLs only (iconik's upload_url, multipart_upload_url and part,
// complete and abort URLs): one PUT for small files, parallel multipart
// otherwise. It never holds credentials and never logs a URL's signature.
package s3
