package db

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DeliveryState is where a delivery (one package to one connection) is.
type DeliveryState string

// The delivery states: queued -> running -> delivered | partially_failed | failed.
const (
	DeliveryQueued          DeliveryState = "queued"
	DeliveryRunning         DeliveryState = "running"
	DeliveryDelivered       DeliveryState = "delivered"
	DeliveryPartiallyFailed DeliveryState = "partially_failed"
	DeliveryFailed          DeliveryState = "failed"
)

// The delivery origins.
const (
	DeliveryOriginPortal      = "portal"
	DeliveryOriginSendToCloud = "send_to_cloud"
)

// Delivery is one package delivered to one connection.
type Delivery struct {
	ID           string
	PackageID    string
	ConnectionID string
	Origin       string // DeliveryOriginPortal | DeliveryOriginSendToCloud
	RootTitle    string // "Portal Downloads" or the Send to Cloud root; "" until resolved
	PortalName   string // "" for Send to Cloud
	State        DeliveryState
	// Finalized: every file of the package is known (the package was
	// finalized); the delivery settles when they all have.
	Finalized    bool
	PackageTitle string // the package's collection title, "<name> (2)" when taken
	CollectionID string // the package's collection
	IconikJobID  string // the package-level parent job
	JobPendingAt *time.Time
	Error        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	SettledAt    *time.Time
}

// DeliveryFileState is where one file's delivery is.
type DeliveryFileState string

// The delivery file states.
const (
	DeliveryFileQueued    DeliveryFileState = "queued"
	DeliveryFileRunning   DeliveryFileState = "running"
	DeliveryFileDelivered DeliveryFileState = "delivered"
	DeliveryFileFailed    DeliveryFileState = "failed"
)

// DeliveryFile is one file of a delivery with every iconik id it made, so a
// resumed job continues from the first unfinished step.
type DeliveryFile struct {
	DeliveryID string
	FileID     string
	Path       string
	Size       int64
	SHA256     string // recorded at ingest
	UploadID   string
	State      DeliveryFileState
	Step       string // the next step to run
	// Pending names an iconik create that was sent but whose id is not
	// recorded yet (a crash window): a resumed job looks it up first.
	Pending          string
	PendingAt        *time.Time
	CollectionID     string
	AssetID          string
	VersionID        string
	FormatID         string
	FileSetID        string
	IconikFileID     string
	JobID            string
	KeyframeJobID    string
	KeyframesSkipped bool
	TransferState    string // transfer.State JSON; may hold a session URI: never log it
	BytesDone        int64
	MD5              string
	DeliveredSHA256  string // computed while streaming to the storage
	Error            string
	Attempts         int // River attempts of the file's job so far
	// Recreated lists the iconik objects ferry created again after iconik
	// answered 404 for the recorded id ("collection,asset"): each cause is
	// recovered once per retry request.
	Recreated string
	// LastError and NextAttemptAt are written by DeliveryFileSetRetry only
	// (DeliveryFileUpdate leaves them): the last error the file met, and
	// while it waits for a retry, when that retry is due (nil otherwise).
	LastError     string
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SettledAt     *time.Time
}

// Retrying reports whether the file waits for a retry.
func (f *DeliveryFile) Retrying() bool { return f.NextAttemptAt != nil && !f.State.Settled() }

// DeliveryCollection is a claimed collection path on a connection: the
// iconik id once known, and for a package level the package owning it.
type DeliveryCollection struct {
	ConnectionID string
	ParentID     string // "" = top level
	Title        string
	PackageID    string // "" for roots and folders
	CollectionID string // "" until created or found
	PendingAt    *time.Time
	CreatedAt    time.Time
}

// DeliveryCollectionClaimParams claims (ConnectionID, ParentID, Title) for
// PackageID unless already claimed; the claim as stored is returned either
// way (compare its PackageID).
type DeliveryCollectionClaimParams struct {
	ConnectionID, ParentID, Title, PackageID string
	CreatedAt                                time.Time
}

