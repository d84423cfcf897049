package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
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
			if envErr != nil {
				return usageError{envErr}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			log := server.NewLogger(cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
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
			return app.Serve(ctx, nil)
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.SetContext(context.Background())
	return cmd
}
