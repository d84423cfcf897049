package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/transfer"
)

// One file's delivery, top-down. Every step first looks at what is recorded,
// then (only when a create was sent but its id not recorded: a crash window)
// looks for the object in iconik, then creates it, then records it, before
// the next step starts.

// fileArgs is the River job of one file of one delivery.
type fileArgs struct {
	DeliveryID string `json:"delivery_id" river:"unique"`
	FileID     string `json:"file_id" river:"unique"`
	// Retry is 0 for the first delivery and the time of a retry request
	// otherwise: River keeps unique keys of finished jobs, so a retry needs
	// args of its own, while the enqueues of upload and finalize dedupe.
	Retry int64 `json:"retry,omitempty" river:"unique"`
	// Package and Path name the job for people reading River UI; they take
	// no part in its uniqueness (the ids above decide) and no worker reads them.
	Package string `json:"package,omitempty"`
	Path    string `json:"path,omitempty"`
}

func (fileArgs) Kind() string { return "ferry_delivery_file" }

type fileWorker struct {
	river.WorkerDefaults[fileArgs]
	s *Service
}

// Timeout: none. A file of terabytes takes hours; shutdown cancels.
func (w *fileWorker) Timeout(*river.Job[fileArgs]) time.Duration { return -1 }

func (w *fileWorker) Work(ctx context.Context, job *river.Job[fileArgs]) error {
	s := w.s
	key := job.Args.DeliveryID + "/" + job.Args.FileID
	if _, busy := s.running.LoadOrStore(key, struct{}{}); busy {
		return river.JobSnooze(time.Second) // a rescued duplicate: never two runs of one file
	}
	defer s.running.Delete(key)
	// Counted by the batcher from here, before the waits below: files
	// that start together count together (batch.go).
	var counted bool
	s.batch.enter(job.Args.DeliveryID, &counted)
	defer s.batch.leave(job.Args.DeliveryID, &counted)
	release, ok := s.acquire(ctx, job.Args.DeliveryID)
	if !ok {
		return river.JobSnooze(200 * time.Millisecond)
	}
	defer release()
	lctx, unlease, err := s.lease(ctx, job.Args)
	if errors.Is(err, db.ErrPrecondition) {
		if _, gerr := s.o.DB.DeliveryFileGet(ctx, &db.DeliveryFileGetParams{DeliveryID: job.Args.DeliveryID, FileID: job.Args.FileID}); errors.Is(gerr, db.ErrNotFound) {
			return river.JobCancel(fmt.Errorf("delivery %s has no file %s", job.Args.DeliveryID, job.Args.FileID))
		}
		return river.JobSnooze(s.o.LeaseTTL / 4) // another replica runs it
	}
	if err != nil {
		return err
	}
	defer unlease()
	return s.deliverFile(lctx, job.Args, job.Attempt, job.MaxAttempts, &counted)
}

var errLeaseLost = errors.New("another replica took over this file")

// lease claims the file for this process while the returned context lives,
// renewing the claim; losing it cancels the context.
func (s *Service) lease(ctx context.Context, a fileArgs) (context.Context, func(), error) {
	take := func(ctx context.Context) error {
		now := time.Now()
		return s.o.DB.DeliveryFileLease(ctx, &db.DeliveryFileLeaseParams{DeliveryID: a.DeliveryID, FileID: a.FileID, Owner: s.owner,
			Until: now.Add(s.o.LeaseTTL), Now: now})
	}
	if err := take(ctx); err != nil {
		return nil, nil, err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.o.LeaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			if err := take(lctx); errors.Is(err, db.ErrPrecondition) {
				cancel(errLeaseLost)
				return
			} else if err != nil && lctx.Err() == nil {
				s.log.Warn("delivery: renewing a file lease", "delivery", a.DeliveryID, "file", a.FileID, "err", err)
			}
		}
	}()
	return lctx, func() {
		cancel(nil)
		<-done
		if err := s.o.DB.DeliveryFileRelease(context.WithoutCancel(ctx), &db.DeliveryFileReleaseParams{DeliveryID: a.DeliveryID, FileID: a.FileID, Owner: s.owner}); err != nil {
			s.log.Warn("delivery: releasing a file lease", "delivery", a.DeliveryID, "file", a.FileID, "err", err)
		}
	}, nil
}