// DeliveryCollectionForgetParams drops the iconik id CollectionID from the
// claims of ConnectionID that name it (iconik answered 404 for it: deleted),
// so the next lookup finds or creates the collection again. The claims
// themselves (and a package level's owner) stay.
type DeliveryCollectionForgetParams struct {
	ConnectionID, CollectionID string
}

// DeliveryCollectionSetParams records the collection's iconik id, or with
// CollectionID "" marks a create as pending at PendingAt.
type DeliveryCollectionSetParams struct {
	ConnectionID, ParentID, Title string
	CollectionID                  string
	PendingAt                     *time.Time
	// Guarded applies the change only while the row is as the caller read
	// it: no collection id yet and pending_at equal to WasPendingAt (nil:
	// never pending), else ErrPrecondition. Of replicas about to create
	// the same collection, only the one whose guarded PendingAt lands
	// creates it; the others wait for its id.
	Guarded      bool
	WasPendingAt *time.Time
}

// DeliveryCreateParams creates the delivery of PackageID to ConnectionID, or
// returns the existing one (the pair is unique).
type DeliveryCreateParams struct {
	ID           string
	PackageID    string
	ConnectionID string
	Origin       string
	RootTitle    string
	PortalName   string
	Finalized    bool
	CreatedAt    time.Time
}

// DeliveryFileCreateParams adds a file to a delivery, or returns the
// existing row.
type DeliveryFileCreateParams struct {
	DeliveryID string
	FileID     string
	Path       string
	Size       int64
	SHA256     string
	UploadID   string
	CreatedAt  time.Time
}
type DeliveryFileGetParams struct{ DeliveryID, FileID string }
type DeliveryFileListParams struct{ DeliveryID string }

// DeliveryFileAnyUnsettledParams asks whether any file of DeliveryID is
// still queued or running.
type DeliveryFileAnyUnsettledParams struct{ DeliveryID string }

// DeliveryFileLeaseParams takes or extends Owner's lease on a file until
// Until, unless another owner holds one that has not expired at Now
// (ErrPrecondition). Owner "" with Until zero releases any lease (Force) or
// only Owner's own. Replicas use it so that a job River rescued while its
// first run is alive never runs twice at once.
type DeliveryFileLeaseParams struct {
	DeliveryID, FileID string
	Owner              string
	Until, Now         time.Time
}

// DeliveryFileReleaseParams drops Owner's lease on one file; Owner "" drops
// every lease (a process that owns the whole database, at start).
type DeliveryFileReleaseParams struct {
	DeliveryID, FileID string
	Owner              string
}

// DeliveryFileSetRetryParams records that a file met LastError and, with
// NextAttemptAt, when it is tried again; NextAttemptAt nil says it no
// longer waits, and LastError "" keeps the one recorded.
type DeliveryFileSetRetryParams struct {
	DeliveryID, FileID string
	LastError          string
	NextAttemptAt      *time.Time
}

// DeliveryFileRetryFailedParams puts the failed files of a delivery back in
// the queue (keeping their iconik ids) and returns them.
type DeliveryFileRetryFailedParams struct {
	DeliveryID string
	UpdatedAt  time.Time
}

// DeliveryFileUpdateParams writes every mutable field of File (one worker
// owns a file at a time, so read-modify-write is safe).
type DeliveryFileUpdateParams struct{ File *DeliveryFile }
type DeliveryGetByIDParams struct{ ID string }
type DeliveryGetByPackageConnectionParams struct{ PackageID, ConnectionID string }
type DeliveryListByPackageParams struct{ PackageID string }

// DeliverySetCollectionParams records the root title and the package's
// collection.
type DeliverySetCollectionParams struct {
	ID, RootTitle, PackageTitle, CollectionID string
}

// DeliverySetFinalizedParams marks that every file of the package is known.
type DeliverySetFinalizedParams struct{ ID string }

// DeliverySetJobParams records the parent iconik job, or with IconikJobID ""
// marks its create as pending at PendingAt.
type DeliverySetJobParams struct {
	ID          string
	IconikJobID string
	PendingAt   *time.Time
	// Guarded applies the change only while no job id is recorded and
	// job_pending_at equals WasPendingAt (nil: never pending), else
	// ErrPrecondition: one replica creates the package's job.
	Guarded      bool
	WasPendingAt *time.Time
}

