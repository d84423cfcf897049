package emulatortest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
)

// Emulator is a running emulator; URL is its base URL (http://127.0.0.1:PORT).
type Emulator struct {
	*emulator.Server
	URL string
	t   testing.TB
}

// Option changes how Start runs the emulator.
type Option func(*config)

type config struct {
	wrap func(http.Handler) http.Handler
}

// Wrap puts wrap in front of the spec-checked emulator, e.g. to inject faults
// of a test's own making; what wrap answers itself is not checked, what it
// passes on is.
func Wrap(wrap func(http.Handler) http.Handler) Option {
	return func(c *config) { c.wrap = wrap }
}

// Start runs an emulator behind an httptest server with BaseURL set; DataDir
// defaults to t.TempDir(). Both are closed when the test ends. Every /API/
// request and answer is checked against iconik's specs (emulator.Options
// CheckSpec) and a mismatch fails t (except in benchmarks). Requests a test sends off-spec on
// purpose carry emulator.HeaderUncheckedRequest; a test of the check itself
// sets opts.CheckSpec, which then receives the mismatches instead of t.
func Start(t testing.TB, opts emulator.Options, options ...Option) *Emulator {
	t.Helper()
	var cfg config
	for _, o := range options {
		o(&cfg)
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	// Benchmarks measure speed: there the check (kin-openapi per call) would
	// be timed as the emulator's; the tests run the same traffic checked.
	if _, bench := t.(*testing.B); opts.CheckSpec == nil && !bench {
		opts.CheckSpec = reporter(t)
	}
	s, err := emulator.New(opts)
	if err != nil {
		t.Fatalf("starting iconik emulator: %v", err)
	}
	h := s.Handler()
	if cfg.wrap != nil {
		h = cfg.wrap(h)
	}
	srv := httptest.NewServer(h)
	s.SetBaseURL(srv.URL)
	t.Cleanup(func() {
		srv.Close()
		if err := s.Close(); err != nil {
			t.Errorf("closing iconik emulator: %v", err)
		}
	})
	return &Emulator{Server: s, URL: srv.URL, t: t}
}

// Checked wraps an emulator's handler (Server.Handler) with the same spec
// check as Start, for a test that serves an emulator itself (e.g. behind
// faults of its own); missingRoleStatus is Faults.MissingRoleStatus (0 =
// 403). A mismatch fails t.
func Checked(t testing.TB, h http.Handler, missingRoleStatus int) http.Handler {
	t.Helper()
	checked, err := emulator.CheckSpec(h, missingRoleStatus, reporter(t))
	if err != nil {
		t.Fatal(err)
	}
	return checked
}

// reporter fails t for each mismatch. Background work (delivery workers,
// keyframe pollers) may still call after the test ended, when t.Errorf would
// panic: from then on mismatches are dropped.
func reporter(t testing.TB) func(error) {
	var ended atomic.Bool
	t.Cleanup(func() { ended.Store(true) })
	return func(mismatch error) {
		if !ended.Load() {
			t.Errorf("iconik emulator: %v", mismatch)
		}
	}
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
