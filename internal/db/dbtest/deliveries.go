package dbtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
)

// testDeliveries covers what exactly-once delivery leans on: one delivery per
// (package, connection), one row per (delivery, file) keeping every iconik
// id, one claim per (connection, parent, title), and one settling.
func testDeliveries(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	d := must(s.DeliveryCreate(ctx, &db.DeliveryCreateParams{PackageID: p.ID, ConnectionID: "c1", Origin: db.DeliveryOriginPortal, RootTitle: "Portal Downloads", PortalName: "Demo", CreatedAt: t0}))
	if d.State != db.DeliveryQueued || d.Finalized || d.PortalName != "Demo" || d.SettledAt != nil {
		t.Fatalf("created %+v", d)
	}
	again := must(s.DeliveryCreate(ctx, &db.DeliveryCreateParams{PackageID: p.ID, ConnectionID: "c1", Origin: db.DeliveryOriginSendToCloud, RootTitle: "MASV"}))
	if again.ID != d.ID || again.Origin != db.DeliveryOriginPortal {
		t.Fatalf("second create = %+v, want the first %+v", again, d)
	}
	f := must(s.DeliveryFileCreate(ctx, &db.DeliveryFileCreateParams{DeliveryID: d.ID, FileID: "f1", Path: "a/b.mov", Size: 7, SHA256: "ab", UploadID: "u1"}))
	f.AssetID, f.Step, f.Pending, f.TransferState, f.BytesDone, f.KeyframesSkipped = "asset-1", "format", "format", `{"method":"S3"}`, 7, true
	pendingAt := t0
	f.PendingAt = &pendingAt
	must(s.DeliveryFileUpdate(ctx, &db.DeliveryFileUpdateParams{File: f}))
	f2 := must(s.DeliveryFileCreate(ctx, &db.DeliveryFileCreateParams{DeliveryID: d.ID, FileID: "f1", Path: "x"}))
	if f2.AssetID != "asset-1" || f2.Path != "a/b.mov" || f2.Pending != "format" || !f2.PendingAt.Equal(t0) || f2.BytesDone != 7 || !f2.KeyframesSkipped || f2.TransferState != `{"method":"S3"}` {
		t.Fatalf("re-create lost recorded ids: %+v", f2)
	}
	f2.State, f2.Error = db.DeliveryFileFailed, "boom"
	failed := must(s.DeliveryFileUpdate(ctx, &db.DeliveryFileUpdateParams{File: f2}))
	if failed.SettledAt == nil {
		t.Fatalf("failed file not settled: %+v", failed)
	}
	if busy := must(s.DeliveryFileAnyUnsettled(ctx, &db.DeliveryFileAnyUnsettledParams{DeliveryID: d.ID})); busy {
		t.Fatal("a failed file counts as unsettled")
	}
	retried := must(s.DeliveryFileRetryFailed(ctx, &db.DeliveryFileRetryFailedParams{DeliveryID: d.ID}))
	if len(retried) != 1 || retried[0].State != db.DeliveryFileQueued || retried[0].AssetID != "asset-1" || retried[0].SettledAt != nil {
		t.Fatalf("retried %+v", retried)
	}
	if list := must(s.DeliveryFileList(ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})); len(list) != 1 {
		t.Fatalf("list = %d rows", len(list))
	}
	if busy := must(s.DeliveryFileAnyUnsettled(ctx, &db.DeliveryFileAnyUnsettledParams{DeliveryID: d.ID})); !busy {
		t.Fatal("a queued file does not count as unsettled")
	}

	// Retries: the last error and the next attempt are kept apart from the
	// worker's full-row saves, which must not overwrite them.
	next := t0.Add(time.Minute)
	waiting := must(s.DeliveryFileSetRetry(ctx, &db.DeliveryFileSetRetryParams{DeliveryID: d.ID, FileID: "f1", LastError: "iconik: 503", NextAttemptAt: &next}))
	if waiting.LastError != "iconik: 503" || waiting.NextAttemptAt == nil || !waiting.NextAttemptAt.Equal(next) || !waiting.Retrying() {
		t.Fatalf("waiting for a retry: %+v", waiting)
	}
	stale := retried[0]
	stale.Step, stale.Recreated = "upload", "asset"
	saved := must(s.DeliveryFileUpdate(ctx, &db.DeliveryFileUpdateParams{File: stale}))
	if saved.LastError != "iconik: 503" || saved.NextAttemptAt == nil || saved.Recreated != "asset" || saved.Step != "upload" {
		t.Fatalf("a full-row save lost the retry note or the recreated causes: %+v", saved)
	}
	resumed := must(s.DeliveryFileSetRetry(ctx, &db.DeliveryFileSetRetryParams{DeliveryID: d.ID, FileID: "f1"}))
	if resumed.LastError != "iconik: 503" || resumed.NextAttemptAt != nil || resumed.Retrying() {
		t.Fatalf("no longer waiting: %+v (the last error stays)", resumed)
	}
	if _, err := s.DeliveryFileSetRetry(ctx, &db.DeliveryFileSetRetryParams{DeliveryID: d.ID, FileID: "nope"}); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("retry note on an unknown file: %v", err)
	}
	resumed.State = db.DeliveryFileFailed
	must(s.DeliveryFileUpdate(ctx, &db.DeliveryFileUpdateParams{File: resumed}))
	must(s.DeliveryFileSetRetry(ctx, &db.DeliveryFileSetRetryParams{DeliveryID: d.ID, FileID: "f1", NextAttemptAt: &next}))
	again2 := must(s.DeliveryFileRetryFailed(ctx, &db.DeliveryFileRetryFailedParams{DeliveryID: d.ID}))
	if len(again2) != 1 || again2[0].Recreated != "" || again2[0].NextAttemptAt != nil {
		t.Fatalf("a retry request must start the recreate budget over: %+v", again2)
	}

	// Leases: one owner at a time until expiry; released ones are free.
	lease := func(owner string, until, now time.Time) error {
		return s.DeliveryFileLease(ctx, &db.DeliveryFileLeaseParams{DeliveryID: d.ID, FileID: "f1", Owner: owner, Until: until, Now: now})
	}
	if err := lease("a", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := lease("b", t0.Add(2*time.Minute), t0.Add(30*time.Second)); !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("second owner took a live lease: %v", err)
	}
	if err := lease("a", t0.Add(3*time.Minute), t0.Add(30*time.Second)); err != nil {
		t.Fatalf("owner could not extend its lease: %v", err)
	}
	if err := lease("b", t0.Add(5*time.Minute), t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	if err := s.DeliveryFileRelease(ctx, &db.DeliveryFileReleaseParams{DeliveryID: d.ID, FileID: "f1", Owner: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := lease("c", t0.Add(time.Minute), t0); err != nil {
		t.Fatalf("released lease not free: %v", err)
	}
	if err := s.DeliveryFileRelease(ctx, &db.DeliveryFileReleaseParams{}); err != nil {
		t.Fatal(err)
	}
	if err := lease("d", t0.Add(time.Minute), t0); err != nil {
		t.Fatalf("lease not free after releasing all: %v", err)
	}

	c1 := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c1", ParentID: "root", Title: "Pkg", PackageID: "p1"}))
	c2 := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c1", ParentID: "root", Title: "Pkg", PackageID: "p2"}))
	if c1.PackageID != "p1" || c2.PackageID != "p1" {
		t.Fatalf("claims %+v %+v: the first must win", c1, c2)
	}
	set := must(s.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: "c1", ParentID: "root", Title: "Pkg", CollectionID: "col-1"}))
	if set.CollectionID != "col-1" || set.PendingAt != nil {
		t.Fatalf("set %+v", set)
	}
	// A collection deleted in iconik is forgotten by id; the claim (and its
	// package) stays, so the same package gets the same title again.
	must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c2", ParentID: "root", Title: "Pkg", PackageID: "p9"}))
	must(s.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: "c2", ParentID: "root", Title: "Pkg", CollectionID: "col-1"}))
	if err := s.DeliveryCollectionForget(ctx, &db.DeliveryCollectionForgetParams{ConnectionID: "c1", CollectionID: "col-1"}); err != nil {
		t.Fatal(err)
	}
	gone := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c1", ParentID: "root", Title: "Pkg", PackageID: "p2"}))
	if gone.CollectionID != "" || gone.PendingAt != nil || gone.PackageID != "p1" {
		t.Fatalf("forgotten claim %+v; want no id, still p1's", gone)
	}
	if other := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c2", ParentID: "root", Title: "Pkg"})); other.CollectionID != "col-1" {
		t.Fatalf("forgetting on c1 touched c2's claim: %+v", other)
	}

	must(s.DeliverySetFinalized(ctx, &db.DeliverySetFinalizedParams{ID: d.ID}))
	must(s.DeliverySetCollection(ctx, &db.DeliverySetCollectionParams{ID: d.ID, RootTitle: "Portal Downloads", PackageTitle: "Pkg (2)", CollectionID: "col-2"}))
	must(s.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, IconikJobID: "job-1"}))
	done := must(s.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: d.ID, State: db.DeliveryDelivered, OnlyUnsettled: true, At: t0.Add(time.Minute)}))
	if !done.Finalized || done.PackageTitle != "Pkg (2)" || done.CollectionID != "col-2" || done.IconikJobID != "job-1" || done.SettledAt == nil {
		t.Fatalf("settled %+v", done)
	}
	_, err := s.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: d.ID, State: db.DeliveryFailed, OnlyUnsettled: true})
	if !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("second settling: %v, want ErrPrecondition", err)
	}
	if list := must(s.DeliveryListByPackage(ctx, &db.DeliveryListByPackageParams{PackageID: p.ID})); len(list) != 1 || list[0].State != db.DeliveryDelivered {
		t.Fatalf("list by package = %+v", list)
	}
}

