package transfertest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ferryhq/ferry/internal/transfer"
)

// S3Presigner presigns S3 requests for a real server, as iconik does for an
// S3 storage: the uploader sees URLs only, never the keys.
type S3Presigner struct {
	Endpoint, Region, AccessKey, SecretKey, Bucket string
	TTL                                            time.Duration // default 1h
	SignMD5                                        bool          // sign part URLs with Content-MD5 (iconik presign_md5_checksum)
}

// Presign returns a presigned URL for method on key with extra query values
// (and Content-MD5 signed when md5b64 is set).
func (s *S3Presigner) Presign(ctx context.Context, method, key string, query url.Values, md5b64 string) (string, error) {
	u := strings.TrimRight(s.Endpoint, "/") + "/" + s.Bucket + "/" + escapeKey(key)
	if query == nil {
		query = url.Values{}
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	query.Set("X-Amz-Expires", strconv.Itoa(int(ttl.Seconds())))
	req, err := http.NewRequestWithContext(ctx, method, u+"?"+strings.ReplaceAll(query.Encode(), "+", "%20"), nil)
	if err != nil {
		return "", err
	}
	if md5b64 != "" {
		req.Header.Set("Content-MD5", md5b64)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey},
		req, "UNSIGNED-PAYLOAD", "s3", s.Region, time.Now())
	if err != nil {
		return "", fmt.Errorf("presign %s %s: %w", method, key, err)
	}
	return signed, nil
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Target returns an S3Target for key whose URLs go through via (nil: direct).
func (s *S3Presigner) Target(key string, via func(string) string) transfer.S3Target {
	if via == nil {
		via = func(u string) string { return u }
	}
	return &presignedTarget{s: s, key: key, via: via}
}

type presignedTarget struct {
	s   *S3Presigner
	key string
	via func(string) string
}

func (t *presignedTarget) Method() string   { return "S3" }
func (t *presignedTarget) S3SignsMD5() bool { return t.s.SignMD5 }

func (t *presignedTarget) sign(ctx context.Context, method string, q url.Values, md5b64 string) (string, error) {
	u, err := t.s.Presign(ctx, method, t.key, q, md5b64)
	return t.via(u), err
}

func (t *presignedTarget) S3PutURL(ctx context.Context) (string, error) {
	return t.sign(ctx, http.MethodPut, nil, "")
}

func (t *presignedTarget) S3CreateURL(ctx context.Context) (string, error) {
	return t.sign(ctx, http.MethodPost, url.Values{"uploads": {""}}, "")
}

func (t *presignedTarget) S3PartURLs(ctx context.Context, uploadID string, parts []transfer.S3Part) ([]transfer.PartURL, error) {
	out := make([]transfer.PartURL, 0, len(parts))
	for _, p := range parts {
		u, err := t.sign(ctx, http.MethodPut, url.Values{"partNumber": {strconv.Itoa(p.Number)}, "uploadId": {uploadID}}, p.MD5)
		if err != nil {
			return nil, err
		}
		out = append(out, transfer.PartURL{Number: p.Number, URL: u})
	}
	return out, nil
}

func (t *presignedTarget) S3CompleteURL(ctx context.Context, uploadID string) (string, error) {
	return t.sign(ctx, http.MethodPost, url.Values{"uploadId": {uploadID}}, "")
}

func (t *presignedTarget) S3AbortURL(ctx context.Context, uploadID string) (string, error) {
	return t.sign(ctx, http.MethodDelete, url.Values{"uploadId": {uploadID}}, "")
}