// acquire takes one of the delivery's PerDelivery slots, waiting briefly.
func (s *Service) acquire(ctx context.Context, deliveryID string) (func(), bool) {
	s.semMu.Lock()
	sem := s.sems[deliveryID]
	if sem == nil {
		sem = make(chan struct{}, s.o.PerDelivery)
		s.sems[deliveryID] = sem
	}
	s.semMu.Unlock()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// errPermanent marks failures that no retry can fix.
type errPermanent struct{ err error }

func (e *errPermanent) Error() string { return e.err.Error() }
func (e *errPermanent) Unwrap() error { return e.err }

func permanent(format string, a ...any) error { return &errPermanent{fmt.Errorf(format, a...)} }

// brokenReason says whether err means iconik refused the connection for
// good, and why (for people; err's text holds no secret): the token (401)
// or a role the token lacks (403). Storage providers' 403s (an expired
// signed URL) are transfer errors, not iconik's, and do not count.
func brokenReason(err error) (string, bool) {
	switch iconik.StatusOf(err) {
	case http.StatusUnauthorized:
		return "iconik no longer accepts the token (401): create a new Application token and update the connection.", true
	case http.StatusForbidden:
		return fmt.Sprintf("iconik refused a call for lack of a role (403): %v. Grant the role and re-verify the connection.", err), true
	}
	return "", false
}

// brokenConnection turns an error that says the connection is broken into
// a permanent one, marking the connection broken (once: a connection
// already marked comes back from Client as ErrConnectionBroken), so that a
// dead token fails each file after one attempt instead of being retried
// for hours. Other errors come back as they are.
func (s *Service) brokenConnection(ctx context.Context, connID string, err error) error {
	if errors.Is(err, ErrConnectionBroken) {
		return &errPermanent{err}
	}
	reason, ok := brokenReason(err)
	if !ok {
		return err
	}
	if m, ok := s.o.Connections.(BrokenMarker); ok {
		if merr := m.MarkBroken(context.WithoutCancel(ctx), connID, reason); merr != nil {
			s.log.Warn("delivery: marking a connection broken", "connection", connID, "err", merr)
		}
	}
	return &errPermanent{fmt.Errorf("iconik refused the connection's token or a role; connection %s is marked broken: %w", connID, err)}
}

// transient reports whether err may go away by itself.
func transient(err error) bool {
	var wi *waitIndex
	if errors.As(err, &wi) {
		return true
	}
	var pe *errPermanent
	if errors.As(err, &pe) {
		return false
	}
	var ie *iconik.Error
	if errors.As(err, &ie) {
		return ie.Status == http.StatusTooManyRequests || ie.Status == http.StatusRequestTimeout || ie.Status >= 500
	}
	var te *transfer.Error
	if errors.As(err, &te) {
		return te.Retryable() || te.Expired()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// fileRun is one attempt at one file.
type fileRun struct {
	s      *Service
	cl     *iconik.Client
	conn   Connection
	d      *db.Delivery
	pkg    *db.Package
	src    *db.File
	f      *db.DeliveryFile
	userID string       // the asset's creator, for the format
	icFile *iconik.File // the file record with unused upload URLs
	// waiting: a retry was noted (noteRetry) and no work went through since.
	waiting atomic.Bool
	// counted: the batcher counts this file as on its way to the batched
	// step (batch.go); keyframesDone, descriptionDone: that step's calls
	// went through in this run; lookedUp: a batch that may have gone out
	// unrecorded was looked for.
	counted                                  *bool
	keyframesDone, descriptionDone, lookedUp bool
}

func (s *Service) deliverFile(ctx context.Context, a fileArgs, attempt, maxAttempts int, counted *bool) error {
	q := s.o.DB
	f, err := q.DeliveryFileGet(ctx, &db.DeliveryFileGetParams{DeliveryID: a.DeliveryID, FileID: a.FileID})
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("delivery %s has no file %s", a.DeliveryID, a.FileID))
	}
	if err != nil {
		return err
	}
	if f.State.Settled() {
		// A duplicate job, or this job's own run after a crash between saving
		// the file settled and settling the delivery: settle it now if this was
		// its last file (a no-op otherwise), or it would stay running forever.
		return s.settleDelivery(ctx, a.DeliveryID)
	}
	r := &fileRun{s: s, f: f, counted: counted}
	ctx = r.withRetryNotices(ctx)
	if r.d, err = q.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: a.DeliveryID}); err != nil {
		return err
	}
	if r.pkg, err = q.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: r.d.PackageID}); err != nil {
		return err
	}
	if r.src, err = q.FileGetByID(ctx, &db.FileGetByIDParams{ID: f.FileID}); err != nil {
		return err
	}
	if r.cl, r.conn, err = s.o.Connections.Client(ctx, r.d.ConnectionID); err != nil {
		return r.settle(ctx, fmt.Errorf("opening connection %s: %w", r.d.ConnectionID, err), attempt, maxAttempts)
	}
	if r.d.State == db.DeliveryQueued {
		if r.d, err = q.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: r.d.ID, State: db.DeliveryRunning, OnlyUnsettled: true, At: s.o.Now()}); err != nil {
			return err
		}
	}
	f.State, f.Attempts = db.DeliveryFileRunning, attempt
	if err := r.save(ctx); err != nil {
		return err
	}
	if f.NextAttemptAt != nil {
		r.clearRetry(ctx, "") // River's retry is here: the file runs again
	}
	return r.settle(ctx, r.steps(ctx), attempt, maxAttempts)
}

