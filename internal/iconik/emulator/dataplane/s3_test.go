package dataplane

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
)

// s3Planes returns the built-in S3 plane and the same storage kind pointed at a Versity gateway.
func s3Planes(t *testing.T) []struct {
	name string
	f    *fixture
	st   Storage
} {
	f := newFixture(t, Options{})
	builtin := f.storage(t, MethodS3)
	vs := testbed.Versity(t)
	ext := Storage{ID: "versity", Method: MethodS3, Settings: map[string]any{
		"endpoint": vs.Endpoint, "access_key": vs.AccessKey, "secret_key": vs.SecretKey,
		"bucket": vs.NewBucket(t), "region": vs.Region, "path": "ferry",
	}}
	return []struct {
		name string
		f    *fixture
		st   Storage
	}{{"builtin", f, builtin}, {"versity", f, ext}}
}

type s3Part struct {
	n    int
	data []byte
}

func splitParts(data []byte, size int) []s3Part {
	var out []s3Part
	for i, n := 0, 1; i < len(data); i, n = i+size, n+1 {
		out = append(out, s3Part{n, data[i:min(i+size, len(data))]})
	}
	return out
}

func xmlField(t testing.TB, body, field string) string {
	t.Helper()
	var v struct {
		Fields []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("parse XML %q: %v", body, err)
	}
	for _, f := range v.Fields {
		if f.XMLName.Local == field {
			return f.Value
		}
	}
	return ""
}

