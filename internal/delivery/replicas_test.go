package delivery_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
)

// TestReplicasOnOneDatabaseCreateEachCollectionAndJobOnce runs two delivery
// Services (replicas) on one PostgreSQL database: packages of one name with
// files in the same folders are worked by both at once. Every package gets
// its own "<name> (n)" collection, and nothing in iconik's whole tenant
// exists twice (collections, assets, package and file jobs), though each
// replica's in-process locks know nothing of the other's.
func TestReplicasOnOneDatabaseCreateEachCollectionAndJobOnce(t *testing.T) {
	e := newEnv(t, envOptions{dsn: engines[1].dsn(t), replicas: 2, services: func(o *delivery.Options) {
		o.MaxAttempts = 25
		o.PerDelivery = 8
	}})
	conn := e.connect("replicated", "s3")
	e.createPortal("Replicated", conn.ID)
	var hs []*pkgHandle
	for i := range 6 {
		h := e.newPackage("replicated", "Shoot", fmt.Sprintf("s%d@example.com", i))
		for j := range 8 {
			e.put(h, fmt.Sprintf("card %d/day/clip%d.txt", j%2, j), bytes.Repeat([]byte{byte(i), byte(j)}, 500))
		}
		e.finalize(h)
		hs = append(hs, h)
	}
	var titles []string
	for _, h := range hs {
		st := e.settled(h, conn.ID)
		if st.Delivery.State != db.DeliveryDelivered {
			t.Fatalf("package %s: delivery %s: %s", h.pkg.ID, st.Delivery.State, st.Delivery.Error)
		}
		titles = append(titles, st.Delivery.PackageTitle)
	}
	slices.Sort(titles)
	want := []string{"Shoot", "Shoot (2)", "Shoot (3)", "Shoot (4)", "Shoot (5)", "Shoot (6)"}
	if !slices.Equal(titles, want) {
		t.Fatalf("package collections %q, want %q", titles, want)
	}
	if dups := e.emu.Duplicates(); len(dups) != 0 {
		t.Fatalf("iconik holds duplicates after two replicas delivered:\n%s", dups)
	}
}

// TestJobsADeadReplicaLeftRunningAreResumedOnceTheirLeasesRunOut: a
// replica died while working a package's files: River still says their jobs
// run (attempted an hour ago by a client that is gone) and their leases ran
// out. River's rescuer never looks at them (a file's job has no timeout),
// so a live replica must: it delivers the package.
func TestJobsADeadReplicaLeftRunningAreResumedOnceTheirLeasesRunOut(t *testing.T) {
	e := newEnv(t, envOptions{dsn: engines[1].dsn(t), noStart: true, services: func(o *delivery.Options) {
		o.MaxAttempts = 5
		o.LeaseTTL = time.Second
	}})
	conn := e.connect("orphans", "s3")
	e.createPortal("Orphans", conn.ID)
	h := e.newPackage("orphans", "Left behind", "s@example.com")
	for j := range 3 {
		e.put(h, fmt.Sprintf("d/f%d.txt", j), bytes.Repeat([]byte{byte(j)}, 1000))
	}
	e.finalize(h)
	// The dead replica's state: every job running since an hour ago, every
	// file leased by it until a second ago.
	ctx := e.ctx
	if _, err := e.store.SQLDB().ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
		attempted_at = now() - interval '1 hour', attempted_by = '{dead-replica}' WHERE state = 'available'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.SQLDB().ExecContext(ctx, `UPDATE delivery_files SET lease_owner = 'dead-replica', lease_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	if dups := e.emu.Duplicates(); len(dups) != 0 {
		t.Fatalf("iconik holds duplicates:\n%s", dups)
	}
}