// settle records the outcome of this attempt: delivered, failed for good
// (cleaned up in iconik), or to be retried by River.
func (r *fileRun) settle(ctx context.Context, err error, attempt, maxAttempts int) error {
	f := r.f
	if err == nil {
		f.State, f.Error, f.Step = db.DeliveryFileDelivered, "", stepDone
		if err := r.save(ctx); err != nil {
			return err
		}
		if f.NextAttemptAt != nil {
			r.clearRetry(ctx, "")
		}
		return r.s.settleDelivery(ctx, f.DeliveryID)
	}
	if ctx.Err() != nil {
		return err // shutting down: resume later from the recorded step
	}
	f.Attempts = max(f.Attempts, attempt) // also when the connection did not open
	err = r.s.brokenConnection(ctx, r.d.ConnectionID, finalRefusal(err))
	var pe *errPermanent
	if !errors.As(err, &pe) && attempt < maxAttempts {
		f.Error = err.Error()
		if serr := r.save(ctx); serr != nil {
			return errors.Join(err, serr)
		}
		// River retries the job after the backoff of retryPolicy.
		r.noteRetry(ctx, err.Error(), r.s.o.RetryBackoff(attempt))
		return err
	}
	r.s.log.Warn("delivery: giving up on file", "delivery", f.DeliveryID, "file", f.FileID, "path", f.Path, "err", err)
	r.giveUp(ctx, err)
	f.State, f.Error, f.Step = db.DeliveryFileFailed, err.Error(), stepGaveUp
	if serr := r.save(ctx); serr != nil {
		return errors.Join(err, serr)
	}
	r.clearRetry(ctx, err.Error())
	if serr := r.s.settleDelivery(ctx, f.DeliveryID); serr != nil {
		return serr
	}
	return river.JobCancel(err)
}

// giveUp marks the file FAILED in iconik with the reason and removes its
// unfinished upload (best effort: the reason is recorded in ferry anyway).
func (r *fileRun) giveUp(ctx context.Context, cause error) {
	if r.cl == nil || iconik.IsUnauthorized(cause) {
		// No client, or iconik refuses its token: every cleanup call would
		// be refused too. A retry after the token is replaced restarts the
		// file (restart) and so tidies up then.
		return
	}
	f := r.f
	msg := cause.Error()
	if f.IconikFileID != "" {
		if _, err := r.cl.FilePatch(ctx, f.AssetID, f.IconikFileID, iconik.FilePatchParams{OriginalName: r.name(), DirectoryPath: r.dir(),
			FileSetID: f.FileSetID, Type: "FILE", Status: "FAILED"}); err != nil {
			r.s.log.Warn("delivery: marking iconik file failed", "file", f.IconikFileID, "err", err)
		}
	}
	if f.AssetID != "" {
		if err := r.cl.AssetUploadsDelete(ctx, f.AssetID); err != nil {
			r.s.log.Warn("delivery: removing unfinished uploads", "asset", f.AssetID, "err", err)
		}
	}
	if f.JobID != "" {
		if _, err := r.cl.JobPatch(ctx, f.JobID, iconik.JobPatchParams{Type: "TRANSFER", Status: "FAILED", Title: f.Path, ErrorMessage: msg}); err != nil {
			r.s.log.Warn("delivery: marking iconik job failed", "job", f.JobID, "err", err)
		}
	}
}

func (r *fileRun) save(ctx context.Context) error {
	f, err := r.s.o.DB.DeliveryFileUpdate(ctx, &db.DeliveryFileUpdateParams{File: r.f})
	if err != nil {
		return fmt.Errorf("recording delivery of %s: %w", r.f.Path, err)
	}
	*r.f = *f // in place: steps hold r.f
	return nil
}

// The steps after the creates, in order; f.Step names the next one.
const (
	stepUpload    = "upload"
	stepClose     = "close"
	stepKeyframes = "keyframes"
	stepMetadata  = "metadata"
	stepFinish    = "finish"
	stepDone      = "done"
	stepGaveUp    = "gave_up"
)

// steps runs the file's steps; when iconik answers that an object ferry
// recorded is gone, the file goes back to the step that creates it (once
// per cause, see recover.go) and the steps run again.
func (r *fileRun) steps(ctx context.Context) error {
	for {
		err := r.runSteps(ctx)
		if err == nil || !mayBeGone(err) || ctx.Err() != nil {
			return err
		}
		again, rerr := r.recoverGone(ctx, err)
		if rerr != nil {
			return rerr
		}
		if !again {
			return err
		}
	}
}

func (r *fileRun) runSteps(ctx context.Context) error {
	if r.f.Step == stepGaveUp {
		if err := r.retry(ctx, r.restart); err != nil {
			return err
		}
	}
	for _, step := range []func(context.Context) error{r.checkObjectName, r.collection, r.checkObjectName, r.asset, r.format, r.fileSet, r.file, r.job} {
		if err := r.retry(ctx, step); err != nil {
			return err
		}
	}
	order := []struct {
		name string
		fn   func(context.Context) error
	}{{stepUpload, r.upload}, {stepClose, r.close}, {stepKeyframes, r.afterClose}, {stepMetadata, r.metadata}, {stepFinish, r.finish}}
	start := 0
	for i, st := range order {
		if st.name == r.f.Step {
			start = i
		}
	}
	for i := start; i < len(order); i++ {
		if err := r.retry(ctx, order[i].fn); err != nil {
			return fmt.Errorf("%s of %s: %w", order[i].name, r.f.Path, err)
		}
		next := stepDone
		if i+1 < len(order) {
			next = order[i+1].name
		}
		r.f.Step = next
		if err := r.save(ctx); err != nil {
			return err
		}
	}
	return nil
}

