package connect_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/secret"
)

func TestVerifyAnswersEachDefaultSeedToken(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	cases := []struct {
		cred        string
		qualifies   bool
		missing     []string // exact, nil = none
		missingSome []string // must be among the missing
		userType    string
	}{
		{cred: "admin", qualifies: true, userType: "POWER"},
		{cred: "power", qualifies: true, missing: []string{"can_write_metadata_values"}, userType: "POWER"},
		{cred: "readonly", qualifies: false, missingSome: []string{"can_create_assets", "can_write_files", "can_write_metadata_values"}, userType: "STANDARD"},
	}
	for _, c := range cases {
		t.Run(c.cred, func(t *testing.T) {
			rep, err := f.svc.Verify(context.Background(), f.params(c.cred))
			if err != nil {
				t.Fatal(err)
			}
			u := rep.User
			if u.ID == "" || u.Email != c.cred+"@iconik.test" || u.Type != c.userType || !u.Active() || u.Name == "" {
				t.Errorf("user %+v", u)
			}
			if rep.Qualifies != c.qualifies {
				t.Errorf("qualifies = %v (%q), want %v", rep.Qualifies, rep.Reasons, c.qualifies)
			}
			if !c.qualifies && !strings.Contains(strings.Join(rep.Reasons, " "), "POWER user or an admin") {
				t.Errorf("reasons %q do not say what is needed", rep.Reasons)
			}
			if c.missingSome == nil && !slices.Equal(rep.MissingRoles, c.missing) {
				t.Errorf("missing roles = %q, want %q", rep.MissingRoles, c.missing)
			}
			for _, r := range c.missingSome {
				if !slices.Contains(rep.MissingRoles, r) {
					t.Errorf("missing roles %q lack %s", rep.MissingRoles, r)
				}
			}
			want := map[string]bool{"s3": true, "gcs": true, "azure": true, "b2": true, "proxies": false}
			if len(rep.Storages) != len(want) {
				t.Fatalf("storages %+v", rep.Storages)
			}
			for _, s := range rep.Storages {
				if s.Selectable != want[s.Name] || (s.Selectable != (s.Reason == "")) {
					t.Errorf("storage %s: selectable %v reason %q", s.Name, s.Selectable, s.Reason)
				}
			}
		})
	}
}

func TestVerifyRefusesBadCredentialsAndUnreachableIconik(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	good := f.params("admin")
	cases := []struct {
		name   string
		p      connect.Params
		status int
		code   string
		says   string
	}{
		{"bad token", connect.Params{BaseURL: good.BaseURL, AppID: good.AppID, Token: secret.New("not-the-token")}, http.StatusBadRequest, "iconik_bad_credentials", "refused the Application ID and token"},
		{"bad app id", connect.Params{BaseURL: good.BaseURL, AppID: "no-such-app", Token: good.Token}, http.StatusBadRequest, "iconik_bad_credentials", "refused"},
		{"unreachable base URL", connect.Params{BaseURL: closedURL(t), AppID: good.AppID, Token: good.Token}, http.StatusBadGateway, "iconik_unreachable", "could not reach iconik"},
		{"base URL not http", connect.Params{BaseURL: "ftp://iconik.example", AppID: good.AppID, Token: good.Token}, http.StatusBadRequest, "invalid_base_url", "http(s)"},
		{"no app id", connect.Params{BaseURL: good.BaseURL, Token: good.Token}, http.StatusBadRequest, "invalid_app_id", "Application ID"},
		{"no token", connect.Params{BaseURL: good.BaseURL, AppID: good.AppID}, http.StatusBadRequest, "invalid_token", "token"},
		{"token with a line break", connect.Params{BaseURL: good.BaseURL, AppID: good.AppID, Token: secret.New("abc\r\nX-Evil: 1")}, http.StatusBadRequest, "invalid_token", "one line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.Verify(context.Background(), c.p)
			e := wantRefusal(t, err, c.status, c.code)
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("message %q does not say %q", e.Message, c.says)
			}
			noSecrets(t, "the refusal", e.Error(), good.Token.Reveal(), c.p.Token.Reveal())
		})
	}
	noSecrets(t, "the log", f.logs.String(), good.Token.Reveal())
}

