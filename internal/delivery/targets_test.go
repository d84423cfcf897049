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
	"sync/atomic"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/ingest/concatstore"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

// TestMD5OfAZeroCopyUploadIsComputedWithoutASecondRead: with a zero-copy
// source (sendfile parts) the MD5 still comes from the uploader's own
// in-order scan. The sources are a plain file and what ingest stores: a
// single upload, and a parallel upload's final made of two partials, whose
// 5 MiB parts lie inside one partial (sendfile from that partial) or across
// the boundary (read through ReadAt). A small S3 stand-in receives the parts;
// real S3 protocols are covered by internal/transfer's suite and the e2e
// tests on the emulator.
func TestMD5OfAZeroCopyUploadIsComputedWithoutASecondRead(t *testing.T) {
	data := bytes.Repeat([]byte("ferry md5 "), (12<<20)/10)
	store, err := concatstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		open                 func(t *testing.T) transfer.Source
		wantOpened, wantRead int32 // parts sent from their own descriptor, parts refused one
	}{
		{"a file", func(t *testing.T) transfer.Source {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			fs, err := transfer.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fs.Close() })
			return fs
		}, 3, 0},
		{"an ingest upload", func(t *testing.T) transfer.Source {
			return openIngestBlob(t, store, data)
		}, 3, 0},
		// Partials of 6 MiB: parts [0,5) and [10,12) MiB lie in one, [5,10) spans both.
		{"an ingest final of two partials", func(t *testing.T) transfer.Source {
			return openIngestBlob(t, store, data[:6<<20], data[6<<20:])
		}, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blob := tc.open(t)
			if !transfer.ZeroCopy(uploadSource(newMD5Source(blob))) {
				t.Fatal("the delivery source lost (or never had) the zero-copy capability")
			}
			counted := &countRanges{Source: blob, ro: blob.(transfer.RangeOpener)}
			src := newMD5Source(counted)
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
				t.Fatalf("md5 %q, want %x (size %d, %d bytes received, equal %v)", src.Sum(), want, res.Size, got.Len(), bytes.Equal(got.Bytes(), data))
			}
			if o, r := counted.opened.Load(), counted.refused.Load(); o != tc.wantOpened || r != tc.wantRead {
				t.Fatalf("%d parts from their own descriptor and %d refused, want %d and %d", o, r, tc.wantOpened, tc.wantRead)
			}
		})
	}
}

// openIngestBlob stores parts the way ingest does (one upload, or partials
// concatenated by a final) and opens the result as delivery does.
func openIngestBlob(t *testing.T, s *concatstore.Store, parts ...[]byte) transfer.Source {
	t.Helper()
	ctx := context.Background()
	var ups []handler.Upload
	var size int64
	for _, p := range parts {
		u, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(p)), IsPartial: len(parts) > 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.WriteChunk(ctx, 0, bytes.NewReader(p)); err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
		size += int64(len(p))
	}
	u := ups[0]
	if len(parts) > 1 {
		f, err := s.NewUpload(ctx, handler.FileInfo{Size: size, IsFinal: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AsConcatableUpload(f).ConcatUploads(ctx, ups); err != nil {
			t.Fatal(err)
		}
		u = f
	}
	info, err := u.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var blob ingest.Blob // the type delivery receives from the server's Blobs
	blob, err = s.Open(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blob.Close() })
	return blob
}

// countRanges counts which parts the uploader sent from their own descriptor.
type countRanges struct {
	transfer.Source
	ro              transfer.RangeOpener
	opened, refused atomic.Int32
}

func (c *countRanges) OpenRange(off, n int64) (*os.File, int64, error) {
	f, pos, err := c.ro.OpenRange(off, n)
	if err != nil {
		c.refused.Add(1)
	} else {
		c.opened.Add(1)
	}
	return f, pos, err
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
