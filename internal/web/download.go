package web

import (
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// setBlobHeaders are the headers of every answer carrying a stored file. The
// plan's dry run sets the same ones, so that http.ServeContent takes the same
// path in both runs (a Content-Type is set: it never sniffs).
func setBlobHeaders(h http.Header, name, etag string) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", contentDisposition("attachment", name))
	h.Set("X-Content-Type-Options", "nosniff")
	if etag != "" {
		h.Set("ETag", `"`+etag+`"`)
	}
}

// servePlan is what http.ServeContent is about to answer to a request.
type servePlan struct {
	status    int   // 200, 206, or a status without the file's bytes (304, 412, 416)
	bytes     int64 // body bytes of a GET: the range(s), with part headers when multipart
	fromStart bool  // the body begins at byte 0: a download starts, rather than resumes
}

// planBlob asks http.ServeContent itself what it would send, by running it
// for a HEAD copy of r over a reader that has no bytes: preconditions,
// If-Range, single, suffix and multiple ranges (and the ones it widens to the
// whole file) are decided by the same code that then serves them, so the
// charge taken before serving cannot disagree with what is served.
func planBlob(r *http.Request, modified time.Time, size int64, etag string) servePlan {
	head := r.Clone(r.Context())
	head.Method = http.MethodHead
	rec := &headRecorder{header: http.Header{}}
	setBlobHeaders(rec.header, "", etag)
	http.ServeContent(rec, head, "", modified, io.NewSectionReader(noBytes{}, 0, size))
	p := servePlan{status: rec.status}
	if p.status != http.StatusOK && p.status != http.StatusPartialContent {
		return p
	}
	n, err := strconv.ParseInt(rec.header.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 {
		n = math.MaxInt64 // unknown: more than any link allows, so it is refused
	}
	p.bytes = n
	p.fromStart = p.status == http.StatusOK || strings.HasPrefix(rec.header.Get("Content-Range"), "bytes 0-")
	return p
}

// headRecorder keeps the status and headers of a dry run and drops its body.
type headRecorder struct {
	header http.Header
	status int
}

func (h *headRecorder) Header() http.Header { return h.header }
func (h *headRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
func (h *headRecorder) Write(p []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(p), nil
}

var errNoBytes = errors.New("web: the dry run of a download reads no bytes")

type noBytes struct{}

func (noBytes) ReadAt([]byte, int64) (int, error) { return 0, errNoBytes }

var errOverCharge = errors.New("web: a download read past the bytes charged for it")

// meteredReaderAt counts what is read from a blob and refuses to read past
// max: whatever a response does, it carries no more of the file than was
// charged. Reads may come from ServeContent's multipart goroutine, hence the
// atomic.
type meteredReaderAt struct {
	ra   io.ReaderAt
	max  int64
	read atomic.Int64
}

func (m *meteredReaderAt) ReadAt(p []byte, off int64) (int, error) {
	left := m.max - m.read.Load()
	if left <= 0 {
		return 0, errOverCharge
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := m.ra.ReadAt(p, off)
	m.read.Add(int64(n))
	return n, err
}

// serveBlob answers a GET or HEAD for one stored file with HTTP Range support
// (single and multiple ranges, If-Range, conditional requests) by handing
// http.ServeContent a ReadSeeker over the blob's ReaderAt: only the requested
// ranges are read, in bounded chunks.
func serveBlob(w http.ResponseWriter, r *http.Request, name string, modified time.Time, ra io.ReaderAt, size int64, etag string) {
	setBlobHeaders(w.Header(), name, etag)
	http.ServeContent(w, r, "", modified, io.NewSectionReader(ra, 0, size))
}
