package web

import (
	"io"
	"net/http"
	"time"
)

// serveBlob answers a GET or HEAD for one stored file with HTTP Range support
// (single and multiple ranges, If-Range, conditional requests) by handing
// http.ServeContent a ReadSeeker over the blob's ReaderAt: only the requested
// ranges are read, in bounded chunks.
func serveBlob(w http.ResponseWriter, r *http.Request, name string, modified time.Time, ra io.ReaderAt, size int64, etag string) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", contentDisposition("attachment", name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
	}
	http.ServeContent(w, r, "", modified, io.NewSectionReader(ra, 0, size))
}
