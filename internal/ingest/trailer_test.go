package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// trailerPatch sends chunk at offset as a chunked PATCH whose Upload-Checksum trailer (if
// trailer != "") is set once the body is read, as ferry send does.
func (rg *rig) trailerPatch(url string, offset int, chunk []byte, trailer string) *tusResp {
	rg.t.Helper()
	body := &trailerBody{r: bytes.NewReader(chunk)}
	req, err := http.NewRequest(http.MethodPatch, url, body)
	if err != nil {
		rg.t.Fatal(err)
	}
	body.req, body.value = req, trailer
	req.ContentLength = -1 // chunked: the only framing that carries trailers
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.Itoa(offset))
	if trailer != "" {
		req.Trailer = http.Header{HeaderChecksum: nil}
	}
	res, err := rg.srv.Client().Do(req)
	if err != nil {
		rg.t.Fatalf("PATCH %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &tusResp{Status: res.StatusCode, Header: res.Header, Body: b}
}

type trailerBody struct {
	r     io.Reader
	req   *http.Request
	value string
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.value != "" {
		b.req.Trailer.Set(HeaderChecksum, b.value)
	}
	return n, err
}

func checksumOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256 " + base64.StdEncoding.EncodeToString(s[:])
}

func trailerMeta(data []byte) map[string]string {
	m := fileMeta(data, false)
	m[MetaSHA256Trailer] = "1"
	return m
}

func TestTrailerDigestIsVerifiedOnTheLastByte(t *testing.T) {
	wrong := checksumOf([]byte("something else"))
	cases := []struct {
		name       string
		trailer    func(data []byte) string
		wantStatus int
		wantCode   string
	}{
		{"right digest completes", checksumOf, http.StatusNoContent, ""},
		{"wrong digest is refused", func([]byte) string { return wrong }, StatusChecksumMismatch, "checksum_mismatch"},
		{"malformed digest is refused", func([]byte) string { return "sha256 not-base64!" }, http.StatusBadRequest, "invalid_checksum"},
		{"other algorithm is refused", func([]byte) string { return "md5 AAAA" }, http.StatusBadRequest, "invalid_checksum"},
		{"announced digest missing is not completed", func([]byte) string { return "" }, http.StatusBadRequest, "checksum_missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t)
			data := randBytes(t, 300_000)
			url := rg.create(len(data), trailerMeta(data), nil)
			// Two PATCHes: the digest covers the whole upload, not the last request's bytes.
			if res := rg.patch(url, 0, data[:100_000]); res.Status != http.StatusNoContent {
				t.Fatalf("first PATCH: %d %s", res.Status, res.Body)
			}
			res := rg.trailerPatch(url, 100_000, data[100_000:], tc.trailer(data))
			if res.Status != tc.wantStatus || res.errCode() != tc.wantCode {
				t.Fatalf("last PATCH: %d %s, want %d %s", res.Status, res.Body, tc.wantStatus, tc.wantCode)
			}
			cs := rg.gate.completions()
			if tc.wantStatus != http.StatusNoContent {
				if len(cs) != 0 {
					t.Fatalf("an unverified upload was completed: %+v", cs)
				}
				return
			}
			if len(cs) != 1 || !bytes.Equal(cs[0].Sum.SHA256, sha256Of(data)) {
				t.Fatalf("completions = %+v", cs)
			}
		})
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestMissingTrailerIsDeclaredAfterwardsInAHeader(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 200_000)
	url := rg.create(len(data), trailerMeta(data), nil)
	// A proxy dropped the trailer: every byte is stored, the upload is not complete.
	if res := rg.trailerPatch(url, 0, data, ""); res.errCode() != "checksum_missing" {
		t.Fatalf("PATCH without the announced trailer: %d %s", res.Status, res.Body)
	}
	if err := rg.ing.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cs := rg.gate.completions(); len(cs) != 0 {
		t.Fatalf("Reconcile completed an upload whose digest never arrived: %+v", cs)
	}
	declare := func(v string) *tusResp {
		return rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true,
			Header: map[string]string{"Upload-Offset": strconv.Itoa(len(data)), HeaderChecksum: v}})
	}
	if res := declare(checksumOf([]byte("x"))); res.Status != StatusChecksumMismatch {
		t.Fatalf("a wrong declaration: %d %s, want 460", res.Status, res.Body)
	}
	// The mismatch dropped the bytes: the sender sends them again.
	if h := rg.do(tusReq{Method: "HEAD", URL: url, Token: testToken}); h.Status != http.StatusNotFound {
		t.Fatalf("HEAD after mismatch: %d", h.Status)
	}
	url = rg.create(len(data), trailerMeta(data), nil)
	if res := rg.trailerPatch(url, 0, data, ""); res.errCode() != "checksum_missing" {
		t.Fatalf("PATCH without the trailer: %d %s", res.Status, res.Body)
	}
	if res := declare(checksumOf(data)); res.Status != http.StatusNoContent {
		t.Fatalf("declaring the right digest: %d %s", res.Status, res.Body)
	}
	if cs := rg.gate.completions(); len(cs) != 1 || !bytes.Equal(cs[0].Sum.SHA256, sha256Of(data)) {
		t.Fatalf("completions = %+v", cs)
	}
	// Declaring again (a lost answer, retried) is answered the same, and completes nothing twice.
	if res := declare(checksumOf(data)); res.Status != http.StatusNoContent {
		t.Fatalf("declaring again: %d %s", res.Status, res.Body)
	}
	if cs := rg.gate.completions(); len(cs) != 1 {
		t.Fatalf("completions after a repeated declaration = %d", len(cs))
	}
}