func TestVerifyExplainsEveryUnselectableStorage(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{Seed: oddSeed()}))
	rep, err := f.svc.Verify(context.Background(), f.params("admin"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // name -> words the reason must hold ("" = selectable)
		"s3": "", "gcs": "", "azure": "", "b2": "",
		"proxies":         "purpose is PROXIES",
		"archive":         "purpose is ARCHIVE",
		"nas":             "method FILE",
		"offline":         "INACTIVE",
		"readonly-bucket": "write/delete",
	}
	seen := 0
	for _, s := range rep.Storages {
		words, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected storage %s", s.Name)
			continue
		}
		seen++
		if words == "" {
			if !s.Selectable || s.Reason != "" {
				t.Errorf("%s: selectable %v, reason %q", s.Name, s.Selectable, s.Reason)
			}
			continue
		}
		if s.Selectable || !strings.Contains(s.Reason, words) {
			t.Errorf("%s: selectable %v, reason %q, want one saying %q", s.Name, s.Selectable, s.Reason, words)
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d of %d storages", seen, len(want))
	}
}

func TestCreateRefusesWhatCannotDeliverAndSavesNothing(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{Seed: oddSeed()})
	f := newFixture(t, emu)
	s3 := f.storageID(t, "s3")
	admin := f.params("admin")
	cases := []struct {
		name   string
		in     connect.Input
		status int
		code   string
		says   string
	}{
		{"power user lacks a role", connect.Input{Name: "x", Params: f.params("power"), StorageID: s3},
			422, "iconik_roles_missing", "can_write_metadata_values"},
		{"read-only user", connect.Input{Name: "x", Params: f.params("readonly"), StorageID: s3},
			422, "iconik_user_not_qualified", "POWER user or an admin"},
		{"bad token", connect.Input{Name: "x", Params: connect.Params{BaseURL: emu.URL, AppID: admin.AppID, Token: secret.New("wrong")}, StorageID: s3},
			400, "iconik_bad_credentials", "refused"},
		{"unreachable", connect.Input{Name: "x", Params: connect.Params{BaseURL: closedURL(t), AppID: admin.AppID, Token: admin.Token}, StorageID: s3},
			502, "iconik_unreachable", "could not reach"},
		{"proxies storage", connect.Input{Name: "x", Params: admin, StorageID: f.storageID(t, "proxies")},
			422, "storage_not_selectable", "PROXIES"},
		{"inactive storage", connect.Input{Name: "x", Params: admin, StorageID: f.storageID(t, "offline")},
			422, "storage_not_selectable", "INACTIVE"},
		{"file storage", connect.Input{Name: "x", Params: admin, StorageID: f.storageID(t, "nas")},
			422, "storage_not_selectable", "FILE"},
		{"storage without write", connect.Input{Name: "x", Params: admin, StorageID: f.storageID(t, "readonly-bucket")},
			422, "storage_not_selectable", "write"},
		{"unknown storage", connect.Input{Name: "x", Params: admin, StorageID: "00000000-0000-0000-0000-000000000000"},
			422, "storage_not_found", "no storage"},
		{"no storage", connect.Input{Name: "x", Params: admin}, 400, "invalid_storage_id", "storage"},
		{"no name", connect.Input{Name: "  ", Params: admin, StorageID: s3}, 400, "invalid_name", "name"},
		{"root with slash", connect.Input{Name: "x", Params: admin, StorageID: s3, PortalRoot: "a/b"}, 400, "invalid_portal_root", "/"},
		{"bad webhook", connect.Input{Name: "x", Params: admin, StorageID: s3, SlackWebhookURL: secret.New("hooks.slack.com/secret-path")},
			400, "invalid_slack_webhook_url", "https://"},
		{"pinned view missing", connect.Input{Name: "x", Params: admin, StorageID: s3, MetadataViewID: "00000000-0000-0000-0000-000000000000"},
			422, "metadata_view_not_found", "no metadata view"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.Create(context.Background(), c.in)
			e := wantRefusal(t, err, c.status, c.code)
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("message %q does not say %q", e.Message, c.says)
			}
			noSecrets(t, "the refusal", e.Error(), admin.Token.Reveal(), c.in.Token.Reveal(), "secret-path")
		})
	}
	list, err := f.svc.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("after refusals: %d connections, %v", len(list), err)
	}
	noSecrets(t, "the log", f.logs.String(), admin.Token.Reveal(), "secret-path")
}

