package delivery

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
	"github.com/ferryhq/ferry/internal/transfer/s3"
	"riverqueue.com/riverui"
)

// Connection is what delivery needs to know of a Cloud Connect connection.
type Connection struct {
	ID            string
	StorageID     string // the chosen iconik storage (purpose FILES)
	StorageMethod string // S3 | GCS | AZURE | B2
	// StoragePath is the storage's object key prefix (settings.path).
	StoragePath string
	// StorageAddsUUID: iconik adds a UUID to file names there
	// (settings.add_uuid_to_filenames).
	StorageAddsUUID bool
	// S3SignsMD5: the storage signs part URLs with Content-MD5
	// (presign_md5_checksum).
	S3SignsMD5 bool
	// PortalRoot and SendRoot are the top-level collections (defaults
	// "Portal Downloads" and "MASV").
	PortalRoot, SendRoot string
	// MetadataViewID and DescriptionField say where the description goes
	// ("" view: no description is written; field default "description").
	MetadataViewID, DescriptionField string
}

// Connections opens connections: internal/connect implements it.
type Connections interface {
	// Client returns the connection's iconik client. For a connection marked
	// broken it returns an error matching ErrConnectionBroken.
	Client(ctx context.Context, id string) (*iconik.Client, Connection, error)
}

// BrokenMarker is implemented by Connections that can record that iconik
// refused a connection for good (its token or a role), so that Client
// refuses it from then on and people see why. It is a separate interface
// so that a Connections without a state (a benchmark's) still fits.
type BrokenMarker interface {
	MarkBroken(ctx context.Context, id, reason string) error
}

// ErrConnectionBroken is matched (errors.Is) by the error Connections.Client
// returns for a connection marked broken: a retry would only repeat the
// refusal, so the file fails at once.
var ErrConnectionBroken = errors.New("the connection is marked broken")

// Blob is a stored package file (ingest.Blob fits).
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Blobs opens stored files by upload id.
type Blobs interface {
	Open(ctx context.Context, uploadID string) (Blob, error)
}

// BlobsFunc adapts a function to Blobs.
type BlobsFunc func(ctx context.Context, uploadID string) (Blob, error)

// Open calls f.
func (f BlobsFunc) Open(ctx context.Context, uploadID string) (Blob, error) { return f(ctx, uploadID) }

// Event says a delivery settled (every file delivered or given up on).
type Event struct {
	Delivery *db.Delivery
	Package  *db.Package
	Files    []*db.DeliveryFile
}

