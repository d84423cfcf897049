package transfer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ferryhq/ferry/internal/idleconn"
)

// Source is a sized, re-readable file: a stored package file (ingest's Blob
// fits). Parts are read with io.SectionReader straight from it, so a file
// source needs no buffering at all.
type Source interface {
	io.ReaderAt
	Size() int64
}

// Target is what iconik returned for one file plus the calls that fetch more
// URLs for it. Each provider package asserts the richer interface it needs
// (S3Target, GCSTarget, AzureTarget, B2Target), all defined in this package
// so that delivery implements them in one place.
//
// Every method must return a URL valid now: the uploader calls it again when
// the provider refused a URL as expired (iconik: generate_signed_post_url=true).
type Target interface {
	// Method is iconik's storage method: S3, GCS, AZURE or B2.
	Method() string
}

// Uploader sends one file. Implementations: s3.New, gcs.New, azure.New, b2.New.
type Uploader interface {
	Upload(ctx context.Context, src Source, target Target, p Params) (Result, error)
}

// Params are the per-upload knobs. A struct rather than positional arguments
// so that a new field never breaks a caller.
type Params struct {
	// Resume is the State saved by Checkpoint during an earlier attempt of the
	// same file to the same target; nil starts afresh. A State that does not
	// fit (other provider, size or part size) is ignored and the upload restarts.
	Resume *State
	// Checkpoint is called after every durable step (multipart created, part
	// acknowledged, session started, chunk accepted) with a State to persist.
	// Calls are serialised. An error stops the upload.
	Checkpoint func(State) error
	// Progress gets the number of bytes of the file sent so far, at byte
	// granularity, never decreasing. Calls are serialised; keep it cheap.
	Progress func(sent int64)
}

// ErrCanceled is the cancellation cause (context.WithCancelCause) that means
// "the user gave up on this file": the uploader then aborts the provider's
// upload (S3 AbortMultipartUpload, B2 cancel_large_file, GCS session delete)
// so that no half object stays behind. Any other cancellation (process
// shutdown) keeps the upload resumable from the last checkpoint.
var ErrCanceled = errors.New("transfer canceled")

// Result describes the object the provider accepted.
type Result struct {
	Size   int64
	SHA256 string // lowercase hex of the whole file, computed in order while reading
	// ETag is the provider's object tag (S3/Azure ETag, B2 fileId, GCS generation or etag).
	ETag string
	// Parts is how many parts (S3/B2), blocks (Azure) or chunks (GCS) were used; 0 for a single request.
	Parts int
	// Resumed counts parts the provider already held from an earlier attempt (not sent again).
	Resumed int
	// Checked names the provider checks that passed, e.g. "part-etag-md5", "b2-sha1", "gcs-crc32c".
	Checked []string
	// InFlight is the most parts that were in flight at once (S3 adapts
	// it to the link, see Streams); 0 when not reported.
	InFlight int
}

// State is what a later attempt needs to resume one file without re-sending
// acknowledged parts. It is JSON; persist it as is. It may hold a GCS session
// URI or a B2 upload token: treat it like a credential and never log it.
type State struct {
	Method   string `json:"method"`
	Size     int64  `json:"size"`
	PartSize int64  `json:"part_size"`
	// UploadID is the S3 UploadId, the B2 large fileId or the GCS session URI.
	UploadID string `json:"upload_id,omitempty"`
	// Offset is how many bytes a GCS session has persisted.
	Offset int64       `json:"offset,omitempty"`
	Parts  []PartState `json:"parts,omitempty"`
}

// PartState is one acknowledged part.
type PartState struct {
	Number int    `json:"n"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag,omitempty"` // S3 ETag (unquoted)
	SHA1   string `json:"sha1,omitempty"` // B2 hex SHA-1
}

