package dataplane

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Options configures a Plane. Zero values run out of the box.
type Options struct {
	BaseURL          string        // public base URL of the emulator, e.g. http://127.0.0.1:PORT
	URLTTL           time.Duration // lifetime of every signed URL; default 1h
	ProviderFailRate float64       // 0..1 share of data-plane requests answered 503 before the body is read
	Secret           []byte        // signing secret; random when empty
	Now              func() time.Time
}

// Storage is one iconik storage as the plane sees it.
type Storage struct {
	ID, Method string         // Method: S3 | GCS | AZURE | B2
	Dir        string         // directory holding this storage's objects (built-in plane)
	Settings   map[string]any // iconik storage settings; S3 "endpoint" set to another server = external S3
}

// UploadFields are the upload fields of an iconik FileSchema.
type UploadFields struct {
	UploadURL          string         `json:"upload_url,omitempty"`
	MultipartUploadURL string         `json:"multipart_upload_url,omitempty"`
	UploadCredentials  map[string]any `json:"upload_credentials,omitempty"`
	UploadFilename     string         `json:"upload_filename,omitempty"`
	UploadMethod       string         `json:"upload_method,omitempty"`
}

// PartURL is a presigned S3 UploadPart URL.
type PartURL struct {
	Number int
	URL    string
}

// B2Large is a started B2 large file.
type B2Large struct{ UploadFileID, UploadURL, AuthorizationToken string }

var errNotYet = errors.New("dataplane: not implemented yet")

// Plane serves every emulated storage's data plane.
type Plane struct {
	mu   sync.Mutex
	opts Options
}

// New returns a Plane.
func New(opts Options) *Plane { return &Plane{opts: opts} }

// Handler serves /_storage/...; it sees full paths.
func (p *Plane) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, errNotYet.Error(), http.StatusNotImplemented)
	})
}

// SetBaseURL sets the public base URL used in signed URLs.
func (p *Plane) SetBaseURL(u string) { p.mu.Lock(); p.opts.BaseURL = u; p.mu.Unlock() }

// UploadFields returns fresh upload fields for key (path within the storage, "/"-separated).
func (p *Plane) UploadFields(st Storage, key string, size int64) (UploadFields, error) {
	return UploadFields{}, errNotYet
}

// S3PartURLs presigns UploadPart URLs; md5b64 optionally binds a part to its Content-MD5.
func (p *Plane) S3PartURLs(st Storage, key, uploadID string, parts []int, md5b64 map[int]string) ([]PartURL, error) {
	return nil, errNotYet
}

// S3MultipartURLs presigns CompleteMultipartUpload and AbortMultipartUpload.
func (p *Plane) S3MultipartURLs(st Storage, key, uploadID string) (completeURL, abortURL string, err error) {
	return "", "", errNotYet
}

// S3Abort aborts a multipart upload server-side.
func (p *Plane) S3Abort(st Storage, key, uploadID string) error { return errNotYet }

// B2StartLarge starts a B2 large file.
func (p *Plane) B2StartLarge(st Storage, key string) (B2Large, error) { return B2Large{}, errNotYet }

// B2FinishLarge assembles a B2 large file from its parts, checking the SHA-1 list.
func (p *Plane) B2FinishLarge(st Storage, fileID string, sha1s []string) error { return errNotYet }

// B2CancelLarge cancels a B2 large file and removes its parts.
func (p *Plane) B2CancelLarge(st Storage, fileID string) error { return errNotYet }

// Open reads an object back.
func (p *Plane) Open(st Storage, key string) (io.ReadCloser, int64, error) { return nil, 0, errNotYet }
