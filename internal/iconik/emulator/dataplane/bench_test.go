package dataplane

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

const benchSize = 64 << 20

// BenchmarkUpload writes one 64 MiB object per iteration through each built-in plane. The first
// sub-benchmark, "reference", is the floor: the same loopback PUT into a handler that only copies the
// body to a file. Every plane reports x_reference = its throughput / the reference's (1.0 = as fast).
// Run all of them in one invocation: go test -run '^$' -bench Upload -benchtime 5x ./internal/iconik/emulator/dataplane/
func BenchmarkUpload(b *testing.B) {
	data := randomBytes(benchSize)
	f := newFixture(b, Options{})
	var ref time.Duration
	report := func(b *testing.B) {
		if ref > 0 && b.N > 0 {
			b.ReportMetric(float64(ref)/float64(b.Elapsed()/time.Duration(b.N)), "x_reference")
		}
	}
	must := func(b *testing.B, what string, status int, body string, want ...int) {
		for _, w := range want {
			if status == w {
				return
			}
		}
		b.Fatalf("%s: %d %s", what, status, body)
	}

	b.Run("reference", func(b *testing.B) {
		dir := b.TempDir()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out, err := os.Create(filepath.Join(dir, "obj"))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			_, err = io.Copy(out, r.Body)
			out.Close()
			if err != nil {
				http.Error(w, err.Error(), 500)
			}
		}))
		defer srv.Close()
		b.SetBytes(benchSize)
		for b.Loop() {
			status, _, body := do(b, http.MethodPut, srv.URL, data, nil)
			must(b, "reference PUT", status, body, 200)
		}
		ref = b.Elapsed() / time.Duration(b.N)
	})

	b.Run("s3-put", func(b *testing.B) {
		st := f.storage(b, MethodS3)
		uf, _ := f.p.UploadFields(st, "bench/obj", benchSize)
		b.SetBytes(benchSize)
		for b.Loop() {
			status, _, body := do(b, http.MethodPut, uf.UploadURL, data, nil)
			must(b, "PutObject", status, body, 200)
		}
		report(b)
	})

	b.Run("s3-multipart-8MiB", func(b *testing.B) {
		st := f.storage(b, MethodS3)
		key := "bench/obj"
		uf, _ := f.p.UploadFields(st, key, benchSize)
		parts := splitParts(data, 8<<20)
		nums := make([]int, len(parts))
		for i := range parts {
			nums[i] = i + 1
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			status, _, body := do(b, http.MethodPost, uf.MultipartUploadURL, nil, nil)
			must(b, "CreateMultipartUpload", status, body, 200)
			id := xmlField(b, body, "UploadId")
			urls, _ := f.p.S3PartURLs(st, key, id, nums, nil)
			var sb strings.Builder
			sb.WriteString("<CompleteMultipartUpload>")
			for i, pt := range parts {
				status, hdr, body := do(b, http.MethodPut, urls[i].URL, pt.data, nil)
				must(b, "UploadPart", status, body, 200)
				fmt.Fprintf(&sb, "<Part><ETag>%s</ETag><PartNumber>%d</PartNumber></Part>", hdr.Get("ETag"), pt.n)
			}
			sb.WriteString("</CompleteMultipartUpload>")
			complete, _, _ := f.p.S3MultipartURLs(st, key, id)
			status, _, body = do(b, http.MethodPost, complete, []byte(sb.String()), nil)
			must(b, "CompleteMultipartUpload", status, body, 200)
		}
		report(b)
	})

	b.Run("gcs-resumable-8MiB", func(b *testing.B) {
		st := f.storage(b, MethodGCS)
		uf, _ := f.p.UploadFields(st, "bench/obj", benchSize)
		b.SetBytes(benchSize)
		for b.Loop() {
			status, hdr, body := do(b, http.MethodPost, uf.UploadURL, []byte{}, map[string]string{"x-goog-resumable": "start"})
			must(b, "start session", status, body, 201)
			session := hdr.Get("Location")
			for off := 0; off < benchSize; off += 8 << 20 {
				chunk := data[off:min(off+8<<20, benchSize)]
				cr := fmt.Sprintf("bytes %d-%d/%d", off, off+len(chunk)-1, benchSize)
				status, _, body := do(b, http.MethodPut, session, chunk, map[string]string{"Content-Range": cr})
				must(b, "chunk", status, body, 308, 200)
			}
		}
		report(b)
	})

	b.Run("azure-put-blob", func(b *testing.B) {
		st := f.storage(b, MethodAzure)
		uf, _ := f.p.UploadFields(st, "bench/obj", benchSize)
		b.SetBytes(benchSize)
		for b.Loop() {
			status, _, body := do(b, http.MethodPut, uf.UploadURL, data, map[string]string{"x-ms-blob-type": "BlockBlob"})
			must(b, "Put Blob", status, body, 201)
		}
		report(b)
	})

	b.Run("azure-sdk-blocks-8MiB", func(b *testing.B) {
		st := f.storage(b, MethodAzure)
		uf, _ := f.p.UploadFields(st, "bench/obj", benchSize)
		c := azClient(&testing.T{}, uf.UploadURL)
		ctx := context.Background()
		b.SetBytes(benchSize)
		for b.Loop() {
			var ids []string
			for i, off := 0, 0; off < benchSize; i, off = i+1, off+8<<20 {
				ids = append(ids, blockID(i))
				if _, err := c.StageBlock(ctx, blockID(i), streaming.NopCloser(bytes.NewReader(data[off:min(off+8<<20, benchSize)])), nil); err != nil {
					b.Fatalf("StageBlock: %v", err)
				}
			}
			if _, err := c.CommitBlockList(ctx, ids, nil); err != nil {
				b.Fatalf("CommitBlockList: %v", err)
			}
		}
		report(b)
	})

	b.Run("b2-upload-file", func(b *testing.B) {
		st := f.storage(b, MethodB2)
		uf, _ := f.p.UploadFields(st, "bench/obj", benchSize)
		sum := sha1.Sum(data) // the uploader hashes before sending; not part of the plane's cost
		h := map[string]string{"Authorization": uf.UploadCredentials["authorizationToken"].(string), "X-Bz-File-Name": "bench/obj", "X-Bz-Content-Sha1": hex.EncodeToString(sum[:])}
		b.SetBytes(benchSize)
		for b.Loop() {
			status, _, body := do(b, http.MethodPost, uf.UploadURL, data, h)
			must(b, "b2_upload_file", status, body, 200)
		}
		report(b)
	})

	b.Run("b2-large-8MiB", func(b *testing.B) {
		st := f.storage(b, MethodB2)
		parts := splitParts(data, 8<<20)
		sums := make([]string, len(parts))
		for i, pt := range parts {
			s := sha1.Sum(pt.data)
			sums[i] = hex.EncodeToString(s[:])
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			lf, err := f.p.B2StartLarge(st, "bench/obj")
			if err != nil {
				b.Fatal(err)
			}
			for i, pt := range parts {
				h := map[string]string{"Authorization": lf.AuthorizationToken, "X-Bz-Part-Number": strconv.Itoa(pt.n), "X-Bz-Content-Sha1": sums[i]}
				status, _, body := do(b, http.MethodPost, lf.UploadURL, pt.data, h)
				must(b, "b2_upload_part", status, body, 200)
			}
			if err := f.p.B2FinishLarge(st, lf.UploadFileID, sums); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}