// DeliverySetStateParams moves the delivery to State. Settled states set
// settled_at; with OnlyUnsettled the change applies only to a delivery not
// settled yet (else ErrPrecondition), so one settling wins.
type DeliverySetStateParams struct {
	ID            string
	State         DeliveryState
	Error         string
	OnlyUnsettled bool
	At            time.Time
}

// Settled reports whether s is a final state.
func (s DeliveryState) Settled() bool {
	return s == DeliveryDelivered || s == DeliveryPartiallyFailed || s == DeliveryFailed
}

// Settled reports whether s is a final state.
func (s DeliveryFileState) Settled() bool {
	return s == DeliveryFileDelivered || s == DeliveryFileFailed
}

// ---- deliveries ----

const deliveryCols = "id, package_id, connection_id, origin, root_title, portal_name, state, finalized, package_title, collection_id, iconik_job_id, job_pending_at, error, created_at, updated_at, settled_at"

func scanDelivery(r rowScanner) (*Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.PackageID, &d.ConnectionID, &d.Origin, &d.RootTitle, &d.PortalName, &d.State, &d.Finalized,
		&d.PackageTitle, &d.CollectionID, &d.IconikJobID, timeScan{ptr: &d.JobPendingAt}, &d.Error,
		timeScan{dst: &d.CreatedAt}, timeScan{dst: &d.UpdatedAt}, timeScan{ptr: &d.SettledAt})
	return &d, err
}

func (q queries) DeliveryCreate(ctx context.Context, p *DeliveryCreateParams) (*Delivery, error) {
	if p.PackageID == "" || p.ConnectionID == "" {
		return nil, fmt.Errorf("db: DeliveryCreate: package and connection are required: %w", ErrConflict)
	}
	now := ts(p.CreatedAt)
	d, err := one(ctx, q, "DeliveryCreate", ErrNotFound, scanDelivery,
		`INSERT INTO deliveries (id, package_id, connection_id, origin, root_title, portal_name, state, finalized, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $8)
		ON CONFLICT (package_id, connection_id) DO NOTHING RETURNING `+deliveryCols,
		newID(p.ID), p.PackageID, p.ConnectionID, p.Origin, p.RootTitle, p.PortalName, p.Finalized, now)
	if errors.Is(err, ErrNotFound) {
		return q.DeliveryGetByPackageConnection(ctx, &DeliveryGetByPackageConnectionParams{PackageID: p.PackageID, ConnectionID: p.ConnectionID})
	}
	return d, err
}

func (q queries) DeliveryGetByID(ctx context.Context, p *DeliveryGetByIDParams) (*Delivery, error) {
	return one(ctx, q, "DeliveryGetByID", ErrNotFound, scanDelivery, "SELECT "+deliveryCols+" FROM deliveries WHERE id = $1", p.ID)
}

func (q queries) DeliveryGetByPackageConnection(ctx context.Context, p *DeliveryGetByPackageConnectionParams) (*Delivery, error) {
	return one(ctx, q, "DeliveryGetByPackageConnection", ErrNotFound, scanDelivery,
		"SELECT "+deliveryCols+" FROM deliveries WHERE package_id = $1 AND connection_id = $2", p.PackageID, p.ConnectionID)
}

func (q queries) DeliveryListByPackage(ctx context.Context, p *DeliveryListByPackageParams) ([]*Delivery, error) {
	return many(ctx, q, "DeliveryListByPackage", scanDelivery,
		"SELECT "+deliveryCols+" FROM deliveries WHERE package_id = $1 ORDER BY created_at, id", p.PackageID)
}

func (q queries) DeliverySetCollection(ctx context.Context, p *DeliverySetCollectionParams) (*Delivery, error) {
	return one(ctx, q, "DeliverySetCollection", ErrNotFound, scanDelivery,
		"UPDATE deliveries SET root_title = $2, package_title = $3, collection_id = $4, updated_at = $5 WHERE id = $1 RETURNING "+deliveryCols,
		p.ID, p.RootTitle, p.PackageTitle, p.CollectionID, ts(time.Time{}))
}