// retry runs one idempotent step, retrying it in place on transient errors
// before leaving the rest to River's retries.
func (r *fileRun) retry(ctx context.Context, step func(context.Context) error) error {
	for try := 1; ; try++ {
		err := step(ctx)
		if err == nil {
			r.resumed(ctx)
		}
		if err == nil || !transient(err) || try > r.s.o.StepRetries || ctx.Err() != nil {
			return err
		}
		d := time.Duration(try) * 250 * time.Millisecond
		var wi *waitIndex
		if errors.As(err, &wi) {
			d = time.Second
		}
		r.s.log.Debug("delivery: step failed, retrying", "path", r.f.Path, "try", try, "err", err)
		r.noteRetry(ctx, err.Error(), d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

func (r *fileRun) name() string { return path.Base(r.f.Path) }

func (r *fileRun) folders() []string {
	dir := path.Dir(r.f.Path)
	if dir == "." || dir == "" {
		return nil
	}
	return strings.Split(dir, "/")
}

// dir is the storage directory: the same tree as the collections
// (NameParts.Dir, the one place that composes object names).
func (r *fileRun) dir() string {
	n := NameParts{StoragePath: r.conn.StoragePath, Root: r.d.RootTitle, PackageTitle: r.d.PackageTitle}
	if r.d.Origin == db.DeliveryOriginPortal {
		n.Portal = r.d.PortalName
	}
	return n.Dir(r.f.Path)
}

func (r *fileRun) mimeType() string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(r.f.Path))); t != "" {
		if i := strings.IndexByte(t, ';'); i >= 0 {
			t = t[:i]
		}
		return t
	}
	return "application/octet-stream"
}

// pending records that a create of what is about to be sent, so a resumed
// run looks for it before creating again.
func (r *fileRun) pending(ctx context.Context, what string) error {
	now := r.s.o.Now()
	r.f.Pending, r.f.PendingAt = what, &now
	return r.save(ctx)
}

// lost reports whether a create of what may have happened without its id
// being recorded, and whether iconik's index may still hide it.
func (r *fileRun) lost(what string) (maybe, young bool) {
	if r.f.Pending != what || r.f.PendingAt == nil {
		return false, false
	}
	return true, r.s.o.Now().Sub(*r.f.PendingAt) < r.s.o.IndexGrace
}

func (r *fileRun) recorded(ctx context.Context, set func()) error {
	set()
	r.f.Pending, r.f.PendingAt = "", nil
	return r.save(ctx)
}

// restart prepares a file ferry gave up on for another try: the failed
// iconik file record goes (a new one gets fresh upload URLs), the asset,
// format, file set and job are kept.
func (r *fileRun) restart(ctx context.Context) error {
	f := r.f
	if f.IconikFileID != "" {
		if err := r.cl.FileDelete(ctx, f.AssetID, f.IconikFileID); err != nil && !isNotFound(err) {
			return err
		}
	}
	if f.JobID != "" {
		if _, err := r.cl.JobPatch(ctx, f.JobID, iconik.JobPatchParams{Type: "TRANSFER", Status: "STARTED", Title: f.Path, ProgressProcessed: new(int64(0))}); err != nil {
			return err
		}
	}
	f.IconikFileID, f.TransferState, f.DeliveredSHA256, f.MD5, f.BytesDone, f.Step = "", "", "", "", 0, stepUpload
	if f.Pending == "batch" {
		// Asked for the old file record: the new one needs its own keyframes.
		f.Pending, f.PendingAt = "", nil
	}
	return r.save(ctx)
}

func isNotFound(err error) bool {
	var ie *iconik.Error
	return errors.As(err, &ie) && ie.Status == http.StatusNotFound
}

// ---- the creates ----

func (r *fileRun) collection(ctx context.Context) error {
	if r.f.CollectionID != "" && r.d.CollectionID != "" {
		return nil
	}
	d, err := r.s.plan.packageCollection(ctx, r.cl, r.conn, r.d, r.pkg)
	if err != nil {
		return fmt.Errorf("resolving the collection of package %q: %w", r.pkg.Name, err)
	}
	r.d = d
	if r.f.CollectionID != "" {
		return nil
	}
	id, err := r.s.plan.folder(ctx, r.cl, r.conn, d, r.folders())
	if err != nil {
		return fmt.Errorf("resolving the collection of %s: %w", r.f.Path, err)
	}
	if r.f.AssetID != "" {
		// The file's collection was deleted in iconik and resolved anew
		// (recover.go) while its asset lives on: the asset joins the new one.
		if err := r.cl.CollectionContentsAdd(ctx, id, iconik.CollectionContentsAddParams{ObjectID: r.f.AssetID, ObjectType: "assets"}); err != nil {
			return fmt.Errorf("adding the asset of %s to its collection: %w", r.f.Path, err)
		}
	}
	return r.recorded(ctx, func() { r.f.CollectionID = id })
}

