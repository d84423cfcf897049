package dbtest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
)

func connectionParams(name string) *db.ConnectionCreateParams {
	v := t0.Add(-time.Minute)
	return &db.ConnectionCreateParams{
		Name: name, BaseURL: "https://app.iconik.io", AppID: "app-1", TokenSealed: "v1:abcd:sealed",
		StorageID: "st-1", StorageName: "s3", StorageMethod: "S3", StoragePath: "media/ferry", StorageAddsUUID: true, PortalRoot: "Portal Downloads", SendRoot: "MASV",
		MetadataViewID: "view-1", MetadataField: "description", SlackWebhookSealed: "v1:abcd:slack",
		IconikUserID: "u-1", IconikUserEmail: "ada@example.com", VerifiedAt: &v, CreatedAt: t0,
	}
}

func testConnections(t *testing.T, s db.Store) {
	ctx := context.Background()
	want := connectionParams("Tenant A")
	c := must(s.ConnectionCreate(ctx, want))
	if c.ID == "" || c.Name != want.Name || c.BaseURL != want.BaseURL || c.AppID != want.AppID || c.TokenSealed != want.TokenSealed ||
		c.StorageID != want.StorageID || c.StorageName != want.StorageName || c.StorageMethod != want.StorageMethod ||
		c.StoragePath != want.StoragePath || !c.StorageAddsUUID || c.PortalRoot != want.PortalRoot || c.SendRoot != want.SendRoot || c.MetadataViewID != want.MetadataViewID ||
		c.MetadataField != want.MetadataField || c.SlackWebhookSealed != want.SlackWebhookSealed ||
		c.IconikUserID != want.IconikUserID || c.IconikUserEmail != want.IconikUserEmail ||
		c.State != db.ConnectionOK || c.StateReason != "" || c.VerifiedAt == nil || !c.VerifiedAt.Equal(*want.VerifiedAt) ||
		!c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0) {
		t.Fatalf("created %+v, want %+v", c, want)
	}
	got := must(s.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: c.ID}))
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("get = %+v, want %+v", got, c)
	}

	// Names are unique whatever their case.
	_, err := s.ConnectionCreate(ctx, connectionParams("tenant a"))
	wantErr(t, err, db.ErrConflict)

	bare := must(s.ConnectionCreate(ctx, &db.ConnectionCreateParams{Name: "B", BaseURL: "u", AppID: "a", TokenSealed: "t",
		StorageID: "s", PortalRoot: "P", SendRoot: "M", CreatedAt: t0}))
	if bare.VerifiedAt != nil || bare.SlackWebhookSealed != "" || bare.MetadataField != "" || bare.State != db.ConnectionOK {
		t.Fatalf("bare connection %+v", bare)
	}
	list := must(s.ConnectionList(ctx, &db.ConnectionListParams{}))
	if len(list) != 2 || list[0].ID != bare.ID || list[1].ID != c.ID {
		t.Fatalf("ConnectionList = %+v (want by name, case-insensitively: B, Tenant A)", list)
	}

	// A failed check marks it broken and keeps the last verification time.
	later := t0.Add(time.Hour)
	br := must(s.ConnectionSetState(ctx, &db.ConnectionSetStateParams{ID: c.ID, State: db.ConnectionBroken,
		StateReason: "iconik refused the token", UpdatedAt: later}))
	if br.State != db.ConnectionBroken || br.StateReason != "iconik refused the token" || !br.VerifiedAt.Equal(*want.VerifiedAt) ||
		!br.UpdatedAt.Equal(later) || br.TokenSealed != want.TokenSealed {
		t.Fatalf("after SetState broken: %+v", br)
	}
	ok := must(s.ConnectionSetState(ctx, &db.ConnectionSetStateParams{ID: c.ID, State: db.ConnectionOK, VerifiedAt: &later, UpdatedAt: later}))
	if ok.State != db.ConnectionOK || ok.StateReason != "" || !ok.VerifiedAt.Equal(later) {
		t.Fatalf("after SetState ok: %+v", ok)
	}
	_, err = s.ConnectionSetState(ctx, &db.ConnectionSetStateParams{ID: "missing", State: db.ConnectionOK})
	wantErr(t, err, db.ErrNotFound)

	// Update replaces every mutable field and keeps the creation time.
	up := must(s.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: c.ID, Name: "Tenant Z", BaseURL: "https://eu.iconik.io",
		AppID: "app-2", TokenSealed: "v1:abcd:new", StorageID: "st-2", StorageName: "gcs", StorageMethod: "GCS",
		StoragePath: "other/prefix", PortalRoot: "Inbox", SendRoot: "Sends", MetadataViewID: "view-2", MetadataField: "description",
		State: db.ConnectionBroken, StateReason: "why", UpdatedAt: later.Add(time.Hour)}))
	if up.Name != "Tenant Z" || up.BaseURL != "https://eu.iconik.io" || up.AppID != "app-2" || up.TokenSealed != "v1:abcd:new" ||
		up.StorageID != "st-2" || up.StorageName != "gcs" || up.StorageMethod != "GCS" || up.StoragePath != "other/prefix" || up.StorageAddsUUID || up.PortalRoot != "Inbox" ||
		up.SendRoot != "Sends" || up.MetadataViewID != "view-2" || up.SlackWebhookSealed != "" || up.IconikUserID != "" ||
		up.State != db.ConnectionBroken || up.StateReason != "why" || up.VerifiedAt != nil ||
		!up.CreatedAt.Equal(t0) || !up.UpdatedAt.Equal(later.Add(time.Hour)) {
		t.Fatalf("updated %+v", up)
	}
	_, err = s.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: c.ID, Name: "b", BaseURL: "u", AppID: "a", TokenSealed: "t",
		StorageID: "s", PortalRoot: "P", SendRoot: "M"})
	wantErr(t, err, db.ErrConflict)
	_, err = s.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: "missing", Name: "x"})
	wantErr(t, err, db.ErrNotFound)

	if err := s.ConnectionDelete(ctx, &db.ConnectionDeleteParams{ID: c.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: c.ID})
	wantErr(t, err, db.ErrNotFound)
	wantErr(t, s.ConnectionDelete(ctx, &db.ConnectionDeleteParams{ID: c.ID}), db.ErrNotFound)
}
