package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/ispec"
)

func init() { commands = append(commands, newEmulatorCmd) }

func newEmulatorCmd() *cobra.Command {
	var (
		addr, dataDir, seedPath, baseURL string
		checkSpecPath                    string
		faults                           emulator.Faults
	)
	cmd := &cobra.Command{
		Use:   "iconik-emulator",
		Short: "Run an iconik-compatible server (API, storages, keyframes, browse page) for tests and demos",
		Long: `Run an iconik emulator: the REST API ferry uses, emulated S3/GCS/Azure/B2 storages
under /_storage/, real keyframes, and a browse page at /. State lives in --data and
survives restarts. Credentials are printed at start and written to <data>/credentials.json.
Faults are off unless a flag turns them on. Seed format: internal/iconik/emulator/testdata/seed.example.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if faults.FailRate < 0 || faults.FailRate > 1 || faults.ProviderFailRate < 0 || faults.ProviderFailRate > 1 {
				return usagef("--fail-rate and --provider-fail-rate must be between 0 and 1")
			}
			if faults.RateLimit < 0 || faults.Latency < 0 || faults.IndexLag < 0 || faults.URLTTL < 0 {
				return usagef("--rate-limit, --latency, --index-lag and --url-ttl must not be negative")
			}
			if faults.MissingRoleStatus != 0 && (faults.MissingRoleStatus < 400 || faults.MissingRoleStatus > 599) {
				return usagef("--missing-role-status must be a 4xx or 5xx status")
			}
			var seed *emulator.Seed
			if seedPath != "" {
				s, err := emulator.LoadSeed(seedPath)
				if err != nil {
					return usagef("%v", err)
				}
				seed = s
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", addr, err)
			}
			if baseURL == "" {
				baseURL = "http://" + publicAddr(ln.Addr().(*net.TCPAddr))
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			opts := emulator.Options{DataDir: dataDir, BaseURL: baseURL, Seed: seed, Faults: faults, Logger: logger}
			if checkSpecPath != "" {
				mismatches, err := os.OpenFile(checkSpecPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					ln.Close()
					return fmt.Errorf("opening the --check-spec file: %w", err)
				}
				defer mismatches.Close()
				opts.CheckSpec = mismatchLog(mismatches, logger)
			}
			srv, err := emulator.New(opts)
			if err != nil {
				ln.Close()
				return err
			}
			defer srv.Close()
			printCredentials(cmd, srv, baseURL, dataDir)

			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("serving the iconik emulator: %w", err)
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("stopping the iconik emulator: %w", err)
			}
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8580", "address to listen on")
	f.StringVar(&dataDir, "data", "iconik-emulator-data", "data directory (state, storage bytes, keyframes, credentials.json)")
	f.StringVar(&seedPath, "seed", "", "YAML seed file declaring users, tokens and storages (default: admin, power, readonly tokens; s3, gcs, azure, b2, proxies storages)")
	f.StringVar(&baseURL, "base-url", "", "public base URL used in next_url and signed URLs (default http://<addr>)")
	f.DurationVar(&faults.Latency, "latency", 0, "fault: delay added to every API call")
	f.Float64Var(&faults.RateLimit, "rate-limit", 0, "fault: requests per second allowed per App-ID (429 + Retry-After above it); 0 = off")
	f.Float64Var(&faults.FailRate, "fail-rate", 0, "fault: share (0..1) of API calls answered 500")
	f.Float64Var(&faults.ProviderFailRate, "provider-fail-rate", 0, "fault: share (0..1) of storage (data plane) calls answered 503")
	f.DurationVar(&faults.IndexLag, "index-lag", 0, "fault: new objects appear in collection contents and search only after this")
	f.DurationVar(&faults.URLTTL, "url-ttl", 0, "lifetime of signed upload URLs (default 1h)")
	f.IntVar(&faults.MissingRoleStatus, "missing-role-status", 403, "status answered when a token lacks a required role")
	f.StringVar(&checkSpecPath, "check-spec", "", "check every /API/ request and answer against iconik's specs ($"+ispec.EnvSpecDir+
		" or ../shared/iconik/spec beside the source tree) and append each mismatch as a line to this file (for tests)")
	return cmd
}

// mismatchLog appends one line per spec mismatch to w. A test reading the
// file after the run fails when it is not empty. Mismatch messages carry
// locations and reasons only, never values (ispec), so no token lands here.
func mismatchLog(w io.Writer, logger *slog.Logger) func(error) {
	var mu sync.Mutex
	return func(mismatch error) {
		line := strings.ReplaceAll(mismatch.Error(), "\n", " ") + "\n"
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(w, line); err != nil {
			logger.Error("recording an iconik spec mismatch", "err", err)
		}
	}
}

// publicAddr turns a wildcard listen address into one a client can dial.
func publicAddr(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(a.Port))
	}
	return a.String()
}

// printCredentials shows where the emulator runs and the tokens of its
// tenant: they are the emulator's own test credentials, printed on purpose.
func printCredentials(cmd *cobra.Command, srv *emulator.Server, baseURL, dataDir string) {
	out := cmd.OutOrStdout()
	abs, _ := filepath.Abs(dataDir)
	fmt.Fprintf(out, "iconik emulator at %s (browse page %s/, data %s)\n", baseURL, baseURL, abs)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPP-ID\tAUTH-TOKEN\tUSER\tTYPE\tROLES")
	for _, c := range srv.Credentials() {
		roles := fmt.Sprintf("%d roles", len(c.Roles))
		if c.IsAdmin {
			roles = "admin (all roles)"
		} else if len(c.Roles) <= 3 {
			roles = strings.Join(c.Roles, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.AppID, c.Token, c.Email, c.Type, roles)
	}
	tw.Flush()
	fmt.Fprintf(out, "credentials written to %s\n", filepath.Join(abs, "credentials.json"))
}
