package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/ingest/pglocker"
	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/metrics"
	"github.com/ferryhq/ferry/internal/notify"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/reqid"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/web"
)

// Options are what a caller may add to the Config.
type Options struct {
	Logger *slog.Logger
	// OnComplete runs in the transaction recording a file complete, and
	// OnFinalize in the one finalizing a package: delivery enqueues its jobs
	// there. Nil: nothing more is done.
	OnComplete portal.CompleteHook
	OnFinalize portal.FinalizeHook
	// NoSync skips fsync of finished uploads (tests and benchmarks only).
	NoSync bool
	Now    func() time.Time
	// Iconik is the template of the iconik clients Cloud Connect builds
	// (transport, rate limit, retries); tests point it at the emulator.
	Iconik iconik.Options
	// Delivery tunes the delivery service beyond the Config's delivery
	// settings (retries, clocks; tests); nil = the Config's settings only.
	Delivery func(*delivery.Options)
}

// App is a wired ferry server: database, upload engine and HTTP handler.
type App struct {
	cfg    config.Config
	log    *slog.Logger
	DB     db.Store
	Portal *portal.Service
	Ingest *ingest.Ingest
	Web    *web.Server
	// Connect is Cloud Connect: delivery gets iconik clients from it.
	Connect *connect.Service
	// Delivery delivers packages into iconik.
	Delivery *delivery.Service
	// Notify sends the emails and Slack messages about packages.
	Notify *notify.Service
	// Metrics are this server's Prometheus metrics, served at /metrics.
	Metrics *metrics.Metrics
	now     func() time.Time
	bound   atomic.Pointer[string] // the address Serve listens on, for links
	// locker holds upload locks on PostgreSQL (nil on SQLite).
	locker *pglocker.Locker
}

// Open opens (and migrates) the database under cfg.DataDir, builds the upload
// engine and the HTTP surface, and reconciles uploads that finished while the
// process was down, before anything is served.
func Open(ctx context.Context, cfg config.Config, opt Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving data directory %q: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", dataDir, err)
	}
	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = filepath.Join(dataDir, "ferry.db")
	}
	store, err := db.Open(ctx, dsn, db.Options{Logger: opt.Logger})
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	a := &App{cfg: cfg, log: opt.Logger, DB: store, Portal: portal.New(store, portal.Options{Now: opt.Now, ObjectNames: delivery.CheckAdmission}), now: opt.Now,
		Metrics: metrics.New()}
	go portal.PrepareLogin()
	g := &gate{svc: a.Portal, log: opt.Logger.With("component", "gate"), onComplete: opt.OnComplete, metrics: a.Metrics}
	// Validate has read the list already; an error here cannot happen.
	proxies, _ := config.ParsePrefixes(cfg.TrustedProxies)
	pkgStore, err := openPackageStore(ctx, cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	// Replicas on one PostgreSQL may each receive requests for one upload:
	// its lock must be theirs in common (advisory locks), where one
	// process's in-memory locker is enough on SQLite.
	icfg := ingest.Config{Dir: filepath.Join(dataDir, "uploads"), BasePath: "/uploads/", Logger: opt.Logger,
		NoSync: opt.NoSync, MaxSize: int64(cfg.MaxUploadSize), DiskReserve: int64(cfg.DiskReserve), Store: pkgStore,
		ForwardedHeaders: len(proxies) > 0} // web's middleware removes them from untrusted peers
	if store.Dialect() == db.DialectPostgres {
		if a.locker, err = pglocker.New(ctx, dsn, pglocker.Options{Logger: opt.Logger}); err != nil {
			store.Close()
			return nil, fmt.Errorf("opening the upload locker: %w", err)
		}
		icfg.Locker = a.locker
	}
	a.Ingest, err = ingest.New(icfg, g)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("starting the upload engine: %w", err)
	}
	// The master key (cfg.SecretKey from FERRY_SECRET_KEY, else
	// <data>/secret.key, created 0600 on first start) seals iconik tokens;
	// keys for other purposes are derived from it.
	key, err := secret.LoadKey(cfg.SecretKey, filepath.Join(dataDir, "secret.key"))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("loading the server key: %w", err)
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.observeIngest()
	// Every iconik client Cloud Connect builds counts its calls and rate-limit waits.
	opt.Iconik.Transport = iconikTransport{next: opt.Iconik.Transport, m: a.Metrics}
	opt.Iconik.OnRateLimitWait = a.Metrics.RateLimitWait
	a.Connect, err = connect.New(connect.Options{Store: store, Sealer: sealer, Logger: opt.Logger, Now: opt.Now, Client: iconikTemplate(cfg, opt.Iconik)})
	if err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openNotify(ctx, key); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openDelivery(ctx, opt, g); err != nil {
		a.Close()
		return nil, err
	}
	a.Web, err = web.New(web.Options{
		Store: a.withDeliveries(&webStore{db: store, svc: a.Portal, conns: a.Connect, now: opt.Now, onFinalize: opt.OnFinalize}),
		Blobs: blobs{a.Ingest}, Uploads: a.observeUploads(a.guardTermination(a.Ingest.Handler())), Connections: a.Connect,
		Logger: opt.Logger, SecureCookies: cfg.SecureCookies, SessionTTL: cfg.SessionTTL, Now: opt.Now,
		Secret: derive(key, "web MAC v1"), Notifications: notifyWeb{a.Notify}, Ready: a.ready, PublicURL: cfg.PublicURL,
		Metrics: a.Metrics.Handler(), TrustedProxies: proxies,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	// One upload never stops the start: Reconcile logs and skips what it cannot complete.
	if err := a.Ingest.Reconcile(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("reconciling uploads that finished while ferry was down: %w", err)
	}
	return a, nil
}

// iconikTemplate is the iconik client template of this replica. iconik's
// rate limit belongs to the App-ID, but each process limits only its own
// calls (in memory), so the rate is split by the replica count: N replicas
// at rate/N each stay under the App-ID's limit together. A replica that is
// down leaves its share unused; that is the price of needing nothing from
// the database per call. An explicit rate (tests) is taken as this
// replica's share already.
func iconikTemplate(cfg config.Config, o iconik.Options) iconik.Options {
	if o.RateLimit == 0 && cfg.Replicas > 1 {
		o.RateLimit = iconik.DefaultRateLimit / float64(cfg.Replicas)
	}
	return o
}

// openPackageStore opens the store --store names; nil means ingest's local-disk default. Its
// errors never carry credentials (they come from the AWS chain, never from the URL).
func openPackageStore(ctx context.Context, cfg config.Config) (ingest.Store, error) {
	if cfg.Store == "" {
		return nil, nil
	}
	sc, err := s3store.ParseURL(cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	st, err := s3store.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("opening the package store: %w", err)
	}
	return st, nil
}

// derive makes a key for one purpose from the master key, so one secret is
// all that replicas need to share.
func derive(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("ferry " + purpose))
	return m.Sum(nil)
}

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.Web.Handler() }