func (q queries) DeliverySetFinalized(ctx context.Context, p *DeliverySetFinalizedParams) (*Delivery, error) {
	return one(ctx, q, "DeliverySetFinalized", ErrNotFound, scanDelivery,
		"UPDATE deliveries SET finalized = true, updated_at = $2 WHERE id = $1 RETURNING "+deliveryCols, p.ID, ts(time.Time{}))
}

func (q queries) DeliverySetJob(ctx context.Context, p *DeliverySetJobParams) (*Delivery, error) {
	query := "UPDATE deliveries SET iconik_job_id = $2, job_pending_at = $3, updated_at = $4 WHERE id = $1"
	args := []any{p.ID, p.IconikJobID, tsPtr(p.PendingAt), ts(time.Time{})}
	notFound := ErrNotFound
	if p.Guarded {
		query += " AND iconik_job_id = '' AND job_pending_at IS NOT DISTINCT FROM $5"
		args = append(args, tsPtr(p.WasPendingAt))
		notFound = ErrPrecondition
	}
	return one(ctx, q, "DeliverySetJob", notFound, scanDelivery, query+" RETURNING "+deliveryCols, args...)
}

func (q queries) DeliverySetState(ctx context.Context, p *DeliverySetStateParams) (*Delivery, error) {
	at := ts(p.At)
	var settled any
	if p.State.Settled() {
		settled = at
	}
	query := "UPDATE deliveries SET state = $2, error = $3, settled_at = $4, updated_at = $5 WHERE id = $1"
	notFound := ErrNotFound
	if p.OnlyUnsettled {
		query += " AND settled_at IS NULL"
		notFound = ErrPrecondition
	}
	return one(ctx, q, "DeliverySetState", notFound, scanDelivery, query+" RETURNING "+deliveryCols,
		p.ID, string(p.State), p.Error, settled, at)
}

// ---- delivery files ----

const deliveryFileCols = `delivery_id, file_id, path, size, sha256, upload_id, state, step, pending, pending_at,
	collection_id, asset_id, version_id, format_id, file_set_id, iconik_file_id, job_id, keyframe_job_id, keyframes_skipped,
	transfer_state, bytes_done, md5, delivered_sha256, error, attempts, recreated, last_error, next_attempt_at,
	created_at, updated_at, settled_at`

func scanDeliveryFile(r rowScanner) (*DeliveryFile, error) {
	var f DeliveryFile
	err := r.Scan(&f.DeliveryID, &f.FileID, &f.Path, &f.Size, &f.SHA256, &f.UploadID, &f.State, &f.Step, &f.Pending,
		timeScan{ptr: &f.PendingAt}, &f.CollectionID, &f.AssetID, &f.VersionID, &f.FormatID, &f.FileSetID, &f.IconikFileID,
		&f.JobID, &f.KeyframeJobID, &f.KeyframesSkipped, &f.TransferState, &f.BytesDone, &f.MD5, &f.DeliveredSHA256,
		&f.Error, &f.Attempts, &f.Recreated, &f.LastError, timeScan{ptr: &f.NextAttemptAt}, timeScan{dst: &f.CreatedAt}, timeScan{dst: &f.UpdatedAt}, timeScan{ptr: &f.SettledAt})
	return &f, err
}

func (q queries) DeliveryFileCreate(ctx context.Context, p *DeliveryFileCreateParams) (*DeliveryFile, error) {
	now := ts(p.CreatedAt)
	f, err := one(ctx, q, "DeliveryFileCreate", ErrNotFound, scanDeliveryFile,
		`INSERT INTO delivery_files (delivery_id, file_id, path, size, sha256, upload_id, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7)
		ON CONFLICT (delivery_id, file_id) DO NOTHING RETURNING `+deliveryFileCols,
		p.DeliveryID, p.FileID, p.Path, p.Size, p.SHA256, p.UploadID, now)
	if errors.Is(err, ErrNotFound) {
		return q.DeliveryFileGet(ctx, &DeliveryFileGetParams{DeliveryID: p.DeliveryID, FileID: p.FileID})
	}
	return f, err
}