// Options configure a Service. DB, Connections and Blobs are required.
type Options struct {
	DB          db.Store
	Connections Connections
	Blobs       Blobs
	// Uploaders per storage method (S3, GCS, AZURE, B2); missing ones get
	// the transfer package's with default options.
	Uploaders map[string]transfer.Uploader
	// Workers is how many files are delivered at once on this machine
	// (default 8); PerDelivery bounds one delivery's share (default 4).
	Workers, PerDelivery int
	// MaxAttempts is how often a file is tried before ferry gives up on it
	// (default 10); attempts are spaced by RetryBackoff (default 1s doubling
	// to 5 min).
	MaxAttempts  int
	RetryBackoff func(attempt int) time.Duration
	// StepRetries is how often one step is retried in place on a transient
	// error before the job is retried by River (default 4).
	StepRetries int
	// IndexGrace is how long a create whose answer was lost may take to show
	// up in iconik's listings (its index lag) before ferry concludes it never
	// happened and creates again (default 30s).
	IndexGrace time.Duration
	// LeaseTTL bounds how long a file stays claimed by a replica that
	// stopped renewing its lease (it renews every quarter of it): after a
	// replica dies, another takes its files over within about this long
	// (default 2m).
	LeaseTTL time.Duration
	// BatchWindow is the longest a batch of files at the keyframes and
	// description step waits for the next file of its delivery to join
	// (batch.go; default 1s). A file with no other file of its delivery
	// running here does not wait.
	BatchWindow time.Duration
	// PollInterval is how often River looks for new jobs (default 100ms).
	PollInterval time.Duration
	// Sealer, when set, seals the provider upload state recorded per file
	// (a GCS session URI is an upload credential on its own); nil stores it
	// as plain JSON. Plain JSON recorded earlier is read either way.
	Sealer *secret.Sealer
	// OnSettled is told when a delivery settles (notifications). It runs in a
	// River job, so it may run more than once for one delivery.
	OnSettled func(ctx context.Context, ev Event) error
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service delivers packages.
type Service struct {
	o       Options
	log     *slog.Logger
	river   *river.Client[*sql.Tx]
	plan    *planner
	batch   *batcher
	running sync.Map // file key -> struct{}: one run per file in this process

	ui         *riverui.Handler
	owner      string // this process, for file leases
	stopRescue context.CancelFunc
	rescued    chan struct{}

	semMu sync.Mutex
	sems  map[string]chan struct{} // per delivery
	locks keyedMutex               // per delivery: package collection, parent job
}

// New builds the Service and migrates River's tables (idempotent). Call
// Start to work jobs; without Start it only inserts them.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.DB == nil || o.Connections == nil || o.Blobs == nil {
		return nil, errors.New("delivery: DB, Connections and Blobs are required")
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.PerDelivery <= 0 {
		o.PerDelivery = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.RetryBackoff == nil {
		o.RetryBackoff = func(attempt int) time.Duration {
			d := time.Second << min(max(attempt-1, 0), 9)
			return min(d, 5*time.Minute)
		}
	}
	if o.StepRetries <= 0 {
		o.StepRetries = 4
	}
	if o.IndexGrace <= 0 {
		o.IndexGrace = 30 * time.Second
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Uploaders == nil {
		o.Uploaders = map[string]transfer.Uploader{}
	}
	for method, mk := range map[string]func(transfer.Options) transfer.Uploader{
		"S3":    func(o transfer.Options) transfer.Uploader { return s3.New(o) },
		"GCS":   func(o transfer.Options) transfer.Uploader { return gcs.New(o) },
		"AZURE": func(o transfer.Options) transfer.Uploader { return azure.New(o) },
		"B2":    func(o transfer.Options) transfer.Uploader { return b2.New(o) },
	} {
		if o.Uploaders[method] == nil {
			o.Uploaders[method] = mk(transfer.Options{Logger: o.Logger})
		}
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	s := &Service{o: o, log: o.Logger.With("component", "delivery"), sems: map[string]chan struct{}{}, owner: hex.EncodeToString(id)}
	s.plan = &planner{s: s}
	s.batch = newBatcher(s)

	// The driver runs on the Store's own *sql.DB, so jobs are inserted in
	// ferry's transactions (River's InsertTx with tx.SQLTx()).
	driver, err := db.RiverDriver(ctx, o.DB)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &fileWorker{s: s})
	river.AddWorker(workers, &settleWorker{s: s})
	s.river, err = river.NewClient(driver, &river.Config{
		Queues:      map[string]river.QueueConfig{queue: {MaxWorkers: o.Workers}},
		Workers:     workers,
		MaxAttempts: o.MaxAttempts,
		// Transfers of terabytes take hours: no River timeout; shutdown
		// cancels through the context instead.
		JobTimeout:        -1,
		RetryPolicy:       retryPolicy{o.RetryBackoff},
		FetchPollInterval: o.PollInterval,
		FetchCooldown:     min(o.PollInterval, 100*time.Millisecond),
		// On SQLite one process owns the database, so nothing but this
		// process inserts jobs, and the fetch poll above finds them. River's
		// SQLite listener would poll its notification table every 50 ms besides
		// (per client): with both of ferry's clients that was most of an idle
		// server's 4% of a core.
		PollOnly: o.DB.Dialect() == db.DialectSQLite,
		Logger:   o.Logger.With("component", "river"),
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: River client: %w", err)
	}
	return s, nil
}

// River returns the River client (for River UI).
func (s *Service) River() *river.Client[*sql.Tx] { return s.river }

const queue = "delivery"

// Start works jobs until Stop. On SQLite one process owns the database, so
// jobs left "running" by a process that died are this process's to resume:
// they are made available again at once (every step is idempotent, so
// resuming is always safe). On PostgreSQL replicas share the database, and
// the jobs of a replica that died are resumed once their files' leases have
// run out (rescueLoop).
func (s *Service) Start(ctx context.Context) error {
	if s.o.DB.Dialect() == db.DialectSQLite {
		if err := s.resumeOrphans(ctx); err != nil {
			return err
		}
	}
	if err := s.river.Start(ctx); err != nil {
		return fmt.Errorf("delivery: starting River: %w", err)
	}
	if s.o.DB.Dialect() == db.DialectPostgres {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopRescue, s.rescued = cancel, make(chan struct{})
		go s.rescueLoop(rctx)
	}
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(s.river, nil), Prefix: JobsUIPrefix,
		Logger: s.log.With("component", "riverui")})
	if err != nil {
		return fmt.Errorf("delivery: River UI: %w", err)
	}
	if err := ui.Start(ctx); err != nil {
		return fmt.Errorf("delivery: starting River UI: %w", err)
	}
	s.ui = ui
	return nil
}

// resumeOrphans makes the jobs and file leases a dead process left behind
// (SQLite: this process owns the database) available at once.
func (s *Service) resumeOrphans(ctx context.Context) error {
	res, err := s.o.DB.SQLDB().ExecContext(ctx,
		`UPDATE river_job SET state = 'available', scheduled_at = $1 WHERE state = 'running' AND queue = $2`,
		s.o.Now().UTC(), queue)
	if err != nil {
		return fmt.Errorf("delivery: resuming jobs of a previous run: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.log.Info("delivery: resuming jobs interrupted by a previous run", "jobs", n)
	}
	return s.o.DB.DeliveryFileRelease(ctx, &db.DeliveryFileReleaseParams{})
}

// rescueLoop makes the jobs of replicas that died available again, every
// half lease, for as long as the Service runs (PostgreSQL).
//
// River's own rescuer cannot do it: it never rescues a job whose timeout is
// -1, and a file's job has none (a transfer of terabytes takes hours). A
// file's job is orphaned instead when it has been running longer than a
// lease and its file has no live lease: a live replica renews its lease every
// quarter of it, so its jobs are never touched. A settling job holds no
// lease, takes well under one, and may run twice.
func (s *Service) rescueLoop(ctx context.Context) {
	defer close(s.rescued)
	t := time.NewTicker(s.o.LeaseTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		res, err := s.o.DB.SQLDB().ExecContext(ctx, `UPDATE river_job SET state = 'available', scheduled_at = $1
			WHERE state = 'running' AND queue = $2 AND attempted_at < $3
			AND NOT (kind = $4 AND EXISTS (SELECT 1 FROM delivery_files f
				WHERE f.delivery_id = river_job.args->>'delivery_id' AND f.file_id = river_job.args->>'file_id'
				AND f.lease_owner <> '' AND f.lease_until >= $1))`,
			now, queue, now.Add(-s.o.LeaseTTL), fileArgs{}.Kind())
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("delivery: rescuing the jobs of a replica that stopped", "err", err)
			}
			continue
		}
		if n, _ := res.RowsAffected(); n > 0 {
			s.log.Info("delivery: resuming jobs a stopped replica left running", "jobs", n)
		}
	}
}