func TestFinalRefusesAPartialWhoseAnnouncedDigestNeverArrived(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 200_000)
	n := len(data) / 2
	var urls []string
	for i, part := range [][]byte{data[:n], data[n:]} {
		m := partialMeta(i, part)
		delete(m, MetaSHA256)
		m[MetaSHA256Trailer] = "1"
		u := rg.create(len(part), m, map[string]string{"Upload-Concat": "partial"})
		trailer := checksumOf(part)
		if i == 1 {
			trailer = ""
		}
		rg.trailerPatch(u, 0, part, trailer)
		urls = append(urls, u)
	}
	res := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, false),
		Header: map[string]string{"Upload-Concat": "final;" + strings.Join(urls, " ")}})
	if res.Status != http.StatusConflict || res.errCode() != "partial_unverified" {
		t.Fatalf("final over an unverified partial: %d %s, want 409 partial_unverified", res.Status, res.Body)
	}
}

func TestCleanupTakesAFinishedUploadWhoseAnnouncedDigestNeverCame(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 50_000)
	lost := rg.create(len(data), trailerMeta(data), nil)
	rg.trailerPatch(lost, 0, data, "")
	verified := rg.create(len(data), trailerMeta(data), nil)
	rg.trailerPatch(verified, 0, data, checksumOf(data))
	old := time.Now().Add(-3 * time.Hour)
	ents, _ := os.ReadDir(rg.dir)
	for _, e := range ents {
		_ = os.Chtimes(filepath.Join(rg.dir, e.Name()), old, old)
	}
	if n, err := rg.ing.Cleanup(t.Context(), time.Hour); err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1 (the upload whose digest never came)", n, err)
	}
	if res := rg.do(tusReq{Method: "HEAD", URL: lost, Token: testToken}); res.Status != http.StatusNotFound {
		t.Errorf("the unverified upload: HEAD %d, want 404", res.Status)
	}
	if res := rg.do(tusReq{Method: "HEAD", URL: verified, Token: testToken}); res.Status != http.StatusOK {
		t.Errorf("the verified upload: HEAD %d, want 200 (kept)", res.Status)
	}
}