func (q queries) DeliveryFileGet(ctx context.Context, p *DeliveryFileGetParams) (*DeliveryFile, error) {
	return one(ctx, q, "DeliveryFileGet", ErrNotFound, scanDeliveryFile,
		"SELECT "+deliveryFileCols+" FROM delivery_files WHERE delivery_id = $1 AND file_id = $2", p.DeliveryID, p.FileID)
}

func (q queries) DeliveryFileList(ctx context.Context, p *DeliveryFileListParams) ([]*DeliveryFile, error) {
	return many(ctx, q, "DeliveryFileList", scanDeliveryFile,
		"SELECT "+deliveryFileCols+" FROM delivery_files WHERE delivery_id = $1 ORDER BY path, file_id", p.DeliveryID)
}

func (q queries) DeliveryFileAnyUnsettled(ctx context.Context, p *DeliveryFileAnyUnsettledParams) (bool, error) {
	var busy bool
	err := q.ex.QueryRowContext(ctx,
		"SELECT EXISTS (SELECT 1 FROM delivery_files WHERE delivery_id = $1 AND state IN ('queued', 'running'))", p.DeliveryID).Scan(&busy)
	if err != nil {
		return false, fmt.Errorf("db: DeliveryFileAnyUnsettled: %w", q.d.classify(err))
	}
	return busy, nil
}

func (q queries) DeliveryFileLease(ctx context.Context, p *DeliveryFileLeaseParams) error {
	_, err := q.exec(ctx, "DeliveryFileLease", ErrPrecondition,
		`UPDATE delivery_files SET lease_owner = $3, lease_until = $4
		WHERE delivery_id = $1 AND file_id = $2 AND (lease_owner = $3 OR lease_owner = '' OR lease_until IS NULL OR lease_until < $5)`,
		p.DeliveryID, p.FileID, p.Owner, ts(p.Until), ts(p.Now))
	return err
}

func (q queries) DeliveryFileRelease(ctx context.Context, p *DeliveryFileReleaseParams) error {
	if p.Owner == "" {
		_, err := q.exec(ctx, "DeliveryFileRelease", nil, "UPDATE delivery_files SET lease_owner = '', lease_until = NULL WHERE lease_owner <> ''")
		return err
	}
	_, err := q.exec(ctx, "DeliveryFileRelease", nil,
		"UPDATE delivery_files SET lease_owner = '', lease_until = NULL WHERE delivery_id = $1 AND file_id = $2 AND lease_owner = $3",
		p.DeliveryID, p.FileID, p.Owner)
	return err
}

func (q queries) DeliveryFileRetryFailed(ctx context.Context, p *DeliveryFileRetryFailedParams) ([]*DeliveryFile, error) {
	return many(ctx, q, "DeliveryFileRetryFailed", scanDeliveryFile,
		`UPDATE delivery_files SET state = 'queued', error = '', attempts = 0, recreated = '', next_attempt_at = NULL, settled_at = NULL, updated_at = $2
		WHERE delivery_id = $1 AND state = 'failed' RETURNING `+deliveryFileCols, p.DeliveryID, ts(p.UpdatedAt))
}

func (q queries) DeliveryFileUpdate(ctx context.Context, p *DeliveryFileUpdateParams) (*DeliveryFile, error) {
	f := p.File
	if f == nil {
		return nil, errors.New("db: DeliveryFileUpdate: nil file")
	}
	var settled any
	if f.State.Settled() {
		settled = ts(time.Time{})
		if f.SettledAt != nil {
			settled = ts(*f.SettledAt)
		}
	}
	return one(ctx, q, "DeliveryFileUpdate", ErrNotFound, scanDeliveryFile,
		`UPDATE delivery_files SET state = $3, step = $4, pending = $5, pending_at = $6, collection_id = $7, asset_id = $8,
		version_id = $9, format_id = $10, file_set_id = $11, iconik_file_id = $12, job_id = $13, keyframe_job_id = $14,
		keyframes_skipped = $15, transfer_state = $16, bytes_done = $17, md5 = $18, delivered_sha256 = $19, error = $20,
		attempts = $21, updated_at = $22, settled_at = $23, recreated = $24
		WHERE delivery_id = $1 AND file_id = $2 RETURNING `+deliveryFileCols,
		f.DeliveryID, f.FileID, string(f.State), f.Step, f.Pending, tsPtr(f.PendingAt), f.CollectionID, f.AssetID,
		f.VersionID, f.FormatID, f.FileSetID, f.IconikFileID, f.JobID, f.KeyframeJobID,
		f.KeyframesSkipped, f.TransferState, f.BytesDone, f.MD5, f.DeliveredSHA256, f.Error,
		f.Attempts, ts(time.Time{}), settled, f.Recreated)
}

