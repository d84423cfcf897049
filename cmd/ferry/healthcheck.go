package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
)

func init() { commands = append(commands, newHealthcheckCmd) }

// newHealthcheckCmd asks a running `ferry serve` on this machine whether it
// is alive (or ready): the container image has no curl, so its HEALTHCHECK
// runs the binary itself. It reads the same --addr and --tls-cert (and their
// FERRY_* variables) as serve, so in a container it needs no arguments.
func newHealthcheckCmd() *cobra.Command {
	cfg, envErr := config.Load(os.LookupEnv)
	var ready bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Ask the ferry server on this machine whether it is alive (/healthz) or ready (/readyz); exit 0 if so",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return usageError{envErr}
			}
			path := "/healthz"
			if ready {
				path = "/readyz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return healthcheck(ctx, cfg.Addr, cfg.TLSCert, path)
		},
	}
	cfg.BindFlags(cmd.Flags(), "addr", "tls-cert")
	cmd.Flags().BoolVar(&ready, "ready", false, "ask /readyz (database, migrations, upload store, free space) instead of /healthz (the process answers)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	cmd.SetContext(context.Background())
	return cmd
}

// healthcheck GETs path from the server listening on addr. A server bound
// to every interface (0.0.0.0:8080, :8080) is asked on loopback.
func healthcheck(ctx context.Context, addr, certFile, path string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--addr %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	tr := &http.Transport{Proxy: nil}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
		pinned, err := leafCertificate(certFile)
		if err != nil {
			return err
		}
		// The certificate names the public host, not the loopback address
		// asked here, so name checks cannot pass; instead the server must
		// present exactly the certificate it was configured with.
		tr.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pinned) {
					return errors.New("the server presented a certificate other than --tls-cert")
				}
				return nil
			},
		}
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// leafCertificate reads the first certificate of a PEM file.
func leafCertificate(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("reading --tls-cert: %v", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, usagef("--tls-cert %s holds no PEM certificate", file)
		}
		if blk.Type == "CERTIFICATE" {
			return blk.Bytes, nil
		}
	}
}
