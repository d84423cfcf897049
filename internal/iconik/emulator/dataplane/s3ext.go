package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// extS3 is an S3 storage whose settings name an external S3-compatible server (Versity in tests):
// the plane presigns real URLs for it and reads objects back with GetObject.
type extS3 struct {
	st     Storage
	target s3Target
}

func settingString(st Storage, name string) string {
	if v, ok := st.Settings[name].(string); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// externalS3 reports whether st is an S3 storage on another server than the emulator (base).
// An empty endpoint, or one under the emulator's own base URL, means the built-in plane.
func externalS3(st Storage, base string) (extS3, bool) {
	if !strings.EqualFold(st.Method, MethodS3) {
		return extS3{}, false
	}
	ep := strings.TrimRight(settingString(st, "endpoint"), "/")
	if ep == "" || (base != "" && strings.HasPrefix(ep, base)) || strings.Contains(ep, "/_storage/") {
		return extS3{}, false
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	region := settingString(st, "region")
	if region == "" {
		region = s3Region
	}
	return extS3{st: st, target: s3Target{
		endpoint: ep,
		bucket:   settingString(st, "bucket"),
		region:   region,
		creds: aws.Credentials{
			AccessKeyID:     settingString(st, "access_key"),
			SecretAccessKey: settingString(st, "secret_key"),
			Source:          "iconik storage settings",
		},
	}}, true
}

func (e extS3) open(key string) (io.ReadCloser, int64, error) {
	if err := ValidateKey(key); err != nil {
		return nil, 0, fmt.Errorf("open object in storage %s: %w", e.st.ID, err)
	}
	out, err := e.target.client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.target.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, 0, fmt.Errorf("get object %q from bucket %s at %s: %w", key, e.target.bucket, e.target.endpoint, err)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

func (e extS3) abort(key, uploadID string) error {
	_, err := e.target.client().AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(e.target.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		var nsu interface{ ErrorCode() string }
		if errors.As(err, &nsu) && nsu.ErrorCode() == "NoSuchUpload" {
			return fmt.Errorf("abort upload %q of %q in bucket %s: %w", uploadID, key, e.target.bucket, ErrNoSuchUpload)
		}
		return fmt.Errorf("abort upload %q of %q in bucket %s at %s: %w", uploadID, key, e.target.bucket, e.target.endpoint, err)
	}
	return nil
}
