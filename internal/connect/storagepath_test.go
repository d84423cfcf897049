package connect_test

import (
	"context"
	"testing"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// The storage's path prefix is part of every object name iconik gives a
// delivered file, so admission needs it (issue 9 item 5): a connection
// records it when saved, and a re-verification fills it in for a connection
// saved before it was recorded.
func TestConnectionRemembersTheStoragePathPrefix(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	f := newFixture(t, emu)
	ctx := context.Background()
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: f.params("admin"), StorageID: f.storageID(t, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Path != "ferry" { // the emulator's default storages keep objects under "ferry"
		t.Fatalf("created connection's storage path %q, want %q", c.Storage.Path, "ferry")
	}
	row, err := f.store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	old := *row
	old.StoragePath = "" // as saved before migration 00008
	if _, err := f.store.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: old.ID, Name: old.Name, BaseURL: old.BaseURL,
		AppID: old.AppID, TokenSealed: old.TokenSealed, StorageID: old.StorageID, StorageName: old.StorageName,
		StorageMethod: old.StorageMethod, PortalRoot: old.PortalRoot, SendRoot: old.SendRoot, MetadataViewID: old.MetadataViewID,
		MetadataField: old.MetadataField, State: old.State, UpdatedAt: old.UpdatedAt}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Reverify(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Storage.Path != "ferry" || got.Broken() {
		t.Fatalf("after re-verification: storage path %q broken %v, want %q and ok", got.Storage.Path, got.Broken(), "ferry")
	}
}

// A storage where iconik adds a UUID to file names makes every object name
// longer: the connection records it for the admission check.
func TestConnectionRemembersThatTheStorageAddsUUIDs(t *testing.T) {
	seed := emulator.DefaultSeed()
	for i := range seed.Storages {
		if seed.Storages[i].Name == "s3" {
			seed.Storages[i].Settings = map[string]any{"add_uuid_to_filenames": true}
		}
	}
	emu := emulatortest.Start(t, emulator.Options{Seed: seed})
	f := newFixture(t, emu)
	ctx := context.Background()
	for _, st := range []string{"s3", "gcs"} {
		c, err := f.svc.Create(ctx, connect.Input{Name: st, Params: f.params("admin"), StorageID: f.storageID(t, st)})
		if err != nil {
			t.Fatal(err)
		}
		if c.Storage.AddsUUID != (st == "s3") {
			t.Errorf("connection to %s: AddsUUID %v", st, c.Storage.AddsUUID)
		}
	}
}
