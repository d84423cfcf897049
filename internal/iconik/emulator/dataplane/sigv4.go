package dataplane

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDateFormat   = "20060102T150405Z"
	maxPresignTTL   = 7 * 24 * time.Hour // S3's limit for X-Amz-Expires
)

// clockPresigner hands the SDK's presign middleware our clock, so URLs signed by the plane expire on
// Options.Now (tests move time instead of sleeping).
type clockPresigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (c clockPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return c.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, c.now(), optFns...)
}

// presignV4 presigns one S3 request with query authentication. The SDK's PresignClient has no
// CreateMultipartUpload, CompleteMultipartUpload, AbortMultipartUpload or ListParts, so those are
// built here (path-style URL plus the operation's query) and signed by the SDK's own v4 signer.
func presignV4(creds aws.Credentials, region, method, rawURL string, hdr http.Header, ttl time.Duration, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("presign %s %s: %w", method, rawURL, err)
	}
	q := u.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(ttl/time.Second)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("presign %s %s: %w", method, rawURL, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, unsignedPayload, "s3", region, now,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		return "", fmt.Errorf("presign %s %s: %w", method, rawURL, err)
	}
	return signed, nil
}

// sigError is a refused S3 query authentication, in S3's words.
type sigError struct {
	status        int
	code, message string
}

// verifyPresigned checks an incoming S3 presigned request.
//
// Written here rather than taken from a library: aws-sdk-go-v2 signs but has no server-side
// verifier, and the S3 servers that verify (Versity, MinIO) do not export theirs as a library.
// Re-signing the incoming request's canonical form with the same SDK signer that presigned it
// (same method, escaped path, query minus the signature, the headers it claims to have signed,
// its own X-Amz-Date) and comparing signatures in constant time avoids writing a second
// canonicaliser that could disagree with the SDK's.
func verifyPresigned(r *http.Request, accessKey, secret string, now time.Time) *sigError {
	q := r.URL.Query()
	sig := q.Get("X-Amz-Signature")
	if q.Get("X-Amz-Algorithm") == "" || sig == "" || q.Get("X-Amz-Credential") == "" {
		return &sigError{http.StatusForbidden, "AccessDenied", "Access Denied"}
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return &sigError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""}
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(cred) != 5 || cred[3] != "s3" || cred[4] != "aws4_request" {
		return &sigError{http.StatusBadRequest, "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter"}
	}
	if subtle.ConstantTimeCompare([]byte(cred[0]), []byte(accessKey)) != 1 {
		return &sigError{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	}
	signedAt, err := time.Parse(amzDateFormat, q.Get("X-Amz-Date"))
	if err != nil || cred[1] != signedAt.Format("20060102") {
		return &sigError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\" and match the credential date"}
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignTTL {
		return &sigError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be a number of seconds between 1 and 604800"}
	}
	if now.After(signedAt.Add(time.Duration(secs) * time.Second)) {
		return &sigError{http.StatusForbidden, "AccessDenied", "Request has expired"}
	}
	if signedAt.After(now.Add(15 * time.Minute)) {
		return &sigError{http.StatusForbidden, "AccessDenied", "Request is not valid yet"}
	}

	q.Del("X-Amz-Signature")
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	re := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for h := range strings.SplitSeq(q.Get("X-Amz-SignedHeaders"), ";") {
		switch h {
		case "host", "":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			if vs := r.Header.Values(h); len(vs) > 0 {
				re.Header[http.CanonicalHeaderKey(h)] = vs
			}
		}
	}
	signed, _, err := v4.NewSigner().PresignHTTP(r.Context(), aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret},
		re, unsignedPayload, "s3", cred[2], signedAt, func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = true
			o.DisableHeaderHoisting = true // the headers were hoisted (or not) when the URL was made
		})
	if err != nil {
		return &sigError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."}
	}
	su, err := url.Parse(signed)
	if err != nil {
		return &sigError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."}
	}
	want := su.Query().Get("X-Amz-Signature")
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		return &sigError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	return nil
}