func (r *fileRun) asset(ctx context.Context) error {
	f := r.f
	if f.AssetID != "" {
		return nil
	}
	if maybe, young := r.lost("asset"); maybe {
		for it, err := range r.cl.CollectionContentsList(ctx, f.CollectionID, iconik.CollectionContentsListParams{ObjectTypes: []string{"assets"}, ExternalID: f.FileID}) {
			if err != nil {
				return fmt.Errorf("looking for the asset of %s: %w", f.Path, err)
			}
			if it.ExternalID == f.FileID && it.Status != "DELETED" {
				a, err := r.cl.AssetGet(ctx, it.ID)
				if err != nil {
					return err
				}
				return r.recorded(ctx, func() { r.setAsset(a) })
			}
		}
		if young {
			return &waitIndex{what: "the asset of " + f.Path}
		}
	}
	if err := r.pending(ctx, "asset"); err != nil {
		return err
	}
	a, err := r.cl.AssetCreate(ctx, iconik.AssetCreateParams{Title: r.name(), Type: "ASSET", CollectionID: f.CollectionID,
		ExternalID: f.FileID, AssignToCollection: true})
	if err != nil {
		return fmt.Errorf("creating the asset of %s: %w", f.Path, err)
	}
	return r.recorded(ctx, func() { r.setAsset(a) })
}

func (r *fileRun) setAsset(a *iconik.Asset) {
	r.f.AssetID, r.userID = a.ID, a.CreatedByUser
	r.f.VersionID = a.DefaultVersionID
	if r.f.VersionID == "" && len(a.Versions) > 0 {
		r.f.VersionID = a.Versions[0].ID
	}
}

func (r *fileRun) format(ctx context.Context) error {
	f := r.f
	if f.FormatID != "" {
		return nil
	}
	if maybe, _ := r.lost("format"); maybe {
		fm, err := r.cl.FormatGet(ctx, f.AssetID, "ORIGINAL")
		if err == nil {
			return r.recorded(ctx, func() { f.FormatID = fm.ID })
		}
		if !isNotFound(err) {
			return err
		}
	}
	if err := r.pending(ctx, "format"); err != nil {
		return err
	}
	fm, err := r.cl.FormatCreate(ctx, f.AssetID, iconik.FormatCreateParams{Name: "ORIGINAL", UserID: r.userID, VersionID: f.VersionID,
		Metadata: []map[string]any{{"internet_media_type": r.mimeType()}}, StorageMethods: []string{r.conn.StorageMethod}})
	if err != nil {
		return fmt.Errorf("creating the ORIGINAL format of %s: %w", f.Path, err)
	}
	return r.recorded(ctx, func() { f.FormatID = fm.ID })
}

func (r *fileRun) fileSet(ctx context.Context) error {
	f := r.f
	if f.FileSetID != "" {
		return nil
	}
	if maybe, _ := r.lost("file_set"); maybe {
		for fs, err := range r.cl.FileSetList(ctx, f.AssetID) {
			if err != nil {
				return err
			}
			if fs.FormatID == f.FormatID && fs.Status != "DELETED" {
				return r.recorded(ctx, func() { f.FileSetID = fs.ID })
			}
		}
	}
	if err := r.pending(ctx, "file_set"); err != nil {
		return err
	}
	fs, err := r.cl.FileSetCreate(ctx, f.AssetID, iconik.FileSetCreateParams{FormatID: f.FormatID, Name: r.name(), BaseDir: r.dir(),
		StorageID: r.conn.StorageID, VersionID: f.VersionID, ComponentIDs: []string{}})
	if err != nil {
		return fmt.Errorf("creating the file set of %s: %w", f.Path, err)
	}
	return r.recorded(ctx, func() { f.FileSetID = fs.ID })
}

func (r *fileRun) file(ctx context.Context) error {
	f := r.f
	if f.IconikFileID != "" {
		return nil
	}
	if maybe, _ := r.lost("file"); maybe {
		for x, err := range r.cl.FileList(ctx, f.AssetID) {
			if err != nil {
				return err
			}
			if x.FileSetID == f.FileSetID && x.Status != "DELETED" && x.Status != "FAILED" {
				return r.recorded(ctx, func() { f.IconikFileID = x.ID })
			}
		}
	}
	if err := r.pending(ctx, "file"); err != nil {
		return err
	}
	p := iconik.FileCreateParams{OriginalName: r.name(), DirectoryPath: r.dir(), Type: "FILE", Size: f.Size, StorageID: r.conn.StorageID,
		FileSetID: f.FileSetID, FormatID: f.FormatID, VersionID: f.VersionID, Checksum: f.MD5,
		FileDateCreated: iconik.Time{Time: r.src.CreatedAt}}
	if r.src.CompletedAt != nil {
		p.FileDateModified = iconik.Time{Time: *r.src.CompletedAt}
	}
	x, err := r.cl.FileCreate(ctx, f.AssetID, p)
	if err != nil {
		return fmt.Errorf("creating the file record of %s: %w", f.Path, err)
	}
	r.icFile = x
	return r.recorded(ctx, func() { f.IconikFileID = x.ID })
}

