package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Gate is what ingest asks the domain; implemented by the web/portal side.
type Gate interface {
	// Admit runs in tusd's pre-create hook, before any byte is stored, for every creation: whole
	// files, partial uploads (u.IsPartial) and finals (u.IsFinal, u.PartialIDs). u.ID is the ID the
	// upload will have. It authorises the upload (package token, in u.Metadata["package_token"] or
	// the bearer header) and validates metadata (paths via pathsafe, limits, duplicates). Return
	// *Rejection to refuse with a status+code+message. u.Size is -1 when the length is deferred.
	Admit(ctx context.Context, u Upload) (Admission, error)
	// Complete runs in tusd's PreFinishResponseCallback for whole files (never partials) and must
	// record completion durably before returning. It MUST be idempotent: ingest calls it again from
	// Reconcile for every finished upload whose completion it did not see acknowledged (the process
	// may die between Complete returning and ingest noting it).
	//
	// A *Rejection means the upload can never become a file (a newer upload replaced it, its file
	// was refused for good); the gate has recorded and logged whatever it needs. ingest then
	// abandons the upload: it answers the sender and every later request on it with the
	// rejection, never calls Complete for it again, and Cleanup removes its bytes in due course.
	// Any other error is taken as passing: Reconcile retries it.
	Complete(ctx context.Context, u Upload, sum Checksums) error
	// Failed records that a finished upload failed its integrity check; ingest then deletes its
	// bytes. It is also called for a partial upload (u.IsPartial) whose declared sha256 did not
	// match: the sender may re-send that partial, so a gate may only log it.
	Failed(ctx context.Context, u Upload, reason string) error
	// Removed is told of a partial upload (u.IsPartial) that Cleanup removed because no final
	// upload took it and it sat idle: its bytes are gone, so a gate gives back what admitting it
	// counted. Errors are logged; the removal stands.
	Removed(ctx context.Context, u Upload) error
}

// Upload describes one tus upload to the Gate. Metadata is the sender's tus metadata (with
// package_token removed once admitted, so it is never stored) plus Admission.Metadata.
type Upload struct {
	ID         string
	Size       int64
	Metadata   map[string]string
	IsPartial  bool
	IsFinal    bool
	PartialIDs []string
	Header     http.Header // the request's header; nil when called from Reconcile
}

// Admission is what the Gate hands back when it admits an upload.
type Admission struct {
	// Metadata is stored with the upload and handed back to Complete and Failed (for example
	// package_id, file_id). tus HEAD responses echo metadata to the sender: put no secret here.
	Metadata map[string]string
	// Supersedes lists earlier uploads this one takes the place of (the same file, sent again):
	// ingest abandons them with Superseded, so they take no more bytes and never complete.
	Supersedes []string
	// Superseded is what a request on a superseded upload is answered with.
	Superseded *Rejection
}

// Rejection refuses an upload with an HTTP status and a contract error code.
type Rejection struct {
	Status        int
	Code, Message string
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("upload rejected: %d %s: %s", r.Status, r.Code, r.Message)
}

// Checksums are what ingest computed over an upload's bytes.
type Checksums struct {
	// SHA256 is nil for a parallel upload's final: each partial was verified against its declared
	// digest on arrival, and delivery's sequential read confirms the whole file.
	SHA256 []byte
}

// Blob reads a finished upload. A final upload reads its partials in order (no copy was made).
// Open's blobs also have OpenRange (transfer.RangeOpener: a range within one part file goes out
// with sendfile), which delivery finds by type assertion.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Errors of Open and Delete, for errors.Is.
var (
	ErrNotFound    = errors.New("ingest: upload not found")
	ErrNotFinished = errors.New("ingest: upload not finished")
)

// Config configures ingest. The zero value (with Dir set) runs.
type Config struct {
	Dir      string       // data directory for uploads (required unless Store is set)
	BasePath string       // URL path the handler is mounted at; default "/uploads/"
	Logger   *slog.Logger // default slog.Default()
	// MaxSize is the largest upload in bytes (a whole file, a partial, or a final's sum),
	// advertised as Tus-Max-Size; larger lengths are refused with 413 before anything is stored.
	// 0 = no limit (tests only: a server must keep every size sum far from int64).
	MaxSize int64
	// NoSync skips the fsync of a finished upload's bytes before Complete. Only for tests and
	// benchmarks: without it a power cut can lose bytes already reported complete.
	NoSync bool
	// NetworkTimeout bounds one read of a request body (tusd's NetworkTimeout); default 60s.
	NetworkTimeout time.Duration
	// Locker serialises requests per upload; nil = tusd's in-process
	// memorylocker, enough for one process. Replicas sharing uploads need
	// one lock for all of them (pglocker on PostgreSQL).
	Locker handler.Locker
	// DiskReserve is how many bytes of the file system holding Dir uploads never take: the
	// database and the server's own records grow into them (see Ingest.Space).
	DiskReserve int64
	// Store is where package bytes live; nil means concatstore on local disk under Dir (then
	// NoSync and DiskReserve apply to it). Other stores bring their own settings.
	Store store.Store
	// ForwardedHeaders makes tus Locations use X-Forwarded-Proto/-Host and Forwarded: only for a
	// handler behind a middleware that removes them from untrusted peers (web's, --trusted-proxies).
	ForwardedHeaders bool
}