// JobsUIPrefix is where River UI is mounted.
const JobsUIPrefix = "/admin/jobs"

// JobsUI is River UI for operators, mounted at JobsUIPrefix (nil before
// Start). Whoever mounts it must allow admins only.
func (s *Service) JobsUI() http.Handler {
	if s.ui == nil {
		return nil
	}
	return s.ui
}

// Stop lets running jobs finish for up to grace, then cancels them (they
// resume from their last recorded step on the next start).
func (s *Service) Stop(ctx context.Context, grace time.Duration) error {
	if s.stopRescue != nil {
		s.stopRescue()
		<-s.rescued
	}
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := s.river.Stop(sctx); err == nil {
		return nil
	}
	return s.river.StopAndCancel(ctx)
}

type retryPolicy struct{ backoff func(int) time.Duration }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(p.backoff(job.Attempt))
}

// ---- enqueueing (inside the portal's transactions) ----

// OnComplete is portal.CompleteHook: with a portal's Deliver to Cloud a file's
// delivery starts as soon as its upload completes.
func (s *Service) OnComplete(ctx context.Context, tx db.Tx, pkg *db.Package, f *db.File) error {
	if pkg.PortalID == "" {
		return nil
	}
	p, err := tx.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: pkg.PortalID})
	if err != nil {
		return fmt.Errorf("delivery: reading portal of package %s: %w", pkg.ID, err)
	}
	for _, cid := range p.ConnectionIDs {
		d, err := s.createDelivery(ctx, tx, pkg, cid, db.DeliveryOriginPortal, p.Name)
		if err != nil {
			return err
		}
		if err := s.addFiles(ctx, tx, d, pkg.Name, []*db.File{f}); err != nil {
			return err
		}
	}
	return nil
}

