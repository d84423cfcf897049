package delivery_test

import (
	"testing"

	"github.com/ferryhq/ferry/internal/db"
)

// TestAFileSettledJustBeforeACrashStillSettlesItsDelivery: a process killed
// after it saved its file delivered but before it settled the delivery
// leaves the file's job to run again (River rescues it, or another replica's
// lease loop does). That run finds the file settled and must settle the
// delivery, which otherwise stays running with every file done.
func TestAFileSettledJustBeforeACrashStillSettlesItsDelivery(t *testing.T) {
	e := newEnv(t, envOptions{noStart: true})
	conn := e.connect("c", "s3")
	e.createPortal("Crash", conn.ID)
	h := e.newPackage("crash", "Killed", "k@example.com")
	e.put(h, "a.txt", []byte("delivered before the kill\n"))
	e.finalize(h)
	d := e.deliveryOf(h, conn.ID)
	files, err := e.store.DeliveryFileList(e.ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})
	if err != nil || len(files) != 1 {
		t.Fatalf("files %v, %v", files, err)
	}
	// What the killed run left: its file saved delivered, the delivery not settled.
	f := files[0]
	f.State = db.DeliveryFileDelivered
	if _, err := e.store.DeliveryFileUpdate(e.ctx, &db.DeliveryFileUpdateParams{File: f}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.settled(h, conn.ID); st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s, want delivered", st.Delivery.State)
	}
}