// Options configure an uploader. The zero value runs with good defaults.
type Options struct {
	// PartSize is the smallest part size; it grows with the file so that the
	// provider's part count limit holds (5 TiB fits in 10,000 S3 parts).
	// Default 32 MiB: half the part URLs to ask iconik for (its API is rate
	// limited per App-ID) and half the parts for the storage to assemble,
	// against 16 MiB, for the same or slightly better throughput (2 GiB to
	// Versity: 0.91x against 0.88x, and 0.83x for both, of a single PUT in
	// the same runs); with ranges read from a file it costs no memory.
	PartSize int64
	// Parallelism is how many parts of one file are in flight. Parts are read
	// from the source with io.SectionReader, so memory does not grow with it.
	// Default 8. (GCS resumable sessions are sequential by protocol.)
	Parallelism int
	// MaxParallelism is how far S3 may raise the parts in flight while more
	// streams still add throughput (Streams: over a long link each
	// connection is capped, so 8 streams leave most of the link unused).
	// Default 32 when Parallelism is left to its default; otherwise
	// Parallelism, so that a number the caller chose is kept.
	MaxParallelism int
	// MaxAttempts per request (part, create, complete). Default 6.
	MaxAttempts int
	// Backoff returns the pause before retry number attempt (1-based). Default
	// 200ms doubling to 5s, with jitter.
	Backoff func(attempt int) time.Duration
	// HTTPClient sends the bytes. Default: a client with one connection per
	// part in flight and no overall timeout (parts of 5 GiB take long).
	HTTPClient *http.Client
	// IdleTimeout drops a connection of the default HTTPClient on which no
	// byte moved either way for this long (a stalled link, a server that
	// stopped reading), so its request fails and is retried instead of
	// holding the file's delivery forever. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// WithDefaults returns o with every zero field filled in.
func (o Options) WithDefaults() Options {
	if o.PartSize <= 0 {
		o.PartSize = 32 << 20
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 8
		if o.MaxParallelism <= 0 {
			o.MaxParallelism = 32
		}
	}
	o.MaxParallelism = max(o.MaxParallelism, o.Parallelism)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient(o.MaxParallelism, o.IdleTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// DefaultIdleTimeout is how long a connection to a provider may go with no
// byte moving either way before it is dropped and its request retried: as
// long as the transport already waits for an answer's headers, and the
// default of rclone's --timeout, which works the same way.
const DefaultIdleTimeout = 5 * time.Minute

// NewHTTPClient returns a client tuned for bulk uploads: keep-alive
// connections for every part in flight, large socket write buffers, no
// response-wide timeout (parts of large files take long), and connections
// dropped once nothing moved on them for idle (idleconn): a server that stops
// reading a part would otherwise hold it, and its file's delivery, forever.
func NewHTTPClient(parallelism int, idle time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           idleconn.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, idle, idle),
		MaxIdleConns:          4 * parallelism,
		MaxIdleConnsPerHost:   2 * parallelism,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        64 << 10,
		ForceAttemptHTTP2:     false, // one TCP connection per part beats HTTP/2 flow-control windows for bulk data
	}
	return &http.Client{Transport: tr}
}

// DefaultBackoff is 200ms doubling up to 5s, with up to 50% jitter.
func DefaultBackoff(attempt int) time.Duration {
	d := 200 * time.Millisecond
	for i := 1; i < attempt && d < 5*time.Second; i++ {
		d *= 2
	}
	d = min(d, 5*time.Second)
	return d/2 + time.Duration(jitter(int64(d/2)))
}

// PartSizeFor returns the part size for a file of size bytes: at least min,
// a multiple of align, and large enough that size fits in maxParts parts.
func PartSizeFor(size, minSize, align int64, maxParts int) int64 {
	ps := max(minSize, (size+int64(maxParts)-1)/int64(maxParts))
	if align > 1 {
		ps = (ps + align - 1) / align * align
	}
	return ps
}

// Part is one range of the source.
type Part struct {
	Number int // 1-based
	Off    int64
	Size   int64
}

// PlanParts cuts size bytes into parts of partSize (the last one shorter).
// A 0-byte file has no parts.
func PlanParts(size, partSize int64) []Part {
	if size <= 0 {
		return nil
	}
	n := int((size + partSize - 1) / partSize)
	parts := make([]Part, n)
	for i := range parts {
		off := int64(i) * partSize
		parts[i] = Part{Number: i + 1, Off: off, Size: min(partSize, size-off)}
	}
	return parts
}

// Canceled reports whether ctx was canceled with ErrCanceled (give up and
// clean up) rather than for a shutdown (keep the upload resumable).
func Canceled(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrCanceled)
}