func (r *fileRun) job(ctx context.Context) error {
	f := r.f
	if f.JobID != "" {
		return nil
	}
	parent, err := r.s.parentJob(ctx, r.cl, r.d)
	if err != nil {
		return err
	}
	if maybe, young := r.lost("job"); maybe {
		for j, err := range r.cl.JobList(ctx, iconik.JobListParams{ObjectID: f.AssetID, Type: "TRANSFER"}) {
			if err != nil {
				return err
			}
			if j.Title == f.Path {
				return r.recorded(ctx, func() { f.JobID = j.ID })
			}
		}
		if young {
			return &waitIndex{what: "the job of " + f.Path}
		}
	}
	if err := r.pending(ctx, "job"); err != nil {
		return err
	}
	j, err := r.cl.JobCreate(ctx, iconik.JobCreateParams{Type: "TRANSFER", Status: "STARTED", Title: f.Path, ObjectType: "assets",
		ObjectID: f.AssetID, ParentID: parent, ProgressProcessed: new(int64(0)), ProgressTotal: new(f.Size),
		StartedAt: iconik.Time{Time: r.s.o.Now()}})
	if err != nil {
		return fmt.Errorf("creating the transfer job of %s: %w", f.Path, err)
	}
	return r.recorded(ctx, func() { f.JobID = j.ID })
}

// parentJob returns the delivery's package-level iconik job, created once.
func (s *Service) parentJob(ctx context.Context, cl *iconik.Client, d *db.Delivery) (string, error) {
	if d.IconikJobID != "" {
		return d.IconikJobID, nil
	}
	unlock := s.locks.lock("job|" + d.ID)
	defer unlock()
	d, err := s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: d.ID})
	if err != nil || d.IconikJobID != "" {
		return d.IconikJobID, err
	}
	title := "Delivery of " + d.PackageTitle
	if d.JobPendingAt != nil {
		for j, err := range cl.JobList(ctx, iconik.JobListParams{ObjectID: d.CollectionID, Type: "TRANSFER"}) {
			if err != nil {
				return "", err
			}
			if j.Title == title {
				_, err := s.o.DB.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, IconikJobID: j.ID})
				return j.ID, err
			}
		}
		if s.o.Now().Sub(*d.JobPendingAt) < s.o.IndexGrace {
			return "", &waitIndex{what: "the package's job"}
		}
	}
	now := s.o.Now()
	// Guarded: of replicas working files of this delivery at once, one
	// creates the package's job; the others wait for the id it records.
	_, err = s.o.DB.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, PendingAt: &now, Guarded: true, WasPendingAt: d.JobPendingAt})
	if errors.Is(err, db.ErrPrecondition) {
		return "", &waitIndex{what: "the package's job, which another replica is creating"}
	}
	if err != nil {
		return "", err
	}
	j, err := cl.JobCreate(ctx, iconik.JobCreateParams{Type: "TRANSFER", Status: "STARTED", Title: title, ObjectType: "collections",
		ObjectID: d.CollectionID, StartedAt: iconik.Time{Time: now}})
	if err != nil {
		return "", fmt.Errorf("creating the package's transfer job: %w", err)
	}
	if _, err := s.o.DB.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, IconikJobID: j.ID}); err != nil {
		return "", err
	}
	return j.ID, nil
}

// ---- the bytes ----

func (r *fileRun) upload(ctx context.Context) error {
	f := r.f
	up := r.s.o.Uploaders[r.conn.StorageMethod]
	if up == nil {
		return permanent("no uploader for storage method %q", r.conn.StorageMethod)
	}
	blob, err := r.s.o.Blobs.Open(ctx, f.UploadID)
	if err != nil {
		return permanent("opening the stored bytes of %s: %w", f.Path, err)
	}
	defer blob.Close()
	if blob.Size() != f.Size {
		return permanent("the stored %s holds %d bytes, %d were recorded", f.Path, blob.Size(), f.Size)
	}
	rec, fresh := r.icFile, true
	if rec == nil {
		rec, fresh = &iconik.File{ID: f.IconikFileID, AssetID: f.AssetID}, false
	}
	r.icFile = nil // its URLs are used now
	tgt := newTarget(r.cl, rec, fresh, r.conn.StorageMethod, r.conn.S3SignsMD5)
	resume := r.openTransferState()
	src := newMD5Source(blob)
	var sent atomic.Int64
	stop := r.reportProgress(ctx, &sent)
	res, err := up.Upload(ctx, uploadSource(src), tgt, transfer.Params{
		Resume: resume,
		Checkpoint: func(st transfer.State) error {
			sealed, err := r.sealTransferState(st)
			if err != nil {
				return err
			}
			f.TransferState, f.BytesDone = sealed, sent.Load()
			r.resumed(ctx) // bytes flow again: nothing waits
			return r.save(ctx)
		},
		Progress: func(n int64) { sent.Store(n) },
	})
	stop()
	if err != nil {
		return fmt.Errorf("sending the bytes of %s: %w", f.Path, err)
	}
	want, err := r.recordedSHA256(ctx, res.SHA256)
	if err != nil {
		return err
	}
	if !strings.EqualFold(res.SHA256, want) {
		return permanent("integrity: the SHA-256 sent to the storage (%s) differs from the one recorded for the file (%s)", res.SHA256, want)
	}
	f.DeliveredSHA256, f.MD5, f.BytesDone, f.TransferState = res.SHA256, src.Sum(), f.Size, ""
	return r.save(ctx)
}