func (q queries) DeliveryFileSetRetry(ctx context.Context, p *DeliveryFileSetRetryParams) (*DeliveryFile, error) {
	return one(ctx, q, "DeliveryFileSetRetry", ErrNotFound, scanDeliveryFile,
		`UPDATE delivery_files SET last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, next_attempt_at = $4
		WHERE delivery_id = $1 AND file_id = $2 RETURNING `+deliveryFileCols,
		p.DeliveryID, p.FileID, p.LastError, tsPtr(p.NextAttemptAt))
}

// ---- delivery collections ----

const deliveryCollectionCols = "connection_id, parent_id, title, package_id, collection_id, pending_at, created_at"

func scanDeliveryCollection(r rowScanner) (*DeliveryCollection, error) {
	var c DeliveryCollection
	err := r.Scan(&c.ConnectionID, &c.ParentID, &c.Title, &c.PackageID, &c.CollectionID, timeScan{ptr: &c.PendingAt}, timeScan{dst: &c.CreatedAt})
	return &c, err
}

func (q queries) DeliveryCollectionClaim(ctx context.Context, p *DeliveryCollectionClaimParams) (*DeliveryCollection, error) {
	if p.ConnectionID == "" || p.Title == "" {
		return nil, errors.New("db: DeliveryCollectionClaim: connection and title are required")
	}
	if _, err := q.exec(ctx, "DeliveryCollectionClaim", nil,
		`INSERT INTO delivery_collections (connection_id, parent_id, title, package_id, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (connection_id, parent_id, title) DO NOTHING`,
		p.ConnectionID, p.ParentID, p.Title, p.PackageID, ts(p.CreatedAt)); err != nil {
		return nil, err
	}
	return one(ctx, q, "DeliveryCollectionClaim", ErrNotFound, scanDeliveryCollection,
		"SELECT "+deliveryCollectionCols+" FROM delivery_collections WHERE connection_id = $1 AND parent_id = $2 AND title = $3",
		p.ConnectionID, p.ParentID, p.Title)
}

func (q queries) DeliveryCollectionForget(ctx context.Context, p *DeliveryCollectionForgetParams) error {
	if p.ConnectionID == "" || p.CollectionID == "" {
		return errors.New("db: DeliveryCollectionForget: connection and collection are required")
	}
	_, err := q.exec(ctx, "DeliveryCollectionForget", nil,
		"UPDATE delivery_collections SET collection_id = '', pending_at = NULL WHERE connection_id = $1 AND collection_id = $2",
		p.ConnectionID, p.CollectionID)
	return err
}

func (q queries) DeliveryCollectionSet(ctx context.Context, p *DeliveryCollectionSetParams) (*DeliveryCollection, error) {
	query := `UPDATE delivery_collections SET collection_id = $4, pending_at = $5
		WHERE connection_id = $1 AND parent_id = $2 AND title = $3`
	args := []any{p.ConnectionID, p.ParentID, p.Title, p.CollectionID, tsPtr(p.PendingAt)}
	notFound := ErrNotFound
	if p.Guarded {
		query += " AND collection_id = '' AND pending_at IS NOT DISTINCT FROM $6"
		args = append(args, tsPtr(p.WasPendingAt))
		notFound = ErrPrecondition
	}
	return one(ctx, q, "DeliveryCollectionSet", notFound, scanDeliveryCollection, query+" RETURNING "+deliveryCollectionCols, args...)
}
