package connect_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
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

type fixture struct {
	svc    *connect.Service
	store  db.Store
	sealer *secret.Sealer
	emu    *emulatortest.Emulator
	logs   *testbed.Buffer
}

// newFixture runs a Service on a fresh SQLite store against emu, every iconik
// call checked against iconik's specs (403 is the emulator's documented answer
// for a missing role, which the spec does not declare everywhere).
func newFixture(t *testing.T, emu *emulatortest.Emulator) *fixture {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	sealer, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testbed.Buffer{}
	svc, err := connect.New(connect.Options{
		Store: store, Sealer: sealer,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Client: iconik.Options{Transport: ispectest.TransportAllowing(t, nil, http.StatusForbidden), RateLimit: -1,
			Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: store, sealer: sealer, emu: emu, logs: logs}
}

func (f *fixture) params(cred string) connect.Params {
	c := f.emu.Cred(cred)
	return connect.Params{BaseURL: f.emu.URL, AppID: c.AppID, Token: secret.New(c.Token)}
}

// storageID finds a storage of the emulator by name (through the admin token).
func (f *fixture) storageID(t *testing.T, name string) string {
	t.Helper()
	rep, err := f.svc.Verify(context.Background(), f.params("admin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Storages {
		if s.Name == name {
			return s.ID
		}
	}
	t.Fatalf("no storage %q", name)
	return ""
}

// adminClient is a direct iconik client of the emulator, to arrange state.
func (f *fixture) adminClient(t *testing.T) *iconik.Client {
	t.Helper()
	c := f.emu.Cred("admin")
	cl, err := iconik.New(iconik.Options{BaseURL: f.emu.URL, AppID: c.AppID, Token: c.Token, RateLimit: -1,
		Transport: ispectest.Transport(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// noSecrets fails if any of the secrets appears in s.
func noSecrets(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("a secret appears in %s: %s", where, s)
		}
	}
}

// closedURL is a base URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func wantRefusal(t *testing.T, err error, status int, code string) *connect.Error {
	t.Helper()
	e := connect.AsError(err)
	if e == nil {
		t.Fatalf("error = %v, want refusal %d %s", err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("refusal = %d %s (%s), want %d %s", e.Status, e.Code, e.Message, status, code)
	}
	return e
}

func boolp(b bool) *bool { return &b }

// oddSeed is the default seed plus storages the picker must refuse, one
// reason each.
func oddSeed() *emulator.Seed {
	s := emulator.DefaultSeed()
	s.Storages = append(s.Storages,
		emulator.SeedStorage{Name: "archive", Method: "S3", Purpose: "ARCHIVE"},
		emulator.SeedStorage{Name: "nas", Method: "FILE", Purpose: "FILES", Settings: map[string]any{"mount_point": "/mnt/nas"}},
		emulator.SeedStorage{Name: "offline", Method: "GCS", Purpose: "FILES", Status: "INACTIVE"},
		emulator.SeedStorage{Name: "readonly-bucket", Method: "AZURE", Purpose: "FILES", Write: boolp(false), Delete: boolp(false)},
	)
	return s
}
