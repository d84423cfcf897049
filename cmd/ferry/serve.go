package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/server"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd() *cobra.Command {
	cfg, envErr := config.Load(os.LookupEnv)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ferry server (portals, uploads, API, download links)",
		Long: "Run the ferry HTTP server. Every flag can also be set with the FERRY_* variable named in its help;\n" +
			"flags win over the environment. Stops gracefully on SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			serveProcs(os.LookupEnv)
			if envErr != nil {
				return usageError{envErr}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			log := server.NewLogger(cfg)
			// Code that logs through slog's default (web's error answers) writes at the
			// configured level, with request ids, like the rest.
			slog.SetDefault(log)
			ctx, stop := shutdownOnSignal(cmd.Context())
			defer stop()
			opt := server.Options{Logger: log}
			if cfg.Demo {
				return runDemo(ctx, cmd.OutOrStdout(), cfg, log, opt)
			}
			app, err := server.Open(ctx, cfg, opt)
			if err != nil {
				return err
			}
			defer app.Close()
			out := cmd.OutOrStdout()
			return app.Serve(ctx, func(addr string) {
				if hint := noAdminHint(ctx, app.DB, cfg, addr); hint != "" {
					fmt.Fprintln(out, hint)
				}
			})
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.SetContext(context.Background())
	return cmd
}

// noAdminHint tells the operator of a fresh server (no account yet) where
// to create the first admin, instead of sending them to the CLI.
func noAdminHint(ctx context.Context, q db.Queries, cfg config.Config, addr string) string {
	if n, err := q.UserCount(ctx); err != nil || n > 0 {
		return ""
	}
	return "no admin yet: open " + homeURL(cfg, addr) + "/ to create one"
}

// homeURL is where a person opens the server: --public-url, else the bound
// address (an unspecified host shown as localhost).
func homeURL(cfg config.Config, addr string) string {
	if cfg.PublicURL != "" {
		return strings.TrimSuffix(cfg.PublicURL, "/")
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort("localhost", port)
		}
	}
	return scheme + "://" + addr
}

// shutdownOnSignal returns a context ended by the first SIGINT or SIGTERM. The first signal
// starts the graceful shutdown; a second one ends the process at once, for an operator who
// will not wait. The default action is back before the context ends, so by the time the
// server logs that it is shutting down, another signal kills it. (signal.NotifyContext with
// a goroutine calling stop after Done left a window where the second signal was swallowed.)
func shutdownOnSignal(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigc:
			signal.Stop(sigc)
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigc)
			close(done)
			cancel()
		})
	}
}