func TestCreateSealsSecretsAndSetsUpTheDescriptionView(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	f := newFixture(t, emu)
	ctx := context.Background()
	admin := f.params("admin")
	const hook = "https://hooks.slack.com/services/T000/B000/very-secret-hook"
	c, err := f.svc.Create(ctx, connect.Input{Name: " Tenant ", Params: admin, StorageID: f.storageID(t, "gcs"),
		SlackWebhookURL: secret.New(hook)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Tenant" || c.BaseURL != emu.URL || c.Storage.Name != "gcs" || c.Storage.Method != "GCS" ||
		c.PortalRoot != connect.DefaultPortalRoot || c.SendRoot != connect.DefaultSendRoot || !c.HasSlackWebhook ||
		c.State != "ok" || c.VerifiedAt == nil || c.IconikUserEmail != "admin@iconik.test" || c.MetadataField != "description" {
		t.Fatalf("created %+v", c)
	}

	// The field and a "ferry" view holding it now exist in iconik.
	ic := f.adminClient(t)
	if _, err := ic.MetadataFieldGet(ctx, "description"); err != nil {
		t.Fatalf("description field: %v", err)
	}
	v, err := ic.MetadataViewGet(ctx, c.MetadataViewID, iconik.MetadataViewGetParams{})
	if err != nil || v.Name != "ferry" || !v.HasField("description") {
		t.Fatalf("view %+v, %v", v, err)
	}

	// Secrets are sealed at rest: the row holds neither the token nor the hook.
	var tok, slack string
	if err := f.store.SQLDB().QueryRowContext(ctx, "SELECT token_sealed, slack_webhook_sealed FROM connections WHERE id = $1", c.ID).Scan(&tok, &slack); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "v1:") || !strings.HasPrefix(slack, "v1:") {
		t.Fatalf("stored %q / %q, want sealed values", tok, slack)
	}
	noSecrets(t, "the database row", tok+slack, admin.Token.Reveal(), hook, "very-secret-hook")
	if got, err := f.svc.SlackWebhook(ctx, c.ID); err != nil || got.Reveal() != hook {
		t.Fatalf("SlackWebhook = %v", err)
	}

	// The client delivery gets works as the connection's user.
	cl, conn, err := f.svc.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := cl.UserCurrent(ctx)
	if err != nil || u.Email != "admin@iconik.test" || conn.ID != c.ID {
		t.Fatalf("client user %+v, %v", u, err)
	}

	// A second connection reuses the view; a taken name is refused whatever its case.
	c2, err := f.svc.Create(ctx, connect.Input{Name: "Other", Params: admin, StorageID: f.storageID(t, "s3"), PortalRoot: "Inbox", SendRoot: "Sends"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.MetadataViewID != c.MetadataViewID || c2.PortalRoot != "Inbox" || c2.SendRoot != "Sends" || c2.HasSlackWebhook {
		t.Fatalf("second connection %+v", c2)
	}
	views, _ := ic.MetadataViewList(ctx)
	if len(views) != 1 {
		t.Fatalf("%d views after two connections, want 1", len(views))
	}
	_, err = f.svc.Create(ctx, connect.Input{Name: "tenant", Params: admin, StorageID: f.storageID(t, "s3")})
	wantRefusal(t, err, http.StatusConflict, "name_taken")

	noSecrets(t, "the log", f.logs.String(), admin.Token.Reveal(), hook)
}

func TestCreateUsesAnExistingViewWithTheField(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	ctx := context.Background()
	ic := f.adminClient(t)
	if _, err := ic.MetadataFieldCreate(ctx, iconik.MetadataFieldCreateParams{Name: "description", Label: "Description", FieldType: "text"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.MetadataViewCreate(ctx, iconik.MetadataViewCreateParams{Name: "Other", ViewFields: []iconik.MetadataViewField{}}); err != nil {
		t.Fatal(err)
	}
	editorial, err := ic.MetadataViewCreate(ctx, iconik.MetadataViewCreateParams{Name: "Editorial",
		ViewFields: []iconik.MetadataViewField{{Name: "description", Label: "Description"}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: f.params("admin"), StorageID: f.storageID(t, "b2")})
	if err != nil {
		t.Fatal(err)
	}
	if c.MetadataViewID != editorial.ID {
		t.Fatalf("view %s, want the existing Editorial view %s", c.MetadataViewID, editorial.ID)
	}
	// A pinned view without the field gets it added.
	other := ""
	views, _ := ic.MetadataViewList(ctx)
	for _, v := range views {
		if v.Name == "Other" {
			other = v.ID
		}
	}
	c2, err := f.svc.Create(ctx, connect.Input{Name: "T2", Params: f.params("admin"), StorageID: f.storageID(t, "b2"), MetadataViewID: other})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ic.MetadataViewGet(ctx, other, iconik.MetadataViewGetParams{})
	if c2.MetadataViewID != other || err != nil || !v.HasField("description") {
		t.Fatalf("pinned view %s (%+v, %v)", c2.MetadataViewID, v, err)
	}
}

func TestATokenThatStopsWorkingIsMarkedBrokenNotRetried(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	ctx := context.Background()
	admin := f.params("admin")
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: admin, StorageID: f.storageID(t, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	// Revoke: the stored token becomes one iconik does not know.
	row, err := f.store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := f.sealer.Seal(secret.New("revoked-token"), "connection/"+c.ID+"/token")
	row.TokenSealed = revoked
	if _, err := f.store.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: row.ID, Name: row.Name, BaseURL: row.BaseURL,
		AppID: row.AppID, TokenSealed: row.TokenSealed, StorageID: row.StorageID, StorageName: row.StorageName,
		StorageMethod: row.StorageMethod, PortalRoot: row.PortalRoot, SendRoot: row.SendRoot, MetadataViewID: row.MetadataViewID,
		MetadataField: row.MetadataField, State: row.State, VerifiedAt: row.VerifiedAt}); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.svc.Reverify(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Broken() || !strings.Contains(got.StateReason, "refused") {
		t.Fatalf("after re-verify: %+v", got)
	}
	_, _, err = f.svc.Client(ctx, c.ID)
	if !errors.Is(err, connect.ErrBroken) {
		t.Fatalf("Client of a broken connection: %v", err)
	}
	wantRefusal(t, err, http.StatusConflict, "connection_broken")

	// An update with a working token repairs it.
	tok := admin.Token
	fixed, err := f.svc.Update(ctx, c.ID, connect.Update{Token: &tok})
	if err != nil {
		t.Fatal(err)
	}
	if fixed.Broken() || fixed.StateReason != "" {
		t.Fatalf("after update: %+v", fixed)
	}
	if _, _, err := f.svc.Client(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	// Re-verifying a healthy connection keeps it ok.
	again, rep, err := f.svc.Reverify(ctx, c.ID)
	if err != nil || again.Broken() || rep == nil || !rep.OK() {
		t.Fatalf("re-verify healthy: %+v %+v %v", again, rep, err)
	}
	noSecrets(t, "the log", f.logs.String(), admin.Token.Reveal(), "revoked-token")
}

func TestReverifyOfAnUnreachableIconikChangesNothing(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	f := newFixture(t, emu)
	ctx := context.Background()
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: f.params("admin"), StorageID: f.storageID(t, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	row, _ := f.store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: c.ID})
	if _, err := f.store.ConnectionUpdate(ctx, &db.ConnectionUpdateParams{ID: row.ID, Name: row.Name, BaseURL: closedURL(t),
		AppID: row.AppID, TokenSealed: row.TokenSealed, StorageID: row.StorageID, PortalRoot: row.PortalRoot, SendRoot: row.SendRoot,
		MetadataViewID: row.MetadataViewID, State: row.State}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Reverify(ctx, c.ID)
	wantRefusal(t, err, http.StatusBadGateway, "iconik_unreachable")
	got, _ := f.svc.Get(ctx, c.ID)
	if got.Broken() {
		t.Fatalf("an unreachable iconik marked the connection broken: %+v", got)
	}
}

func TestUpdateRechecksOnlyWhatNeedsIt(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{Seed: oddSeed()}))
	ctx := context.Background()
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: f.params("admin"), StorageID: f.storageID(t, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	name, root, hook := "Renamed", "Deliveries", secret.New("https://hooks.slack.com/services/x")
	up, err := f.svc.Update(ctx, c.ID, connect.Update{Name: &name, PortalRoot: &root, SlackWebhookURL: &hook})
	if err != nil || up.Name != "Renamed" || up.PortalRoot != "Deliveries" || !up.HasSlackWebhook || up.SendRoot != "MASV" {
		t.Fatalf("update %+v, %v", up, err)
	}
	proxies := f.storageID(t, "proxies")
	_, err = f.svc.Update(ctx, c.ID, connect.Update{StorageID: &proxies})
	wantRefusal(t, err, http.StatusUnprocessableEntity, "storage_not_selectable")
	power := f.params("power")
	_, err = f.svc.Update(ctx, c.ID, connect.Update{AppID: &power.AppID, Token: &power.Token})
	wantRefusal(t, err, http.StatusUnprocessableEntity, "iconik_roles_missing")
	gcs := f.storageID(t, "gcs")
	up, err = f.svc.Update(ctx, c.ID, connect.Update{StorageID: &gcs, SlackWebhookURL: &secret.Value{}})
	if err != nil || up.Storage.Name != "gcs" || up.Storage.Method != "GCS" || up.HasSlackWebhook {
		t.Fatalf("update storage %+v, %v", up, err)
	}
	if _, err := f.svc.Update(ctx, "missing", connect.Update{Name: &name}); !errors.Is(err, connect.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func TestDeleteRefusesAConnectionPortalsDeliverTo(t *testing.T) {
	f := newFixture(t, emulatortest.Start(t, emulator.Options{}))
	ctx := context.Background()
	c, err := f.svc.Create(ctx, connect.Input{Name: "T", Params: f.params("admin"), StorageID: f.storageID(t, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Exist(ctx, []string{c.ID}); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, f.svc.Exist(ctx, []string{c.ID, "nope"}), http.StatusUnprocessableEntity, "unknown_connection")
	p, err := f.store.PortalCreate(ctx, &db.PortalCreateParams{Name: "Dailies", Slug: "dailies", ConnectionIDs: []string{c.ID}})
	if err != nil {
		t.Fatal(err)
	}
	e := wantRefusal(t, f.svc.Delete(ctx, c.ID), http.StatusConflict, "connection_in_use")
	if !strings.Contains(e.Message, "Dailies") {
		t.Errorf("message %q does not name the portal", e.Message)
	}
	if _, err := f.store.PortalUpdate(ctx, &db.PortalUpdateParams{ID: p.ID, Name: p.Name, Slug: p.Slug}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, c.ID); !errors.Is(err, connect.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := f.svc.Delete(ctx, c.ID); !errors.Is(err, connect.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestBrokenReasonRecognisesRefusals(t *testing.T) {
	cases := []struct {
		status int
		broken bool
	}{{401, true}, {403, true}, {404, false}, {500, false}, {429, false}}
	for _, c := range cases {
		_, got := connect.BrokenReason(&iconik.Error{Status: c.status, Method: "GET", Path: "/API/x/"})
		if got != c.broken {
			t.Errorf("status %d: broken = %v, want %v", c.status, got, c.broken)
		}
	}
	if _, got := connect.BrokenReason(errors.New("connection refused")); got {
		t.Error("a network error counted as broken")
	}
}
