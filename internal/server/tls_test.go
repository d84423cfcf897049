package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/testbed"
)

func TestServeSpeaksHTTP2OverTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default("")
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Addr = "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey, _ = testbed.SelfSignedCert(t, dir)
	app, err := Open(t.Context(), cfg, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ctx, stop := context.WithCancel(t.Context())
	addr := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, func(a string) { addr <- a }) }()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the test's own self-signed certificate
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get("https://" + <-addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("got %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
