package connect_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/secret"
)

// rewrite changes a saved connection's row behind the service's back, as
// time does in iconik (a token revoked, roles taken, a storage removed).
func (f *fixture) rewrite(t *testing.T, id string, change func(r *db.Connection)) {
	t.Helper()
	ctx := context.Background()
	r, err := f.store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	change(r)
	if _, err := f.store.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: r.ID, Name: r.Name, BaseURL: r.BaseURL,
		AppID: r.AppID, TokenSealed: r.TokenSealed, StorageID: r.StorageID, StorageName: r.StorageName,
		StorageMethod: r.StorageMethod, PortalRoot: r.PortalRoot, SendRoot: r.SendRoot, MetadataViewID: r.MetadataViewID,
		MetadataField: r.MetadataField, SlackWebhookSealed: r.SlackWebhookSealed, State: r.State, VerifiedAt: r.VerifiedAt}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) useCred(t *testing.T, r *db.Connection, cred string) {
	t.Helper()
	c := f.emu.Cred(cred)
	sealed, err := f.sealer.Seal(secret.New(c.Token), "connection/"+r.ID+"/token")
	if err != nil {
		t.Fatal(err)
	}
	r.AppID, r.TokenSealed = c.AppID, sealed
}

func TestReverifyMarksEachLastingFailureBroken(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(t *testing.T, r *db.Connection)
		says   string
	}{
		{"token revoked", func(t *testing.T, r *db.Connection) {
			r.TokenSealed, _ = f.sealer.Seal(secret.New("revoked-tok-9f3a"), "connection/"+r.ID+"/token")
		}, "refused the Application ID and token"},
		{"user lost a role", func(t *testing.T, r *db.Connection) { f.useCred(t, r, "power") }, "can_write_metadata_values"},
		{"user no longer qualifies", func(t *testing.T, r *db.Connection) { f.useCred(t, r, "readonly") }, "POWER user or an admin"},
		{"storage gone", func(t *testing.T, r *db.Connection) { r.StorageID = "00000000-0000-0000-0000-000000000000" }, "no storage"},
		{"metadata view gone", func(t *testing.T, r *db.Connection) { r.MetadataViewID = "00000000-0000-0000-0000-000000000000" }, "no metadata view"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := f.svc.Create(ctx, connect.Input{Name: "T" + string(rune('a'+i)), Params: f.params("admin"), StorageID: f.storageID(t, "s3")})
			if err != nil {
				t.Fatal(err)
			}
			f.rewrite(t, conn.ID, func(r *db.Connection) { c.change(t, r) })
			got, _, err := f.svc.Reverify(ctx, conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Broken() || !strings.Contains(got.StateReason, c.says) {
				t.Fatalf("after re-verify: state %s, reason %q; want broken saying %q", got.State, got.StateReason, c.says)
			}
			if _, _, err := f.svc.Client(ctx, conn.ID); err == nil {
				t.Fatal("Client handed out a broken connection")
			}
			stored, _ := f.svc.Get(ctx, conn.ID)
			if !stored.Broken() || stored.VerifiedAt == nil || !stored.VerifiedAt.Equal(*conn.VerifiedAt) {
				t.Fatalf("stored %+v: want broken with the last good verification time kept", stored)
			}
		})
	}
	noSecrets(t, "the log", f.logs.String(), f.emu.Cred("admin").Token, f.emu.Cred("power").Token, "revoked-tok-9f3a")
}
