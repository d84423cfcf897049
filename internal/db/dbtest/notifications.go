package dbtest

import (
	"context"
	"errors"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
)

// testNotifications covers what "never lost, never sent twice" leans on: one
// row per (event, kind, recipient) even when the event is replayed inside a
// transaction (which must stay usable), attempts counted, and a sent message
// never changed again.
func testNotifications(t *testing.T, s db.Store) {
	ctx := context.Background()
	p := mkPackage(t, s, "")
	create := func(q db.Queries, recipient string) (*db.Notification, error) {
		return q.NotificationCreate(ctx, &db.NotificationCreateParams{PackageID: p.ID, Event: "finalized:" + p.ID, Kind: "new_package",
			Channel: db.NotificationEmail, Recipient: recipient, Data: `{"name":"Shoot"}`, CreatedAt: t0})
	}
	n := must(create(s, "a@example.com"))
	if n.State != db.NotificationQueued || n.PackageID != p.ID || n.Data != `{"name":"Shoot"}` || n.Attempts != 0 || n.SentAt != nil || !n.CreatedAt.Equal(t0) {
		t.Fatalf("created %+v", n)
	}
	// A replay inside a transaction is refused without aborting it (on
	// PostgreSQL a failed statement would poison the rest of the transaction).
	err := s.InTx(ctx, func(tx db.Tx) error {
		if _, err := create(tx, "a@example.com"); !errors.Is(err, db.ErrConflict) {
			t.Fatalf("replayed create: %v, want ErrConflict", err)
		}
		_, err := create(tx, "b@example.com")
		return err
	})
	if err != nil {
		t.Fatalf("the transaction did not survive the replay: %v", err)
	}
	test := must(s.NotificationCreate(ctx, &db.NotificationCreateParams{Event: "test:1", Kind: "test", Channel: db.NotificationEmail, Recipient: "a@example.com"}))
	if test.PackageID != "" || test.Data != "{}" {
		t.Fatalf("test message %+v", test)
	}

	retry := must(s.NotificationRecordAttempt(ctx, &db.NotificationRecordAttemptParams{ID: n.ID, State: db.NotificationQueued, Transport: "smtp",
		Error: "451 try later", Response: "451 try later", At: t0}))
	if retry.State != db.NotificationQueued || retry.Attempts != 1 || retry.Error != "451 try later" || retry.SentAt != nil {
		t.Fatalf("after a failed attempt %+v", retry)
	}
	sent := must(s.NotificationRecordAttempt(ctx, &db.NotificationRecordAttemptParams{ID: n.ID, State: db.NotificationSent, Transport: "smtp",
		Subject: "New package", Response: "250 OK", At: t0}))
	if sent.State != db.NotificationSent || sent.Attempts != 2 || sent.Error != "" || sent.SentAt == nil || !sent.SentAt.Equal(t0) || sent.Response != "250 OK" {
		t.Fatalf("after sending %+v", sent)
	}
	_, err = s.NotificationRecordAttempt(ctx, &db.NotificationRecordAttemptParams{ID: n.ID, State: db.NotificationFailed, Error: "late", At: t0})
	wantErr(t, err, db.ErrPrecondition)

	list := must(s.NotificationList(ctx, &db.NotificationListParams{PackageID: p.ID}))
	if len(list) != 2 {
		t.Fatalf("package lists %d notifications, want 2", len(list))
	}
	if smtp := must(s.NotificationList(ctx, &db.NotificationListParams{Transport: "smtp"})); len(smtp) != 1 || smtp[0].ID != n.ID {
		t.Fatalf("smtp transport lists %+v", smtp)
	}
	if queued := must(s.NotificationList(ctx, &db.NotificationListParams{State: db.NotificationQueued})); len(queued) != 2 {
		t.Fatalf("queued lists %d, want the second recipient's and the test message", len(queued))
	}
	if got := must(s.NotificationGetByID(ctx, &db.NotificationGetByIDParams{ID: n.ID})); got.State != db.NotificationSent {
		t.Fatalf("get %+v", got)
	}
	_, err = s.NotificationGetByID(ctx, &db.NotificationGetByIDParams{ID: "nope"})
	wantErr(t, err, db.ErrNotFound)

	// A portal's switches: none set reads as ErrNotFound; set, then changed.
	portal := must(s.PortalCreate(ctx, &db.PortalCreateParams{Name: "P", Slug: "p-notify", Active: true}))
	_, err = s.PortalNotifySettingsGet(ctx, &db.PortalNotifySettingsGetParams{PortalID: portal.ID})
	wantErr(t, err, db.ErrNotFound)
	must(s.PortalNotifySettingsSet(ctx, &db.PortalNotifySettingsSetParams{PortalID: portal.ID, SenderReceipt: false, UpdatedAt: t0}))
	if got := must(s.PortalNotifySettingsGet(ctx, &db.PortalNotifySettingsGetParams{PortalID: portal.ID})); got.SenderReceipt || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("settings %+v", got)
	}
	if got := must(s.PortalNotifySettingsSet(ctx, &db.PortalNotifySettingsSetParams{PortalID: portal.ID, SenderReceipt: true})); !got.SenderReceipt {
		t.Fatalf("settings after the change %+v", got)
	}
	_, err = s.PortalNotifySettingsSet(ctx, &db.PortalNotifySettingsSetParams{PortalID: "nope", SenderReceipt: true})
	wantErr(t, err, db.ErrConflict)

	// Send to Cloud requesters: the latest wins; none is ErrNotFound.
	_, err = s.NotifyRequesterGet(ctx, &db.NotifyRequesterGetParams{PackageID: p.ID, ConnectionID: "c1"})
	wantErr(t, err, db.ErrNotFound)
	must(0, s.NotifyRequesterSet(ctx, &db.NotifyRequesterSetParams{PackageID: p.ID, ConnectionID: "c1", Email: "First@example.com"}))
	must(0, s.NotifyRequesterSet(ctx, &db.NotifyRequesterSetParams{PackageID: p.ID, ConnectionID: "c1", Email: "second@example.com"}))
	if got := must(s.NotifyRequesterGet(ctx, &db.NotifyRequesterGetParams{PackageID: p.ID, ConnectionID: "c1"})); got != "second@example.com" {
		t.Fatalf("requester %q", got)
	}
	wantErr(t, s.NotifyRequesterSet(ctx, &db.NotifyRequesterSetParams{PackageID: "nope", ConnectionID: "c1", Email: "a@example.com"}), db.ErrConflict)

	// Deleting the package deletes its notifications; a test message stays.
	must(0, s.PackageDelete(ctx, &db.PackageDeleteParams{ID: p.ID}))
	if left := must(s.NotificationList(ctx, &db.NotificationListParams{})); len(left) != 1 || left[0].ID != test.ID {
		t.Fatalf("after deleting the package: %+v", left)
	}
}
