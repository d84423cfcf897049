package transfertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Plane is the iconik emulator's data plane (contract B) on a test server,
// with targets that play delivery's role: they ask the plane for URLs the
// way delivery asks iconik (file record upload fields, §2.8 helpers).
type Plane struct {
	*dataplane.Plane
	URL string
}

// StartPlane serves a fresh data plane for the test.
func StartPlane(t testing.TB, opts dataplane.Options) *Plane {
	p := dataplane.New(opts)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	p.SetBaseURL(srv.URL)
	return &Plane{Plane: p, URL: srv.URL}
}

// Target returns the target for key on storage st, every URL passed through via.
func (p *Plane) Target(st dataplane.Storage, key string, size int64, via func(string) string) transfer.Target {
	if via == nil {
		via = func(s string) string { return s }
	}
	return &planeTarget{p: p.Plane, st: st, key: key, size: size, via: via, large: map[string]dataplane.B2Large{}}
}

// Harness returns the conformance harness for storage st of the plane.
func (p *Plane) Harness(st dataplane.Storage, newUploader func(transfer.Options) transfer.Uploader, partSize int64) Harness {
	return Harness{
		New:      newUploader,
		PartSize: partSize,
		NewTarget: func(t *testing.T, key string, size int64, via func(string) string) transfer.Target {
			return p.Target(st, key, size, via)
		},
		Open: func(t *testing.T, key string) (io.ReadCloser, bool) {
			r, _, err := p.Open(st, key)
			if err != nil {
				return nil, false
			}
			return r, true
		},
		Sequential: strings.EqualFold(st.Method, "GCS"),
	}
}

type planeTarget struct {
	p    *dataplane.Plane
	st   dataplane.Storage
	key  string
	size int64
	via  func(string) string

	mu    sync.Mutex
	large map[string]dataplane.B2Large
}

func (t *planeTarget) Method() string { return strings.ToUpper(t.st.Method) }

// fields is GET file?generate_signed_post_url=true: fresh upload fields.
func (t *planeTarget) fields() (dataplane.UploadFields, error) {
	return t.p.UploadFields(t.st, t.key, t.size)
}

func (t *planeTarget) S3PutURL(ctx context.Context) (string, error) {
	f, err := t.fields()
	return t.via(f.UploadURL), err
}

func (t *planeTarget) S3CreateURL(ctx context.Context) (string, error) {
	f, err := t.fields()
	return t.via(f.MultipartUploadURL), err
}

func (t *planeTarget) S3SignsMD5() bool {
	v, _ := t.st.Settings["presign_md5_checksum"].(bool)
	return v
}

func (t *planeTarget) S3PartURLs(ctx context.Context, uploadID string, parts []transfer.S3Part) ([]transfer.PartURL, error) {
	nums := make([]int, len(parts))
	md5s := map[int]string{}
	for i, p := range parts {
		nums[i] = p.Number
		if p.MD5 != "" {
			md5s[p.Number] = p.MD5
		}
	}
	got, err := t.p.S3PartURLs(t.st, t.key, uploadID, nums, md5s)
	if err != nil {
		return nil, err
	}
	out := make([]transfer.PartURL, len(got))
	for i, g := range got {
		out[i] = transfer.PartURL{Number: g.Number, URL: t.via(g.URL)}
	}
	return out, nil
}

func (t *planeTarget) S3CompleteURL(ctx context.Context, uploadID string) (string, error) {
	c, _, err := t.p.S3MultipartURLs(t.st, t.key, uploadID)
	return t.via(c), err
}

func (t *planeTarget) S3AbortURL(ctx context.Context, uploadID string) (string, error) {
	_, a, err := t.p.S3MultipartURLs(t.st, t.key, uploadID)
	return t.via(a), err
}

func (t *planeTarget) GCSUploadURL(ctx context.Context) (string, error) {
	f, err := t.fields()
	return t.via(f.UploadURL), err
}

func (t *planeTarget) AzureBlobURL(ctx context.Context) (string, error) {
	f, err := t.fields()
	return t.via(f.UploadURL), err
}

func (t *planeTarget) B2Upload(ctx context.Context) (transfer.B2Upload, error) {
	f, err := t.fields()
	if err != nil {
		return transfer.B2Upload{}, err
	}
	tok, _ := f.UploadCredentials["authorizationToken"].(string)
	return transfer.B2Upload{URL: t.via(f.UploadURL), AuthorizationToken: tok, FileName: f.UploadFilename}, nil
}

// B2StartLarge starts a large file, or for a started one hands its upload
// URL out again (the contract's plane issues one URL per large file).
func (t *planeTarget) B2StartLarge(ctx context.Context, fileID string) (transfer.B2Large, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fileID != "" {
		l, ok := t.large[fileID]
		if !ok {
			return transfer.B2Large{}, fmt.Errorf("no upload URL known for large file %s", fileID)
		}
		return transfer.B2Large{FileID: fileID, UploadURL: t.via(l.UploadURL), AuthorizationToken: l.AuthorizationToken}, nil
	}
	l, err := t.p.B2StartLarge(t.st, t.key)
	if err != nil {
		return transfer.B2Large{}, err
	}
	t.large[l.UploadFileID] = l
	return transfer.B2Large{FileID: l.UploadFileID, UploadURL: t.via(l.UploadURL), AuthorizationToken: l.AuthorizationToken}, nil
}

func (t *planeTarget) B2FinishLarge(ctx context.Context, fileID string, sha1s []string) error {
	return t.p.B2FinishLarge(t.st, fileID, sha1s)
}

func (t *planeTarget) B2CancelLarge(ctx context.Context, fileID string) error {
	err := t.p.B2CancelLarge(t.st, fileID)
	if errors.Is(err, dataplane.ErrNoSuchUpload) {
		return nil // already gone
	}
	return err
}