// testGuardedPending: of two replicas that read the same claim (or
// delivery) and both mean to create the collection (or package job), only
// the first guarded pending mark lands; a mark guarded by a stale reading,
// or one made after the id is recorded, is refused with ErrPrecondition.
func testGuardedPending(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c1", ParentID: "root", Title: "day"}))
	first, second := t0, t0.Add(time.Second)
	mark := func(at time.Time, was *time.Time) error {
		_, err := s.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: "c1", ParentID: "root", Title: "day", PendingAt: &at, Guarded: true, WasPendingAt: was})
		return err
	}
	if err := mark(first, c.PendingAt); err != nil {
		t.Fatalf("first guarded mark: %v", err)
	}
	if err := mark(second, c.PendingAt); !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("second mark from the same reading: %v, want ErrPrecondition", err)
	}
	again := must(s.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: "c1", ParentID: "root", Title: "day"}))
	if again.PendingAt == nil || !again.PendingAt.Equal(first) {
		t.Fatalf("pending at %v, want the first mark %v", again.PendingAt, first)
	}
	// A create whose answer was lost is tried again from the fresh reading.
	if err := mark(second, again.PendingAt); err != nil {
		t.Fatalf("mark from the current reading: %v", err)
	}
	must(s.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: "c1", ParentID: "root", Title: "day", CollectionID: "col-day"}))
	if err := mark(second, nil); !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("mark after the id was recorded: %v, want ErrPrecondition", err)
	}

	p := mkPackage(t, s, "")
	d := must(s.DeliveryCreate(ctx, &db.DeliveryCreateParams{PackageID: p.ID, ConnectionID: "c1", Origin: db.DeliveryOriginPortal, CreatedAt: t0}))
	job := func(at time.Time, was *time.Time) error {
		_, err := s.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, PendingAt: &at, Guarded: true, WasPendingAt: was})
		return err
	}
	if err := job(first, d.JobPendingAt); err != nil {
		t.Fatalf("first guarded job mark: %v", err)
	}
	if err := job(second, d.JobPendingAt); !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("second job mark from the same reading: %v, want ErrPrecondition", err)
	}
	must(s.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: d.ID, IconikJobID: "job-1"}))
	if err := job(second, nil); !errors.Is(err, db.ErrPrecondition) {
		t.Fatalf("job mark after the id was recorded: %v, want ErrPrecondition", err)
	}
}
