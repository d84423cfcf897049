package main

import (
	"encoding/pem"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
)

// TestHealthcheckAsksTheRunningServer runs `ferry healthcheck` (the image's
// HEALTHCHECK, which has no curl) against the real server wiring: exit 0
// when the server answers 200, 1 when it is not ready or not there.
func TestHealthcheckAsksTheRunningServer(t *testing.T) {
	cfg := config.Default("")
	cfg.DataDir = t.TempDir()
	// No disk has this much free: /readyz answers 503, /healthz still 200.
	cfg.DiskReserve = 1 << 60
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	cases := []struct {
		name     string
		env      string // FERRY_ADDR
		args     []string
		wantCode int
		wantErr  string
	}{
		{"alive", "", []string{"--addr", addr}, 0, ""},
		{"the address from the environment, as in the image", addr, nil, 0, ""},
		{"a server listening on every interface is asked on loopback", "0.0.0.0:" + port, nil, 0, ""},
		{"alive but not ready", "", []string{"--addr", addr, "--ready"}, 1, "answered 503"},
		{"nobody listening", "", []string{"--addr", closedAddr}, 1, "connect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("FERRY_ADDR", tc.env)
			}
			code, out, errOut := runCaptured(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want it to contain %q)", code, tc.wantCode, out, errOut, tc.wantErr)
			}
		})
	}
}

// TestHealthcheckSpeaksHTTPSWhenTheServerDoes: with --tls-cert the server
// speaks only HTTPS, so the check does too, trusting exactly that
// certificate (it names the public host, not 127.0.0.1).
func TestHealthcheckSpeaksHTTPSWhenTheServerDoes(t *testing.T) {
	cfg := config.Default("")
	cfg.DataDir = t.TempDir()
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewTLSServer(app.Handler())
	defer srv.Close()
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := srv.Listener.Addr().String()
	if code, _, errOut := runCaptured(t, "healthcheck", "--addr", addr, "--tls-cert", certFile); code != 0 {
		t.Fatalf("healthcheck over HTTPS: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCaptured(t, "healthcheck", "--addr", addr); code != 1 {
		t.Fatalf("plain HTTP to an HTTPS server: exit %d (want 1): %s", code, errOut)
	}
}
