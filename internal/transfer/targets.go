package transfer

import "context"

// The provider targets below are implementable on top of iconik's file record
// (upload_url, multipart_upload_url, upload_credentials, upload_filename) and
// the upload helpers of CONTRACT.md §2.8. Delivery adapts its iconik client to
// them; tests adapt the emulator's data plane and real servers.

// S3Target is an S3 (or S3-compatible) object reached through presigned URLs.
type S3Target interface {
	Target
	// S3PutURL is upload_url: a presigned PutObject for files sent in one request.
	S3PutURL(ctx context.Context) (string, error)
	// S3CreateURL is multipart_upload_url: a presigned CreateMultipartUpload (POST ?uploads).
	S3CreateURL(ctx context.Context) (string, error)
	// S3PartURLs presigns UploadPart for the given parts (iconik:
	// multipart_url/part/ or, with checksums, multipart_url/s3/part/).
	// S3Part.MD5 is set only when S3SignsMD5 is true.
	S3PartURLs(ctx context.Context, uploadID string, parts []S3Part) ([]PartURL, error)
	// S3CompleteURL and S3AbortURL presign CompleteMultipartUpload and AbortMultipartUpload.
	S3CompleteURL(ctx context.Context, uploadID string) (string, error)
	S3AbortURL(ctx context.Context, uploadID string) (string, error)
	// S3SignsMD5 says part URLs are signed with Content-MD5 (iconik's
	// presign_md5_checksum): each part is then hashed before it is sent.
	S3SignsMD5() bool
}

// S3Part asks for one part URL.
type S3Part struct {
	Number int
	MD5    string // base64 MD5 of the part, when the URL is signed with it
}

// PartURL is one presigned part URL.
type PartURL struct {
	Number int
	URL    string
}

// GCSTarget is a GCS object reached through a resumable upload.
type GCSTarget interface {
	Target
	// GCSUploadURL is upload_url: the URL that accepts POST with
	// x-goog-resumable: start and answers with the session URI in Location.
	GCSUploadURL(ctx context.Context) (string, error)
}

// AzureTarget is an Azure block blob reached through a SAS URL.
type AzureTarget interface {
	Target
	// AzureBlobURL is upload_url: the blob's SAS URL (Put Blob, Put Block,
	// Put Block List and, to resume, Get Block List).
	AzureBlobURL(ctx context.Context) (string, error)
}

// B2Target is a Backblaze B2 file reached through the native API.
type B2Target interface {
	Target
	// B2Upload is upload_url, upload_credentials.authorizationToken and
	// upload_filename, for files sent in one b2_upload_file.
	B2Upload(ctx context.Context) (B2Upload, error)
	// B2StartLarge starts a large file (fileID "") or, given the fileID of a
	// started one, returns a fresh part upload URL and token for it
	// (iconik: multipart/b2/start/ with upload_file_id).
	B2StartLarge(ctx context.Context, fileID string) (B2Large, error)
	// B2FinishLarge finishes the file with the parts' hex SHA-1s in order.
	B2FinishLarge(ctx context.Context, fileID string, sha1s []string) error
	// B2CancelLarge cancels an unfinished large file.
	B2CancelLarge(ctx context.Context, fileID string) error
}

// B2Upload is where a small B2 file goes.
type B2Upload struct {
	URL, AuthorizationToken, FileName string
}

// B2Large is a started large file and an upload URL for its parts.
type B2Large struct {
	FileID, UploadURL, AuthorizationToken string
}
