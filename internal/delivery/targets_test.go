package delivery

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

// TestMD5OfAZeroCopyUploadIsComputedWithoutASecondRead: with a file source
// (sendfile parts), the MD5 still comes from the uploader's own in-order scan.
// A small S3 stand-in receives the parts; real S3 protocols are covered by
// internal/transfer's suite and the e2e tests on the emulator.
func TestMD5OfAZeroCopyUploadIsComputedWithoutASecondRead(t *testing.T) {
	data := bytes.Repeat([]byte("ferry md5 "), (12<<20)/10)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := transfer.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	src := newMD5Source(fs)
	if !transfer.ZeroCopy(uploadSource(src)) {
		t.Fatal("wrapping a file source lost its zero-copy capability")
	}
	var got bytes.Buffer
	parts := map[string][]byte{} // the uploader sends one part at a time (Parallelism 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Has("uploads"):
			w.Write([]byte(`<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>`))
		case r.Method == http.MethodPut:
			b := new(bytes.Buffer)
			b.ReadFrom(r.Body)
			sum := md5.Sum(b.Bytes())
			parts[r.URL.Query().Get("partNumber")] = b.Bytes()
			w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		case r.Method == http.MethodPost:
			for _, n := range []string{"1", "2", "3"} {
				got.Write(parts[n])
			}
			w.Write([]byte(`<CompleteMultipartUploadResult><ETag>"x"</ETag></CompleteMultipartUploadResult>`))
		}
	}))
	defer srv.Close()
	res, err := s3.New(transfer.Options{PartSize: 5 << 20, Parallelism: 1}).Upload(context.Background(), uploadSource(src), fakeS3{srv.URL}, transfer.Params{})
	if err != nil {
		t.Fatal(err)
	}
	want := md5.Sum(data)
	if src.Sum() != hex.EncodeToString(want[:]) || res.Size != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("md5 %q, want %x (size %d, %d bytes received)", src.Sum(), want, res.Size, got.Len())
	}
}

type fakeS3 struct{ url string }

func (f fakeS3) Method() string                              { return "S3" }
func (f fakeS3) S3SignsMD5() bool                            { return false }
func (f fakeS3) S3PutURL(context.Context) (string, error)    { return f.url + "/o", nil }
func (f fakeS3) S3CreateURL(context.Context) (string, error) { return f.url + "/o?uploads", nil }
func (f fakeS3) S3CompleteURL(context.Context, string) (string, error) {
	return f.url + "/o?uploadId=u1", nil
}
func (f fakeS3) S3AbortURL(context.Context, string) (string, error) {
	return f.url + "/o?uploadId=u1", nil
}
func (f fakeS3) S3PartURLs(_ context.Context, _ string, ps []transfer.S3Part) ([]transfer.PartURL, error) {
	out := make([]transfer.PartURL, len(ps))
	for i, p := range ps {
		out[i] = transfer.PartURL{Number: p.Number, URL: f.url + "/o?uploadId=u1&partNumber=" + strconv.Itoa(p.Number)}
	}
	return out, nil
}
