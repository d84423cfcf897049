package delivery_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

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