// OnFinalize is portal.FinalizeHook: every file gets its job (those already
// running keep theirs), and the deliveries learn that the file list is final.
func (s *Service) OnFinalize(ctx context.Context, tx db.Tx, fin *portal.Finalized) error {
	if fin.Portal == nil {
		return nil
	}
	for _, cid := range fin.Portal.ConnectionIDs {
		d, err := s.createDelivery(ctx, tx, fin.Package, cid, db.DeliveryOriginPortal, fin.Portal.Name)
		if err != nil {
			return err
		}
		if err := s.addFiles(ctx, tx, d, fin.Package.Name, fin.Files); err != nil {
			return err
		}
		if err := s.finalize(ctx, tx, d); err != nil {
			return err
		}
	}
	return nil
}

// SendToCloud records a Send to Cloud request for a finalized package and
// enqueues its files, in one transaction. A second request for the same
// connection returns the existing delivery.
func (s *Service) SendToCloud(ctx context.Context, packageID, connectionID string) (*db.Delivery, error) {
	var out *db.Delivery
	err := s.o.DB.InTx(ctx, func(tx db.Tx) error {
		pkg, err := tx.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: packageID})
		if err != nil {
			return fmt.Errorf("reading package %s: %w", packageID, err)
		}
		if pkg.State != db.PackageFinalized {
			return fmt.Errorf("package %s is %s: %w", packageID, pkg.State, ErrNotFinalized)
		}
		files, err := tx.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: packageID})
		if err != nil {
			return err
		}
		d, err := s.createDelivery(ctx, tx, pkg, connectionID, db.DeliveryOriginSendToCloud, "")
		if err != nil {
			return err
		}
		if err := s.addFiles(ctx, tx, d, pkg.Name, files); err != nil {
			return err
		}
		if err := s.finalize(ctx, tx, d); err != nil {
			return err
		}
		out, err = tx.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: d.ID})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: send to cloud of package %s to connection %s: %w", packageID, connectionID, err)
	}
	return out, nil
}

// ErrNotFinalized refuses Send to Cloud of a package still uploading.
var ErrNotFinalized = errors.New("package is not finalized")

