package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/testbed"
)

type connFixture struct {
	*fixture
	emu   *emulatortest.Emulator
	store db.Store
	logs  *testbed.Buffer
	svc   *connect.Service
}

// newConnFixture serves the real web handler with a real connect.Service on
// SQLite against the iconik emulator; every log line (the server's, the
// service's, the iconik client's and slog's default) goes to logs.
func newConnFixture(t *testing.T) *connFixture {
	t.Helper()
	logs := &testbed.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })

	emu := emulatortest.Start(t, emulator.Options{Seed: func() *emulator.Seed {
		s := emulator.DefaultSeed()
		s.Storages = append(s.Storages, emulator.SeedStorage{Name: "offline", Method: "S3", Purpose: "FILES", Status: "INACTIVE"})
		return s
	}()})
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), db.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	sealer, _ := secret.NewSealer(key)
	svc, err := connect.New(connect.Options{Store: store, Sealer: sealer, Logger: log,
		Client: iconik.Options{Transport: ispectest.TransportAllowing(t, nil, http.StatusForbidden), RateLimit: -1, Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: newMemStore(), blobs: &memBlobs{b: map[string][]byte{}}, now: time.Now()}
	_, f.token = f.store.addUser("admin@example.com", "correct horse")
	s, err := New(Options{Store: f.store, Blobs: f.blobs, Logger: log, Connections: svc})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return &connFixture{fixture: f, emu: emu, store: store, logs: logs, svc: svc}
}

func (f *connFixture) api(method, path string, body any) (int, []byte) {
	f.t.Helper()
	resp, b := f.do(method, path, body, "Authorization", "Bearer "+f.token)
	return resp.StatusCode, b
}

func (f *connFixture) creds(name string) map[string]string {
	c := f.emu.Cred(name)
	return map[string]string{"base_url": f.emu.URL, "app_id": c.AppID, "token": c.Token}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func TestConnectionVerifyAnswersEachCaseOverHTTP(t *testing.T) {
	f := newConnFixture(t)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	with := func(cred string, k, v string) map[string]string {
		m := f.creds(cred)
		m[k] = v
		return m
	}
	cases := []struct {
		name      string
		body      map[string]string
		status    int
		code      string // error code, or "" for a verification
		qualifies bool
		missing   string // a role that must be listed missing
	}{
		{name: "admin", body: f.creds("admin"), status: 200, qualifies: true},
		{name: "power lacking a role", body: f.creds("power"), status: 200, qualifies: true, missing: "can_write_metadata_values"},
		{name: "read-only", body: f.creds("readonly"), status: 200, qualifies: false, missing: "can_create_assets"},
		{name: "bad token", body: with("admin", "token", "not-a-valid-token"), status: 400, code: "iconik_bad_credentials"},
		{name: "unreachable base URL", body: with("admin", "base_url", closed), status: 502, code: "iconik_unreachable"},
		{name: "missing token", body: with("admin", "token", ""), status: 400, code: "invalid_token"},
	}
	tokens := []string{f.emu.Cred("admin").Token, f.emu.Cred("power").Token, f.emu.Cred("readonly").Token, "not-a-valid-token"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.api("POST", "/api/v1/connections/verify", c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			noSecretIn(t, "response", string(body), tokens...)
			if c.code != "" {
				if got := errorCode(t, body); got != c.code {
					t.Fatalf("code %s, want %s: %s", got, c.code, body)
				}
				return
			}
			v := decode[verificationResponse](t, body).Verification
			if v.Qualifies != c.qualifies || v.User.Email == "" || !v.User.Active || v.User.Type == "" || v.User.Name == "" {
				t.Errorf("verification %+v", v)
			}
			if c.missing == "" && len(v.MissingRoles) != 0 || c.missing != "" && !strings.Contains(strings.Join(v.MissingRoles, ","), c.missing) {
				t.Errorf("missing roles %q, want %q", v.MissingRoles, c.missing)
			}
			if v.OK != (c.qualifies && c.missing == "") {
				t.Errorf("ok = %v", v.OK)
			}
			reasons := map[string]string{}
			for _, s := range v.Storages {
				reasons[s.Name] = s.Reason
				if s.Selectable != (s.Reason == "") {
					t.Errorf("storage %+v", s)
				}
			}
			if len(v.Storages) != 6 || reasons["s3"] != "" || !strings.Contains(reasons["proxies"], "PROXIES") || !strings.Contains(reasons["offline"], "INACTIVE") {
				t.Errorf("storages %+v", v.Storages)
			}
		})
	}
	noSecretIn(t, "the logs", f.logs.String(), tokens...)
}

func TestConnectionCRUDOverHTTPNeverShowsTheToken(t *testing.T) {
	f := newConnFixture(t)
	admin := f.creds("admin")
	tok := admin["token"]
	const hook = "https://hooks.slack.com/services/T1/B1/hook-secret-part"

	// The storage picker gives the ids.
	_, body := f.api("POST", "/api/v1/connections/verify", admin)
	ids := map[string]string{}
	for _, s := range decode[verificationResponse](t, body).Verification.Storages {
		ids[s.Name] = s.ID
	}

	create := func(cred, storage string) map[string]string {
		m := f.creds(cred)
		m["name"], m["storage_id"], m["slack_webhook_url"] = "Tenant", ids[storage], hook
		return m
	}
	refusals := []struct {
		name, cred, storage string
		status              int
		code                string
	}{
		{"power user lacks can_write_metadata_values", "power", "s3", 422, "iconik_roles_missing"},
		{"read-only user does not qualify", "readonly", "s3", 422, "iconik_user_not_qualified"},
		{"proxies storage is not selectable", "admin", "proxies", 422, "storage_not_selectable"},
		{"inactive storage is not selectable", "admin", "offline", 422, "storage_not_selectable"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			status, body := f.api("POST", "/api/v1/connections", create(r.cred, r.storage))
			if status != r.status || errorCode(t, body) != r.code {
				t.Fatalf("%d %s", status, body)
			}
		})
	}

	status, body := f.api("POST", "/api/v1/connections", create("admin", "azure"))
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	c := decode[connectionResponse](t, body).Connection
	if c.ID == "" || c.Name != "Tenant" || c.Storage.Name != "azure" || c.Storage.Method != "AZURE" || c.State != "ok" ||
		c.PortalRoot != "Portal Downloads" || c.SendRoot != "MASV" || c.MetadataViewID == "" || !c.HasSlackWebhook || c.VerifiedAt == nil {
		t.Fatalf("created %+v", c)
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	for _, k := range []string{"token", "slack_webhook_url"} {
		if _, ok := raw["connection"].(map[string]any)[k]; ok {
			t.Errorf("the response has a %q field", k)
		}
	}

	steps := []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/api/v1/connections", nil, 200},
		{"GET", "/api/v1/connections/" + c.ID, nil, 200},
		{"PATCH", "/api/v1/connections/" + c.ID, map[string]any{"name": "Renamed", "send_root": "Sends", "token": tok}, 200},
		{"POST", "/api/v1/connections/" + c.ID + "/verify", nil, 200},
		{"PATCH", "/api/v1/connections/" + c.ID, map[string]any{"storage_id": ids["proxies"]}, 422},
		{"POST", "/api/v1/connections", renamed(create("admin", "s3"), "renamed"), 409}, // names are unique whatever their case
	}
	for _, s := range steps {
		status, body := f.api(s.method, s.path, s.body)
		if status != s.status {
			t.Fatalf("%s %s: %d %s", s.method, s.path, status, body)
		}
		noSecretIn(t, s.method+" "+s.path, string(body), tok, hook, "hook-secret-part")
	}
	_, body = f.api("GET", "/api/v1/connections/"+c.ID, nil)
	got := decode[connectionResponse](t, body).Connection
	if got.Name != "Renamed" || got.SendRoot != "Sends" || got.Storage.Name != "azure" {
		t.Fatalf("after patch %+v", got)
	}
	_, body = f.api("GET", "/api/v1/connections", nil)
	if list := decode[connectionsResponse](t, body).Connections; len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("list %+v", list)
	}

	// Sealed at rest.
	var sealedTok, sealedHook string
	if err := f.store.SQLDB().QueryRow("SELECT token_sealed, slack_webhook_sealed FROM connections WHERE id = $1", c.ID).Scan(&sealedTok, &sealedHook); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealedTok, "v1:") || !strings.HasPrefix(sealedHook, "v1:") {
		t.Fatalf("stored %q %q", sealedTok, sealedHook)
	}
	noSecretIn(t, "the database row", sealedTok+sealedHook, tok, hook, "hook-secret-part")

	status, body = f.api("DELETE", "/api/v1/connections/"+c.ID, nil)
	if status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body = f.api("GET", "/api/v1/connections/"+c.ID, nil)
	if status != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("get after delete: %d %s", status, body)
	}
	noSecretIn(t, "the logs", f.logs.String(), tok, hook, "hook-secret-part")
}

func TestConnectionRoutesWithoutCloudConnectAnswer503(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do("GET", "/api/v1/connections", nil, "Authorization", "Bearer "+f.token)
	if resp.StatusCode != 503 || errorCode(t, body) != "connections_unavailable" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func renamed(m map[string]string, name string) map[string]string {
	m["name"] = name
	return m
}

func noSecretIn(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("a secret appears in %s", where)
		}
	}
}