// Close releases the upload locker and the database.
func (a *App) Close() error {
	if a.locker != nil {
		a.locker.Close()
	}
	return a.DB.Close()
}

// Sweep deletes unfinished uploads older than the configured age and the
// bytes of packages past their expiry. It returns what it removed.
func (a *App) Sweep(ctx context.Context) (uploads, packages int, err error) {
	// Completions that failed for a passing reason (the database was away) are retried here,
	// not only at the next start.
	if err := a.Ingest.Reconcile(ctx); err != nil {
		return 0, 0, fmt.Errorf("reconciling finished uploads: %w", err)
	}
	uploads, err = a.Ingest.Cleanup(ctx, a.cfg.UnfinishedUploadAge)
	if err != nil {
		return uploads, 0, fmt.Errorf("cleaning unfinished uploads: %w", err)
	}
	if _, err := a.cancelVanishedUploads(ctx, a.cfg.UnfinishedUploadAge); err != nil {
		return uploads, 0, err
	}
	for {
		// ExpireDue marks packages expired before their bytes go: a package
		// marked expired is never served again, and bytes a crash leaves
		// behind are orphans, not lies.
		batch, err := a.Portal.ExpireDue(ctx, 100)
		for _, p := range batch {
			files, ferr := a.DB.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: p.ID})
			if ferr != nil {
				return uploads, packages, fmt.Errorf("listing files of expired package %s: %w", p.ID, ferr)
			}
			for _, f := range files {
				if f.UploadID == "" {
					continue
				}
				if err := a.Ingest.Delete(ctx, f.UploadID); err != nil && !errors.Is(err, ingest.ErrNotFound) {
					a.log.Error("deleting bytes of an expired package", "package", p.ID, "upload", f.UploadID, "err", err)
				}
			}
			packages++
		}
		if err != nil {
			return uploads, packages, fmt.Errorf("expiring packages: %w", err)
		}
		if len(batch) < 100 {
			return uploads, packages, nil
		}
	}
}

