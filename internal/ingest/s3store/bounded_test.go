package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/ingest/store"
	"github.com/ferryhq/ferry/internal/testbed"
)

// wire watches what the store sends to and asks of the real S3 server.
type wire struct {
	mu       sync.Mutex
	sent     int64    // body bytes of data PUTs (parts, objects, incomplete parts) S3 accepted
	gets     []string // keys read, with their Range
	delegate http.RoundTripper
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.delegate.RoundTrip(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && err == nil && resp.StatusCode == 200 && !strings.HasSuffix(r.URL.Path, ".info"):
		w.sent += r.ContentLength
	case r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/"):
		w.gets = append(w.gets, r.URL.Path+" "+r.Header.Get("Range"))
	}
	return resp, err
}

func (w *wire) sentBytes() int64 { w.mu.Lock(); defer w.mu.Unlock(); return w.sent }

func (w *wire) getsOf(suffix string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, g := range w.gets {
		if strings.HasSuffix(strings.Fields(g)[0], suffix) {
			out = append(out, g)
		}
	}
	return out
}

func watchedStore(t *testing.T, partSize int64) (*wire, func() *s3store.Store) {
	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	w := &wire{delegate: http.DefaultTransport}
	c := clientOf(srv, srv.Endpoint, w)
	return w, func() *s3store.Store {
		s, err := s3store.New(c, s3store.Config{Bucket: bucket, Prefix: "u", PartSize: partSize})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// clientOf is a client for the test S3 server reached at endpoint through rt, set up as
// NewClient sets up the production one.
func clientOf(srv *testbed.S3Server, endpoint string, rt http.RoundTripper) *s3.Client {
	return s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), Region: srv.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""), HTTPClient: &http.Client{Transport: rt},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired, ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func write(t *testing.T, s *s3store.Store, id string, off int64, src io.Reader) {
	t.Helper()
	ctx := context.Background()
	u, err := s.GetUpload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteChunk(ctx, off, src); err != nil {
		t.Fatalf("WriteChunk at %d: %v", off, err)
	}
	if info, _ := u.GetInfo(ctx); store.Finished(info) {
		if err := u.FinishUpload(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeNeverReadsUploadedBytesBack: an upload sent in PATCHes that each reach a new store
// instance, then hashed, reads no byte of its data object back; the only bytes read are the
// incomplete part (under S3's 5 MiB minimum) that the next PATCH turns into a part.
func TestResumeNeverReadsUploadedBytesBack(t *testing.T) {
	w, open := watchedStore(t, s3store.MinPartSize)
	patches := []int{1<<20 + 3, 9 << 20, 2 << 20, 4<<20 + 5}
	var data []byte
	for i, n := range patches {
		data = append(data, randBytes(n + i)[i:]...)
	}
	id := store.NewID()
	if _, err := open().NewUpload(context.Background(), handler.FileInfo{ID: id, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, n := range patches {
		write(t, open(), id, int64(off), bytes.NewReader(data[off:off+n]))
		off += n
	}
	sum, err := open().SHA256(id)
	if want := sha256.Sum256(data); err != nil || !bytes.Equal(sum, want[:]) {
		t.Fatalf("SHA256 = %x, %v; want %x", sum, err, want)
	}
	if got := w.getsOf(".bin"); len(got) != 0 {
		t.Fatalf("receiving and hashing read the upload's data back: %v", got)
	}
	for _, g := range w.getsOf(".tail") {
		if !strings.Contains(g, "bytes=0-") {
			t.Fatalf("the incomplete part was read without a range: %s", g)
		}
	}
}

// pacedReader records, after each read, how far the store has not taken more of the body than
// the store's intake ran ahead of what it sent on to S3: memory per PATCH is bounded by two
// parts (one filling while the other is sent), never by the length of the PATCH.
type pacedReader struct {
	r     io.Reader
	read  int64
	w     *wire
	worst int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if ahead := p.read - p.w.sentBytes(); ahead > p.worst {
		p.worst = ahead
	}
	return n, err
}

func TestOnePatchHoldsAtMostTwoPartsInMemory(t *testing.T) {
	const partSize = s3store.MinPartSize
	w, open := watchedStore(t, partSize)
	data := randBytes(37<<20 + 11)
	id := store.NewID()
	if _, err := open().NewUpload(context.Background(), handler.FileInfo{ID: id, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	pr := &pacedReader{r: bytes.NewReader(data), w: w}
	write(t, open(), id, 0, pr)
	if pr.worst > 2*partSize {
		t.Fatalf("the store held %d bytes of the body not yet sent to S3; the bound is two parts of %d", pr.worst, partSize)
	}
	if pr.worst < partSize/2 {
		t.Fatalf("the store held at most %d bytes: the check above watched nothing", pr.worst)
	}
}

// TestAnUploadTooLongForS3IsRefusedAtCreation: S3 allows 10000 parts; an upload whose length
// needs more parts than the bounded buffer allows is refused before anything is stored, not
// after hundreds of GiB.
func TestAnUploadTooLongForS3IsRefusedAtCreation(t *testing.T) {
	_, open := watchedStore(t, 0)
	s := open()
	_, err := s.NewUpload(context.Background(), handler.FileInfo{Size: s3store.MaxUploadSize + 1})
	var he handler.Error
	if !errors.As(err, &he) || he.HTTPResponse.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("creating an upload of %d bytes: %v; want 413", s3store.MaxUploadSize+1, err)
	}
	if ids, err := s.IDs(); err != nil || len(ids) != 0 {
		t.Fatalf("a refused creation stored %v (%v)", ids, err)
	}
	if _, err := s.NewUpload(context.Background(), handler.FileInfo{Size: s3store.MaxUploadSize}); err != nil {
		t.Fatalf("an upload of exactly the largest size is refused: %v", err)
	}
}

// TestSequentialReadsTakeOneGetPerObject: delivery and download links read a blob in small
// sequential chunks (32 KiB through io.Copy, http.ServeContent); each object is one ranged GET
// streamed through, not a request per chunk.
func TestSequentialReadsTakeOneGetPerObject(t *testing.T) {
	w, open := watchedStore(t, 0)
	s := open()
	ctx := context.Background()
	var ids []string
	var whole []byte
	var size int64
	for i, n := range []int{3<<20 + 1, 2 << 20, 1<<20 + 7} {
		b := randBytes(n + i)[i:]
		id := store.NewID()
		if _, err := s.NewUpload(ctx, handler.FileInfo{ID: id, Size: int64(len(b)), IsPartial: true}); err != nil {
			t.Fatal(err)
		}
		write(t, s, id, 0, bytes.NewReader(b))
		ids, whole, size = append(ids, id), append(whole, b...), size+int64(len(b))
	}
	fid := store.NewID()
	f, err := s.NewUpload(ctx, handler.FileInfo{ID: fid, Size: size, IsFinal: true, PartialUploads: ids})
	if err != nil {
		t.Fatal(err)
	}
	var ups []handler.Upload
	for _, id := range ids {
		u, _ := s.GetUpload(ctx, id)
		ups = append(ups, u)
	}
	if err := s.AsConcatableUpload(f).ConcatUploads(ctx, ups); err != nil {
		t.Fatal(err)
	}
	blob, err := open().Open(fid)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	before := len(w.getsOf(".bin"))
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, io.NewSectionReader(blob, 0, blob.Size()), make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), whole) {
		t.Fatalf("the sequential read returned other bytes than were sent")
	}
	if n := len(w.getsOf(".bin")) - before; n > len(ids) {
		t.Fatalf("reading %d bytes in 32 KiB chunks took %d GETs; want one per object (%d)", size, n, len(ids))
	}
	// Random ranges still read right after the streams moved on.
	for _, off := range []int64{size - 10, 5, 3<<20 - 3} {
		p := make([]byte, 10)
		if n, err := blob.ReadAt(p, off); n != 10 || (err != nil && err != io.EOF) || !bytes.Equal(p, whole[off:off+10]) {
			t.Fatalf("ReadAt(10 at %d) = %d, %v, other bytes", off, n, err)
		}
	}
}