// transferStateContext binds a sealed transfer state to its row, so it
// cannot be moved to another file.
func (r *fileRun) transferStateContext() string {
	return "delivery/" + r.f.DeliveryID + "/" + r.f.FileID + "/transfer_state"
}

// sealTransferState encodes st for delivery_files.transfer_state, sealed
// when the Service has a Sealer: a GCS resumable session URI (or a
// provider's upload URL) grants upload access on its own, so it must not
// sit readable in the database.
func (r *fileRun) sealTransferState(st transfer.State) (string, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encoding the transfer state of %s: %w", r.f.Path, err)
	}
	if r.s.o.Sealer == nil {
		return string(b), nil
	}
	sealed, err := r.s.o.Sealer.Seal(secret.New(string(b)), r.transferStateContext())
	if err != nil {
		return "", fmt.Errorf("sealing the transfer state of %s: %w", r.f.Path, err)
	}
	return sealed, nil
}

// openTransferState reads the recorded transfer state: sealed, or plain
// JSON as written before states were sealed (or without a Sealer). One that
// cannot be read is dropped and the upload starts over (the provider
// overwrites the same key).
func (r *fileRun) openTransferState() *transfer.State {
	raw := r.f.TransferState
	if raw == "" {
		return nil
	}
	if !strings.HasPrefix(raw, "{") {
		if r.s.o.Sealer == nil {
			r.s.log.Warn("delivery: a sealed transfer state and no Sealer: starting the upload over", "path", r.f.Path)
			return nil
		}
		v, err := r.s.o.Sealer.Open(raw, r.transferStateContext())
		if err != nil {
			r.s.log.Warn("delivery: unreadable transfer state, starting the upload over", "path", r.f.Path, "err", err)
			return nil
		}
		raw = v.Reveal()
	}
	st := &transfer.State{}
	if err := json.Unmarshal([]byte(raw), st); err != nil {
		r.s.log.Warn("delivery: undecodable transfer state, starting the upload over", "path", r.f.Path)
		return nil
	}
	return st
}

// recordedSHA256 is the SHA-256 the delivered bytes must have: the one
// recorded at ingest or, when the sender declared none (a parallel upload),
// the first one a delivery computed over the stored bytes, which got
// recorded on the file then. So sent (this delivery's) becomes the file's
// when none is recorded yet, and every later delivery of the file (other
// connections, retries) is compared against it.
func (r *fileRun) recordedSHA256(ctx context.Context, sent string) (string, error) {
	if r.f.SHA256 != "" {
		return r.f.SHA256, nil
	}
	src, err := r.s.o.DB.FileSetSHA256IfEmpty(ctx, &db.FileSetSHA256IfEmptyParams{ID: r.f.FileID, SHA256: strings.ToLower(sent)})
	if err != nil {
		return "", fmt.Errorf("recording the SHA-256 of %s: %w", r.f.Path, err)
	}
	r.src = src
	return src.SHA256, nil
}

