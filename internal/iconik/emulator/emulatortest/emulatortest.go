// Package emulatortest starts an iconik emulator on 127.0.0.1 for a test and
// stops it when the test ends. It must never be imported by non-test code.
package emulatortest

import (
	"net/http/httptest"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
)

// Emulator is a running emulator; URL is its base URL (http://127.0.0.1:PORT).
type Emulator struct {
	*emulator.Server
	URL string
	t   testing.TB
}

// Start runs an emulator behind an httptest server with BaseURL set; DataDir
// defaults to t.TempDir(). Both are closed when the test ends.
func Start(t testing.TB, opts emulator.Options) *Emulator {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s, err := emulator.New(opts)
	if err != nil {
		t.Fatalf("starting iconik emulator: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	s.SetBaseURL(srv.URL)
	t.Cleanup(func() {
		srv.Close()
		if err := s.Close(); err != nil {
			t.Errorf("closing iconik emulator: %v", err)
		}
	})
	return &Emulator{Server: s, URL: srv.URL, t: t}
}

// Cred returns the credential named name ("admin", "power", "readonly" in the
// default seed); a missing name fails the test.
func (e *Emulator) Cred(name string) emulator.Credential {
	for _, c := range e.Credentials() {
		if c.Name == name {
			return c
		}
	}
	e.t.Helper()
	e.t.Fatalf("emulatortest: no credential named %q", name)
	return emulator.Credential{}
}