// createDelivery records the delivery. It must not call Connections: it runs
// inside the portal's transaction, and on SQLite the pool's one connection is
// that transaction. The root title is decided by the first job, from the
// connection's settings, and then fixed.
func (s *Service) createDelivery(ctx context.Context, tx db.Tx, pkg *db.Package, connectionID, origin, portalName string) (*db.Delivery, error) {
	d, err := tx.DeliveryCreate(ctx, &db.DeliveryCreateParams{PackageID: pkg.ID, ConnectionID: connectionID, Origin: origin,
		PortalName: portalName, CreatedAt: s.o.Now()})
	if err != nil {
		return nil, fmt.Errorf("delivery: recording delivery of package %s to connection %s: %w", pkg.ID, connectionID, err)
	}
	return d, nil
}

var uniqueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// pkgName only names the jobs for River UI.
func (s *Service) addFiles(ctx context.Context, tx db.Tx, d *db.Delivery, pkgName string, files []*db.File) error {
	var jobs []river.InsertManyParams
	for _, f := range files {
		if f.State != db.FileComplete {
			continue
		}
		df, err := tx.DeliveryFileCreate(ctx, &db.DeliveryFileCreateParams{DeliveryID: d.ID, FileID: f.ID, Path: f.Path,
			Size: f.Size, SHA256: f.SHA256, UploadID: f.UploadID, CreatedAt: s.o.Now()})
		if err != nil {
			return fmt.Errorf("delivery: recording file %s of delivery %s: %w", f.ID, d.ID, err)
		}
		if df.State != db.DeliveryFileQueued || df.Step != "" {
			continue // already enqueued earlier (pipelined), or settled
		}
		jobs = append(jobs, river.InsertManyParams{Args: fileArgs{DeliveryID: d.ID, FileID: f.ID, Package: pkgName, Path: f.Path}, InsertOpts: fileInsertOpts()})
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := s.river.InsertManyTx(ctx, tx.SQLTx(), jobs); err != nil {
		return fmt.Errorf("delivery: enqueueing %d file(s) of delivery %s: %w", len(jobs), d.ID, err)
	}
	return nil
}

func fileInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// finalize marks the delivery's file list final, and settles it right away
// when every file already settled (all delivered while uploading).
func (s *Service) finalize(ctx context.Context, tx db.Tx, d *db.Delivery) error {
	if d.Finalized {
		return nil
	}
	d, err := tx.DeliverySetFinalized(ctx, &db.DeliverySetFinalizedParams{ID: d.ID})
	if err != nil {
		return err
	}
	return s.settleIfDone(ctx, tx, d)
}

// settleIfDone settles a finalized delivery whose files have all settled and
// enqueues the settle job (parent iconik job, event). Callers commit their own
// file's state before calling, so the last file to settle sees all others.
func (s *Service) settleIfDone(ctx context.Context, q db.Tx, d *db.Delivery) error {
	if !d.Finalized || d.SettledAt != nil {
		return nil
	}
	// Asked after every file: an indexed yes/no, so settling a package of n
	// files does not read n rows n times; the full list only once all are done.
	if busy, err := q.DeliveryFileAnyUnsettled(ctx, &db.DeliveryFileAnyUnsettledParams{DeliveryID: d.ID}); err != nil || busy {
		return err
	}
	files, err := q.DeliveryFileList(ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})
	if err != nil {
		return err
	}
	var delivered, failed int
	var lastErr string
	for _, f := range files {
		switch f.State {
		case db.DeliveryFileDelivered:
			delivered++
		case db.DeliveryFileFailed:
			failed++
			lastErr = f.Path + ": " + f.Error
		default:
			return nil
		}
	}
	state := db.DeliveryDelivered
	switch {
	case failed > 0 && delivered > 0:
		state = db.DeliveryPartiallyFailed
	case failed > 0:
		state = db.DeliveryFailed
	}
	if failed == 0 {
		lastErr = ""
	}
	_, err = q.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: d.ID, State: state, Error: lastErr, OnlyUnsettled: true, At: s.o.Now()})
	if errors.Is(err, db.ErrPrecondition) {
		return nil // another file's job settled it
	}
	if err != nil {
		return err
	}
	_, err = s.river.InsertTx(ctx, q.SQLTx(), settleArgs{DeliveryID: d.ID, SettledAt: s.o.Now().UnixNano(), Package: packageName(ctx, q, d.PackageID)},
		&river.InsertOpts{Queue: queue})
	return err
}

