package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
)

// Error says which provider, which step, which part and what the provider
// answered. It never holds a URL's query string.
type Error struct {
	Provider string // s3, gcs, azure, b2
	Step     string // e.g. "upload part", "complete multipart upload"
	Part     int    // 1-based part number, 0 when not about a part
	Status   int    // HTTP status, 0 when no answer arrived
	Code     string // the provider's error code (XML Code, JSON code/reason)
	Message  string // the provider's message
	URL      string // scheme://host/path only
	Err      error  // the underlying error (network, context, mismatch)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Step)
	if e.Part > 0 {
		fmt.Fprintf(&b, " #%d", e.Part)
	}
	if e.URL != "" {
		fmt.Fprintf(&b, " (%s)", e.URL)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether sending the same request again may succeed:
// network errors, 408, 429 and 5xx, and a rejected checksum (the bytes may
// have been damaged on the way; they are read again).
func (e *Error) Retryable() bool {
	if errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(e.Err, ErrChecksum) {
		return true
	}
	switch {
	case e.Status == 0:
		return e.Err != nil
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	switch e.Code {
	case "BadDigest", "InvalidDigest", "Md5Mismatch", "RequestTimeout", "expired_auth_token", "bad_auth_token":
		return true
	}
	return strings.Contains(strings.ToLower(e.Message), "sha1 did not match") || strings.Contains(strings.ToLower(e.Message), "checksum")
}

// Expired reports whether the URL or token was refused, so that a fresh one
// should be fetched before retrying: 403 (S3, Azure, GCS signed URLs) and 401 (B2 tokens).
func (e *Error) Expired() bool {
	return e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized
}

// ErrChecksum marks a provider acknowledgement whose ETag or hash does not
// match the bytes that were read.
var ErrChecksum = errors.New("checksum mismatch")

// ErrUnverified marks an upload the provider accepted without reporting any
// checksum of the stored object, so the bytes could not be verified.
var ErrUnverified = errors.New("provider reported no checksum of the stored object")

// Redact returns u without its query and fragment: signed URLs carry their
// signature (and GCS sessions their upload id) in the query.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<unparsable url>"
	}
	p.RawQuery, p.Fragment, p.User = "", "", nil
	return p.String()
}

// Do sends req with client and turns a failure into an *Error naming
// provider, step and part, with the provider's own error code and message.
// A 2xx (or an accepted status in ok) returns the open response.
func Do(client *http.Client, req *http.Request, provider, step string, part int, ok ...int) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would carry the signed URL
		}
		if cerr := req.Context().Err(); cerr != nil {
			err = context.Cause(req.Context())
		}
		return nil, &Error{Provider: provider, Step: step, Part: part, URL: Redact(req.URL.String()), Err: err}
	}
	if resp.StatusCode/100 == 2 || contains(ok, resp.StatusCode) {
		return resp, nil
	}
	return nil, ResponseError(resp, provider, step, part)
}

// ResponseError reads a failed response's body (bounded) and closes it.
func ResponseError(resp *http.Response, provider, step string, part int) *Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Provider: provider, Step: step, Part: part, Status: resp.StatusCode, URL: Redact(resp.Request.URL.String())}
	e.Code, e.Message = ParseProviderError(body)
	if c := resp.Header.Get("x-ms-error-code"); c != "" && e.Code == "" {
		e.Code = c
	}
	return e
}

// ParseProviderError extracts code and message from an S3/Azure XML error,
// a B2 JSON error or a GCS JSON error. Unknown bodies give a short excerpt.
func ParseProviderError(body []byte) (code, message string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", ""
	}
	if body[0] == '<' {
		var x struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		if xml.Unmarshal(body, &x) == nil && (x.Code != "" || x.Message != "") {
			return x.Code, oneLine(x.Message)
		}
	}
	if body[0] == '{' {
		var j struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
			Error   any    `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil {
			switch ev := j.Error.(type) {
			case map[string]any: // GCS {"error": {"code": 404, "message": ..., "errors": [{"reason": ...}]}} and contract C
				code, _ := ev["code"].(string)
				msg, _ := ev["message"].(string)
				if errs, ok := ev["errors"].([]any); ok && len(errs) > 0 {
					if m, ok := errs[0].(map[string]any); ok {
						if r, ok := m["reason"].(string); ok {
							code = r
						}
					}
				}
				if code == "" {
					if f, ok := ev["code"].(float64); ok {
						code = fmt.Sprint(int(f))
					}
				}
				return code, oneLine(msg)
			case string:
				return ev, oneLine(j.Message)
			}
			if j.Code != nil || j.Message != "" {
				return fmt.Sprint(nilToEmpty(j.Code)), oneLine(j.Message)
			}
		}
	}
	return "", oneLine(string(body[:min(len(body), 200)]))
}

func nilToEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}