// s3Multipart runs the iconik S3 multipart flow with net/http: create, parts (with Content-MD5),
// list parts, complete. It returns the complete call's status and body.
func s3Multipart(t *testing.T, p *Plane, st Storage, key string, parts []s3Part, mangle func([]s3Part) []s3Part) (int, string) {
	t.Helper()
	uf, err := p.UploadFields(st, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := do(t, http.MethodPost, uf.MultipartUploadURL, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("create multipart upload: %d %s", status, body)
	}
	uploadID := xmlField(t, body, "UploadId")
	if uploadID == "" {
		t.Fatalf("create multipart upload: no UploadId in %s", body)
	}
	nums, sums := []int{}, map[int]string{}
	for _, pt := range parts {
		nums = append(nums, pt.n)
		sums[pt.n] = md5b64(pt.data)
	}
	urls, err := p.S3PartURLs(st, key, uploadID, nums, sums)
	if err != nil {
		t.Fatal(err)
	}
	etags := map[int]string{}
	for i, pt := range parts {
		status, hdr, body := do(t, http.MethodPut, urls[i].URL, pt.data, map[string]string{"Content-MD5": sums[pt.n]})
		if status != http.StatusOK {
			t.Fatalf("upload part %d: %d %s", pt.n, status, body)
		}
		etags[pt.n] = hdr.Get("ETag")
	}
	lp, err := p.S3ListPartsURL(st, key, uploadID)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = do(t, http.MethodGet, lp, nil, nil)
	if status != http.StatusOK || strings.Count(body, "<PartNumber>") != len(parts) {
		t.Fatalf("list parts: %d %s", status, body)
	}
	listed := parts
	if mangle != nil {
		listed = mangle(parts)
	}
	var sb strings.Builder
	sb.WriteString("<CompleteMultipartUpload>")
	for _, pt := range listed {
		fmt.Fprintf(&sb, "<Part><ETag>%s</ETag><PartNumber>%d</PartNumber></Part>", etags[pt.n], pt.n)
	}
	sb.WriteString("</CompleteMultipartUpload>")
	complete, _, err := p.S3MultipartURLs(st, key, uploadID)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = do(t, http.MethodPost, complete, []byte(sb.String()), map[string]string{"Content-Type": "application/xml"})
	return status, body
}

func TestS3PresignedMultipartStoresTheObjectOnBuiltinAndVersity(t *testing.T) {
	data := randomBytes(11 << 20)
	for _, pl := range s3Planes(t) {
		t.Run(pl.name, func(t *testing.T) {
			key := "ferry/My Folder/clip é+1.mov"
			status, body := s3Multipart(t, pl.f.p, pl.st, key, splitParts(data, 5<<20), nil)
			if status != http.StatusOK || strings.Contains(body, "<Error>") {
				t.Fatalf("complete: %d %s", status, body)
			}
			if got := readBack(t, pl.f.p, pl.st, key); string(got) != string(data) {
				t.Fatalf("read back %d bytes, want the %d uploaded", len(got), len(data))
			}
		})
	}
}

func TestS3CompleteRefusesWhatS3Refuses(t *testing.T) {
	cases := []struct {
		name     string
		partSize int
		total    int
		mangle   func([]s3Part) []s3Part
		code     string
	}{
		{"parts under 5 MiB", 1 << 20, 3 << 20, nil, "EntityTooSmall"},
		{"parts out of order", 5 << 20, 11 << 20, func(p []s3Part) []s3Part { return []s3Part{p[1], p[0], p[2]} }, "InvalidPartOrder"},
		{"a part never uploaded", 5 << 20, 11 << 20, func(p []s3Part) []s3Part { return []s3Part{p[0], p[1], {n: 4}} }, "InvalidPart"},
	}
	data := randomBytes(11 << 20)
	for _, pl := range s3Planes(t) {
		for _, c := range cases {
			t.Run(pl.name+"/"+c.name, func(t *testing.T) {
				status, body := s3Multipart(t, pl.f.p, pl.st, "ferry/refused.bin", splitParts(data[:c.total], c.partSize), c.mangle)
				if status != http.StatusBadRequest || xmlField(t, body, "Code") != c.code {
					t.Fatalf("complete: %d %s, want 400 %s", status, body, c.code)
				}
			})
		}
	}
}

func TestS3SinglePutRefusesTamperedSignatureAndBadDigest(t *testing.T) {
	data := randomBytes(64 << 10)
	for _, pl := range s3Planes(t) {
		t.Run(pl.name, func(t *testing.T) {
			uf, err := pl.f.p.UploadFields(pl.st, "ferry/single.bin", int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(uf.UploadURL)
			q := u.Query()
			sig := []byte(q.Get("X-Amz-Signature"))
			sig[0] ^= 1
			q.Set("X-Amz-Signature", string(sig))
			u.RawQuery = q.Encode()
			if status, _, body := do(t, http.MethodPut, u.String(), data, nil); status != http.StatusForbidden || xmlField(t, body, "Code") != "SignatureDoesNotMatch" {
				t.Fatalf("tampered signature: %d %s, want 403 SignatureDoesNotMatch", status, body)
			}
			if status, _, body := do(t, http.MethodPut, uf.UploadURL, data, map[string]string{"Content-MD5": md5b64(data[1:])}); status != http.StatusBadRequest || xmlField(t, body, "Code") != "BadDigest" {
				t.Fatalf("wrong Content-MD5: %d %s, want 400 BadDigest", status, body)
			}
			if status, hdr, body := do(t, http.MethodPut, uf.UploadURL, data, map[string]string{"Content-MD5": md5b64(data)}); status != http.StatusOK || hdr.Get("ETag") == "" {
				t.Fatalf("put: %d %s", status, body)
			}
			if got := readBack(t, pl.f.p, pl.st, "ferry/single.bin"); string(got) != string(data) {
				t.Fatal("read back differs from what was put")
			}
		})
	}
}

func TestS3PresignedURLsExpire(t *testing.T) {
	f := newFixture(t, Options{URLTTL: 10 * time.Minute})
	st := f.storage(t, MethodS3)
	uf, err := f.p.UploadFields(st, "ferry/late.bin", 3)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(11 * time.Minute)
	for _, u := range []string{uf.UploadURL, uf.MultipartUploadURL} {
		method := http.MethodPut
		if strings.Contains(u, "uploads") {
			method = http.MethodPost
		}
		status, _, body := do(t, method, u, []byte("abc"), nil)
		if status != http.StatusForbidden || xmlField(t, body, "Code") != "AccessDenied" || !strings.Contains(body, "Request has expired") {
			t.Fatalf("%s after expiry: %d %s, want 403 AccessDenied Request has expired", method, status, body)
		}
	}
}

func TestS3AbortForgetsTheUpload(t *testing.T) {
	for _, pl := range s3Planes(t) {
		t.Run(pl.name, func(t *testing.T) {
			p, st, key := pl.f.p, pl.st, "ferry/aborted.bin"
			uf, _ := p.UploadFields(st, key, 0)
			_, _, body := do(t, http.MethodPost, uf.MultipartUploadURL, nil, nil)
			id := xmlField(t, body, "UploadId")
			_, abort, err := p.S3MultipartURLs(st, key, id)
			if err != nil {
				t.Fatal(err)
			}
			if status, _, body := do(t, http.MethodDelete, abort, nil, nil); status != http.StatusNoContent {
				t.Fatalf("abort: %d %s", status, body)
			}
			urls, _ := p.S3PartURLs(st, key, id, []int{1}, nil)
			if status, _, body := do(t, http.MethodPut, urls[0].URL, []byte("x"), nil); status != http.StatusNotFound || xmlField(t, body, "Code") != "NoSuchUpload" {
				t.Fatalf("part after abort: %d %s, want 404 NoSuchUpload", status, body)
			}
			// The server-side abort (iconik's multipart/cleanup) of a second upload.
			_, _, body = do(t, http.MethodPost, uf.MultipartUploadURL, nil, nil)
			id = xmlField(t, body, "UploadId")
			if err := p.S3Abort(st, key, id); err != nil {
				t.Fatalf("S3Abort: %v", err)
			}
			lp, _ := p.S3ListPartsURL(st, key, id)
			if status, _, body := do(t, http.MethodGet, lp, nil, nil); status != http.StatusNotFound {
				t.Fatalf("list parts after S3Abort: %d %s, want 404", status, body)
			}
		})
	}
}
