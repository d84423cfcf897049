package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/server"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd() *cobra.Command {
	cfg, envErr := config.Load(os.LookupEnv)
	var demo bool
	var dlv delivery.Options
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
			opt := server.Options{Logger: log, Delivery: func(o *delivery.Options) {
				o.Workers, o.PerDelivery, o.IndexGrace = dlv.Workers, dlv.PerDelivery, dlv.IndexGrace
			}}
			if demo {
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
	cmd.Flags().BoolVar(&demo, "demo", false, "run the whole loop on this machine: an iconik emulator in-process, a seeded admin, a connection to its S3 storage and a portal /p/demo delivering to it (credentials printed and written to <data>/demo.json)")
	cmd.Flags().IntVar(&dlv.Workers, "delivery-workers", 0, "files delivered into iconik at once on this machine (default 8)")
	cmd.Flags().IntVar(&dlv.PerDelivery, "delivery-per-package", 0, "files of one delivery sent at once (default 4)")
	cmd.Flags().DurationVar(&dlv.IndexGrace, "delivery-index-grace", 0, "how long iconik may take to list an object whose creation answer was lost, before ferry creates it again (default 30s)")
	cmd.SetContext(context.Background())
	return cmd
}