// packageName names a package for River UI; "" when it cannot be read (a
// job's label is not worth failing its transaction for).
func packageName(ctx context.Context, tx db.Tx, id string) string {
	p, err := tx.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: id})
	if err != nil {
		return ""
	}
	return p.Name
}

// ---- status and retry ----

// Status is a delivery as the API shows it.
type Status struct {
	Delivery  *db.Delivery
	Files     []*db.DeliveryFile
	BytesDone int64
	Bytes     int64
	// Retrying: the delivery is not settled and a file waits for a retry
	// (db.DeliveryFile.Retrying); Reason says which and why.
	Retrying bool
	Reason   string
}

// Get returns delivery id with its files.
func (s *Service) Get(ctx context.Context, id string) (*Status, error) {
	d, err := s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: id})
	if err != nil {
		return nil, fmt.Errorf("delivery: reading delivery %s: %w", id, err)
	}
	files, err := s.o.DB.DeliveryFileList(ctx, &db.DeliveryFileListParams{DeliveryID: id})
	if err != nil {
		return nil, fmt.Errorf("delivery: reading files of delivery %s: %w", id, err)
	}
	st := &Status{Delivery: d, Files: files}
	st.Retrying, st.Reason = retrying(d, files)
	for _, f := range files {
		st.Bytes += f.Size
		st.BytesDone += f.BytesDone
	}
	return st, nil
}

// List returns the deliveries of package packageID with their files.
func (s *Service) List(ctx context.Context, packageID string) ([]*Status, error) {
	ds, err := s.o.DB.DeliveryListByPackage(ctx, &db.DeliveryListByPackageParams{PackageID: packageID})
	if err != nil {
		return nil, fmt.Errorf("delivery: listing deliveries of package %s: %w", packageID, err)
	}
	out := make([]*Status, 0, len(ds))
	for _, d := range ds {
		st, err := s.Get(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Retry puts the failed files of delivery id back in the queue; they resume
// from their first unfinished step. It returns how many files were retried.
func (s *Service) Retry(ctx context.Context, id string) (int, error) {
	var n int
	err := s.o.DB.InTx(ctx, func(tx db.Tx) error {
		d, err := tx.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: id})
		if err != nil {
			return err
		}
		files, err := tx.DeliveryFileRetryFailed(ctx, &db.DeliveryFileRetryFailedParams{DeliveryID: id, UpdatedAt: s.o.Now()})
		if err != nil {
			return err
		}
		if n = len(files); n == 0 {
			return nil
		}
		if _, err := tx.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: d.ID, State: db.DeliveryRunning, At: s.o.Now()}); err != nil {
			return err
		}
		pkgName := packageName(ctx, tx, d.PackageID)
		jobs := make([]river.InsertManyParams, 0, n)
		for _, f := range files {
			jobs = append(jobs, river.InsertManyParams{Args: fileArgs{DeliveryID: id, FileID: f.FileID, Retry: s.o.Now().UnixNano(),
				Package: pkgName, Path: f.Path}, InsertOpts: fileInsertOpts()})
		}
		_, err = s.river.InsertManyTx(ctx, tx.SQLTx(), jobs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delivery: retrying delivery %s: %w", id, err)
	}
	return n, nil
}

// keyedMutex serialises work per key (a delivery, a collection parent).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*sync.Mutex{}
	}
	m := k.m[key]
	if m == nil {
		m = &sync.Mutex{}
		k.m[key] = m
	}
	k.mu.Unlock()
	m.Lock()
	return m.Unlock
}