// reportProgress PATCHes the job's progress at most once a second while
// bytes flow; the returned func stops it.
func (r *fileRun) reportProgress(ctx context.Context, sent *atomic.Int64) func() {
	// Progress is best effort: its retries do not make the file wait.
	ctx, cancel := context.WithCancel(iconik.WithRetryNotice(ctx, nil))
	done := make(chan struct{})
	// Copies: checkpoints rewrite r.f while the bytes flow.
	jobID, title, size := r.f.JobID, r.f.Path, r.f.Size
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n := sent.Load()
			if n == last {
				continue
			}
			last = n
			if _, err := r.cl.JobPatch(ctx, jobID, iconik.JobPatchParams{Type: "TRANSFER", Status: "STARTED", Title: title,
				ProgressProcessed: new(n), ProgressTotal: new(size)}); err != nil && ctx.Err() == nil {
				r.s.log.Debug("delivery: progress update failed", "path", title, "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// ---- after the bytes ----

func (r *fileRun) close(ctx context.Context) error {
	f := r.f
	_, err := r.cl.FilePatch(ctx, f.AssetID, f.IconikFileID, iconik.FilePatchParams{OriginalName: r.name(), DirectoryPath: r.dir(),
		FileSetID: f.FileSetID, Type: "FILE", Status: "CLOSED", Size: new(f.Size), Checksum: f.MD5})
	return err
}

// description is where the file's description goes and what it says ("" view: no description
// is written). The text is the same for every file of a delivery, which lets afterClose batch it.
func (r *fileRun) description(ctx context.Context) (view, field, text string) {
	if r.conn.MetadataViewID == "" {
		return "", "", ""
	}
	field = r.conn.DescriptionField
	if field == "" {
		field = "description"
	}
	uploader := r.pkg.SenderEmail
	if uploader == "" && r.pkg.CreatedByUserID != "" {
		if u, err := r.s.o.DB.UserGetByID(ctx, &db.UserGetByIDParams{ID: r.pkg.CreatedByUserID}); err == nil {
			uploader = u.Email
		}
	}
	text = "Package: " + r.pkg.Name + "\nUploader: " + uploader
	if r.d.Origin == db.DeliveryOriginPortal {
		text += "\nPortal: " + r.d.PortalName
	}
	return r.conn.MetadataViewID, field, text
}

// metadata writes the description of a file whose run resumed at this step
// (recorded by an earlier version of ferry, or by a run that ended right
// after afterClose, which wrote it already: so it looks first).
func (r *fileRun) metadata(ctx context.Context) error {
	if r.descriptionDone {
		return nil
	}
	view, field, text := r.description(ctx)
	if view == "" {
		return nil
	}
	if v, err := r.cl.MetadataValuesGet(ctx, r.f.AssetID, view, iconik.MetadataValuesGetParams{}); err == nil && v.String(field) == text {
		r.descriptionDone = true
		return nil
	}
	if _, err := r.cl.MetadataValuesPut(ctx, r.f.AssetID, view, iconik.MetadataValuesPutParams{StringValues: map[string]string{field: text}}); err != nil {
		return err
	}
	r.descriptionDone = true
	return nil
}

func (r *fileRun) finish(ctx context.Context) error {
	f := r.f
	_, err := r.cl.JobPatch(ctx, f.JobID, iconik.JobPatchParams{Type: "TRANSFER", Status: "FINISHED", Title: f.Path,
		ProgressProcessed: new(f.Size), ProgressTotal: new(f.Size), CompletedAt: iconik.Time{Time: r.s.o.Now()}})
	return err
}

// ---- settling ----

// settleDelivery settles the delivery when this was its last file.
func (s *Service) settleDelivery(ctx context.Context, deliveryID string) error {
	return s.o.DB.InTx(ctx, func(tx db.Tx) error {
		d, err := tx.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: deliveryID})
		if err != nil {
			return err
		}
		return s.settleIfDone(ctx, tx, d)
	})
}

// settleArgs is the River job that closes the package-level iconik job and
// emits the delivery's event once it settled.
type settleArgs struct {
	DeliveryID string `json:"delivery_id"`
	SettledAt  int64  `json:"settled_at"`        // distinguishes a settling after a retry
	Package    string `json:"package,omitempty"` // for people reading River UI
}

func (settleArgs) Kind() string { return "ferry_delivery_settled" }

type settleWorker struct {
	river.WorkerDefaults[settleArgs]
	s *Service
}

func (w *settleWorker) Work(ctx context.Context, job *river.Job[settleArgs]) error {
	s := w.s
	d, err := s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: job.Args.DeliveryID})
	if err != nil {
		return err
	}
	files, err := s.o.DB.DeliveryFileList(ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})
	if err != nil {
		return err
	}
	pkg, err := s.o.DB.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: d.PackageID})
	if err != nil {
		return err
	}
	if d.IconikJobID != "" {
		if err := s.closeParentJob(ctx, d, files); isNotFound(err) {
			// Deleted in iconik: there is nothing left to close, and
			// retrying the dead id would only hold the event back.
			s.log.Warn("delivery: the package's iconik job is gone; not closing it", "delivery", d.ID, "job", d.IconikJobID, "err", err)
		} else if err != nil {
			var pe *errPermanent
			if !errors.As(s.brokenConnection(ctx, d.ConnectionID, err), &pe) {
				return err
			}
			// The connection is broken: closing the job can wait for no
			// retry, and the event must not wait for it either.
			s.log.Warn("delivery: not closing the package's iconik job", "delivery", d.ID, "err", err)
		}
	}
	s.log.Info("delivery: settled", "delivery", d.ID, "package", d.PackageID, "state", d.State)
	if s.o.OnSettled != nil {
		return s.o.OnSettled(ctx, Event{Delivery: d, Package: pkg, Files: files})
	}
	return nil
}

// closeParentJob sets the package-level iconik job's final status.
func (s *Service) closeParentJob(ctx context.Context, d *db.Delivery, files []*db.DeliveryFile) error {
	cl, _, err := s.o.Connections.Client(ctx, d.ConnectionID)
	if err != nil {
		return err
	}
	var delivered int
	for _, f := range files {
		if f.State == db.DeliveryFileDelivered {
			delivered++
		}
	}
	status := map[db.DeliveryState]string{db.DeliveryDelivered: "FINISHED", db.DeliveryPartiallyFailed: "FINISHED_WITH_WARNING", db.DeliveryFailed: "FAILED"}[d.State]
	if status == "" {
		return nil // retried since: a later settling reports
	}
	p := iconik.JobPatchParams{Type: "TRANSFER", Status: status, Title: "Delivery of " + d.PackageTitle,
		ProgressProcessed: new(int64(delivered)), ProgressTotal: new(int64(len(files))),
		Message: fmt.Sprintf("%d of %d files delivered", delivered, len(files)), CompletedAt: iconik.Time{Time: s.o.Now()}}
	if d.Error != "" {
		p.ErrorMessage = d.Error
	}
	if _, err := cl.JobPatch(ctx, d.IconikJobID, p); err != nil {
		return fmt.Errorf("closing the package's iconik job: %w", err)
	}
	return nil
}