// Store is the upload store ingest runs on (local disk or S3-compatible object storage).
type Store = store.Store

// Ingest is the upload engine.
type Ingest struct {
	cfg    Config
	gate   Gate
	log    *slog.Logger
	store  store.Store
	locker handler.Locker
	tus    *handler.Handler
	h      http.Handler
}

// New builds the engine and its tus handler over cfg.Dir.
func New(cfg Config, gate Gate) (*Ingest, error) {
	if gate == nil {
		return nil, errors.New("ingest: a Gate is required")
	}
	if cfg.Dir == "" && cfg.Store == nil {
		return nil, errors.New("ingest: Config.Dir (or Config.Store) is required")
	}
	if cfg.BasePath == "" {
		cfg.BasePath = "/uploads/"
	}
	if !strings.HasPrefix(cfg.BasePath, "/") || !strings.HasSuffix(cfg.BasePath, "/") {
		return nil, fmt.Errorf("ingest: BasePath %q must start and end with /", cfg.BasePath)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "ingest")
	st := cfg.Store
	if st == nil {
		disk, err := concatstore.New(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("ingest: opening upload store: %w", err)
		}
		disk.Sync = !cfg.NoSync
		disk.Reserve = max(cfg.DiskReserve, 0)
		disk.OnNoSpace = func(err error) {
			// The sender gets 507 and a sentence; the operator gets the path and the cause.
			log.Warn("the upload store is out of space; uploads answer 507 until space is freed", "error", err)
		}
		st = disk
	}
	i := &Ingest{cfg: cfg, gate: gate, log: log, store: st, locker: cfg.Locker}
	if i.locker == nil {
		i.locker = memorylocker.New()
	}

	composer := handler.NewStoreComposer()
	st.UseIn(composer)
	composer.UseLocker(i.locker)
	tus, err := handler.NewHandler(handler.Config{
		StoreComposer:             composer,
		BasePath:                  cfg.BasePath,
		MaxSize:                   cfg.MaxSize,
		DisableDownload:           true, // bytes leave through Open (delivery), never through tus
		Logger:                    newTusdLogger(cfg.Logger),
		PreUploadCreateCallback:   i.preCreate,
		PreFinishResponseCallback: i.preFinish,
		NetworkTimeout:            cfg.NetworkTimeout,
		RespectForwardedHeaders:   cfg.ForwardedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: building tus handler: %w", err)
	}
	i.tus = tus
	i.h = http.StripPrefix(strings.TrimSuffix(cfg.BasePath, "/"), i.jsonErrors(i.authorize(i.keepRequest(tus))))
	return i, nil
}

// Handler serves tus; mount it at Config.BasePath (mux.Handle("/uploads/", ing.Handler())): it
// sees full paths and strips the base itself. Clients send "Authorization: Bearer <upload token>"
// on every request (Uppy: the @uppy/tus `headers` option) and package_token metadata on creation.
// Errors carry the contract's JSON body; a checksum mismatch is 460 with code checksum_mismatch.
func (i *Ingest) Handler() http.Handler { return i.h }

// Open reads a finished upload. A final upload reads its partials in order.
func (i *Ingest) Open(ctx context.Context, uploadID string) (Blob, error) {
	b, err := i.store.Open(uploadID)
	if err != nil {
		return nil, fmt.Errorf("ingest: opening upload %s: %w", uploadID, mapErr(err))
	}
	return b, nil
}

// Delete removes an upload; a final upload takes its partials with it.
func (i *Ingest) Delete(ctx context.Context, uploadID string) error {
	unlock, err := i.lock(ctx, uploadID)
	if err != nil {
		return fmt.Errorf("ingest: deleting upload %s: %w", uploadID, err)
	}
	defer unlock()
	if err := i.store.Remove(uploadID); err != nil {
		return fmt.Errorf("ingest: deleting upload %s: %w", uploadID, mapErr(err))
	}
	return nil
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, handler.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, concatstore.ErrNotFinished):
		return ErrNotFinished
	}
	return err
}

// lock takes tusd's per-upload lock, so maintenance never races a request on the same upload.
func (i *Ingest) lock(ctx context.Context, id string) (func(), error) {
	l, err := i.locker.NewLock(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.Lock(ctx, func() {}); err != nil {
		return nil, fmt.Errorf("upload %s is busy: %w", id, err)
	}
	return func() { _ = l.Unlock() }, nil
}