// sweepLoop runs Sweep every interval until ctx ends.
func (a *App) sweepLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		u, p, err := a.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("scheduled cleanup failed", "err", err)
		} else if u+p > 0 {
			a.log.Info("scheduled cleanup", "unfinished_uploads", u, "expired_packages", p)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// HTTPServer builds the http.Server: no ReadTimeout or WriteTimeout (a 10 GiB
// upload or zip download takes as long as it takes; tus bounds each body read
// itself), a header timeout against slow-loris, and HTTP/2 flow-control
// windows raised from 1 MiB so long-RTT uploads are not window-bound (HTTP/2
// runs over TLS, --tls-cert/--tls-key).
func (a *App) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              a.cfg.Addr,
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 64 << 20,
			MaxReceiveBufferPerStream:     16 << 20,
		},
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// Serve listens on cfg.Addr and serves until ctx ends, then shuts down gracefully within
// cfg.ShutdownTimeout (the grace period): it stops accepting, lets in-flight requests (an
// upload's PATCH) and running jobs finish for most of the grace, then hands back what is
// still running: a PATCH ends with the bytes that arrived saved (tus offsets are durable, the
// client resumes), and River cancels its jobs, which go back to the queue as retryable. ready,
// if not nil, receives the bound address once listening.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.cfg.Addr, err)
	}
	srv := a.HTTPServer()
	// Requests live on their own context, ended with a cause tusd understands when the grace
	// is over (it then saves what arrived and answers 503), not when the signal comes.
	base, handBack := context.WithCancelCause(context.WithoutCancel(ctx))
	defer handBack(nil)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.RegisterOnShutdown(a.Web.Drain)
	scheme := "http"
	if a.cfg.TLSCert != "" {
		scheme = "https"
	}
	bound := scheme + "://" + ln.Addr().String()
	a.bound.Store(&bound)
	if err := a.startDelivery(ctx); err != nil {
		ln.Close()
		return err
	}
	if err := a.startNotify(ctx); err != nil {
		ln.Close()
		a.stopDelivery()
		return err
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.sweepLoop(sweepCtx, a.cfg.CleanupInterval) })
	defer func() { stopSweep(); wg.Wait() }()

	errc := make(chan error, 1)
	if a.cfg.TLSCert != "" {
		go func() { errc <- srv.ServeTLS(ln, a.cfg.TLSCert, a.cfg.TLSKey) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	a.log.Info("ferry is serving", "addr", scheme+"://"+ln.Addr().String(), "data", a.cfg.DataDir)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		a.stopJobs(time.Now().Add(a.cfg.ShutdownTimeout), a.cfg.ShutdownTimeout)
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	grace := a.cfg.ShutdownTimeout
	deadline := time.Now().Add(grace)
	// The last part of the grace (a fifth, at most 5 s) is for handing back: cancelled
	// requests and jobs need a moment to save their state and return.
	soft := grace - min(grace/5, 5*time.Second)
	a.log.Info("shutting down: no new requests; in-flight uploads and jobs may finish", "grace", grace)
	var jobs sync.WaitGroup
	jobs.Go(func() { a.stopJobs(deadline, soft) })
	sctx, cancel := context.WithTimeout(context.Background(), soft)
	err = srv.Shutdown(sctx)
	cancel()
	if err != nil {
		a.log.Warn("shutting down: grace period over; handing in-flight uploads back (their clients resume)")
		handBack(handler.ErrServerShutdown)
		hctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := srv.Shutdown(hctx); err != nil {
			a.log.Warn("shutting down: closing connections that did not end in time", "err", err)
			srv.Close()
		}
		cancel()
	}
	jobs.Wait()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("shut down")
	return nil
}

// stopJobs stops the delivery and notification workers together: running jobs may finish
// until soft has passed, then are cancelled (River puts them back as retryable) and waited
// for until deadline. What has not started stays in the queue for the next start.
func (a *App) stopJobs(deadline time.Time, soft time.Duration) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	if a.Delivery != nil {
		wg.Go(func() {
			if err := a.Delivery.Stop(ctx, soft); err != nil {
				a.log.Warn("stopping delivery jobs", "err", err)
			}
		})
	}
	if a.Notify != nil {
		wg.Go(func() {
			if err := a.Notify.Stop(ctx, soft); err != nil {
				a.log.Warn("stopping notification jobs", "err", err)
			}
		})
	}
	wg.Wait()
}

// blobs adapts ingest's Blob to web's (same methods, distinct types).
type blobs struct{ i *ingest.Ingest }

func (b blobs) Open(ctx context.Context, id string) (web.Blob, error) {
	blob, err := b.i.Open(ctx, id)
	if errors.Is(err, ingest.ErrNotFound) {
		return nil, fmt.Errorf("upload %s: %w", id, web.ErrNotFound)
	}
	return blob, err
}

func (b blobs) Delete(ctx context.Context, id string) error {
	err := b.i.Delete(ctx, id)
	if errors.Is(err, ingest.ErrNotFound) {
		return nil
	}
	return err
}

// NewLogger builds the process logger at cfg's level, on stderr.
func NewLogger(cfg config.Config) *slog.Logger { return NewLoggerTo(os.Stderr, cfg) }

// NewLoggerTo builds the process logger at cfg's level, writing to w.
func NewLoggerTo(w io.Writer, cfg config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	return slog.New(reqid.LogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})))
}
