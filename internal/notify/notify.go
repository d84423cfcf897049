package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/secret"
)

// The message kinds.
const (
	KindNewPackage = "new_package" // to the portal's recipients, on finalize
	KindReceipt    = "receipt"     // to the sender, on finalize
	KindTransfer   = "transfer"    // "Transfer to iconik", when a delivery settles
	KindSlack      = "slack"       // the connection's Slack channel, when a delivery settles
	KindTest       = "test"        // an admin's test message
)

// The transports a message went out through.
const (
	TransportSMTP   = "smtp"
	TransportOutbox = "outbox" // no SMTP configured: kept for admins to read
	TransportSlack  = "slack"
)

// queue is River's queue of notification jobs.
const queue = "notify"

// Webhooks opens a connection's sealed Slack webhook (internal/connect).
type Webhooks interface {
	SlackWebhook(ctx context.Context, connectionID string) (secret.Value, error)
}

// Options configure a Service. DB and LinkKey are required.
type Options struct {
	DB db.Store
	// SMTP sends email; nil puts every email in the outbox instead.
	SMTP *SMTP
	// From is the sender of every email ("ferry <ferry@studio.example>").
	From string
	// LinkKey keys the download-link tokens made for messages: a token is
	// derived from it and the message's id at send time, so no token is
	// ever stored in clear.
	LinkKey []byte
	// BaseURL returns the address people reach ferry at, for links in
	// messages (it may be known only once the server listens).
	BaseURL func() string
	// Webhooks opens Slack webhooks; nil sends no Slack message.
	Webhooks Webhooks
	// HTTPClient posts to Slack (default: 15 s timeout).
	HTTPClient *http.Client
	// MaxAttempts is how often a message is tried before ferry records it as
	// failed (default 8); Backoff spaces the attempts (default 10 s doubling
	// to 30 min).
	MaxAttempts int
	Backoff     func(attempt int) time.Duration
	// PollInterval is how often River looks for new jobs (default 200ms).
	PollInterval time.Duration
	// Follower keeps this River client out of leader election: another
	// client on the database (delivery's) leads and schedules retries for
	// every queue. Two leaders-to-be with different workers would each
	// discard the other's rescued jobs as unknown kinds.
	Follower bool
	Logger   *slog.Logger
	Now      func() time.Time
	// OnAttempt, if set, is told each send attempt's channel (email, slack) and outcome:
	// sent, retrying, or failed for good (metrics).
	OnAttempt func(channel, outcome string)
}

// Service records and sends notifications.
type Service struct {
	o     Options
	log   *slog.Logger
	river *river.Client[*sql.Tx]
}

// New builds the Service and migrates River's tables (idempotent). Without
// Start it only records and enqueues.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.DB == nil || len(o.LinkKey) == 0 {
		return nil, errors.New("notify: DB and LinkKey are required")
	}
	if o.From == "" {
		o.From = "ferry <ferry@localhost>"
	}
	if _, err := parseFrom(o.From); err != nil {
		return nil, err
	}
	if o.BaseURL == nil {
		o.BaseURL = func() string { return "" }
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff == nil {
		o.Backoff = func(attempt int) time.Duration {
			return min(10*time.Second<<min(max(attempt-1, 0), 8), 30*time.Minute)
		}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, log: o.Logger.With("component", "notify")}
	// River on the Store's own *sql.DB, as delivery does, so jobs are
	// inserted in ferry's transactions.
	driver, err := db.RiverDriver(ctx, o.DB)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	rescue := time.Duration(0)
	if o.DB.Dialect() == db.DialectPostgres {
		rescue = 10 * time.Minute
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &sendWorker{s: s})
	s.river, err = river.NewClient(driver, &river.Config{
		Queues:                 map[string]river.QueueConfig{queue: {MaxWorkers: 4}},
		Workers:                workers,
		MaxAttempts:            o.MaxAttempts,
		FetchPollInterval:      o.PollInterval,
		FetchCooldown:          min(o.PollInterval, 100*time.Millisecond),
		PollOnly:               o.DB.Dialect() == db.DialectSQLite, // as delivery's client: see there
		RescueStuckJobsAfter:   rescue,
		LeaderElectionDisabled: o.Follower,
		Logger:                 o.Logger.With("component", "river"),
	})
	if err != nil {
		return nil, fmt.Errorf("notify: River client: %w", err)
	}
	return s, nil
}

// Start works notification jobs until Stop.
func (s *Service) Start(ctx context.Context) error {
	if s.o.DB.Dialect() == db.DialectSQLite {
		// One process owns a SQLite database: jobs left running by a
		// process that died are this process's to resume, now.
		res, err := s.o.DB.SQLDB().ExecContext(ctx,
			`UPDATE river_job SET state = 'available', scheduled_at = $1 WHERE state = 'running' AND queue = $2`, s.o.Now().UTC(), queue)
		if err != nil {
			return fmt.Errorf("notify: resuming jobs of a previous run: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			s.log.Info("notify: resuming messages interrupted by a previous run", "jobs", n)
		}
	}
	if err := s.Reconcile(ctx); err != nil {
		return err
	}
	if err := s.river.Start(ctx); err != nil {
		return fmt.Errorf("notify: starting River: %w", err)
	}
	go s.reconcileLoop(ctx)
	return nil
}

// reconcileEvery is how often queued messages are checked for a job.
const reconcileEvery = 5 * time.Minute

func (s *Service) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.river.Stopped():
			return
		case <-t.C:
			if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("notify: re-enqueueing queued messages", "err", err)
			}
		}
	}
}

// Reconcile gives every message still queued a job, unless it has one: the
// row is the truth, and a job that vanished (discarded by a leader that
// did not know its kind after rescuing it) must not take the message with it.
func (s *Service) Reconcile(ctx context.Context) error {
	queued, err := s.o.DB.NotificationList(ctx, &db.NotificationListParams{State: db.NotificationQueued, Limit: 10000})
	if err != nil {
		return fmt.Errorf("notify: listing queued messages: %w", err)
	}
	var jobs []river.InsertManyParams
	for _, n := range queued {
		jobs = append(jobs, river.InsertManyParams{Args: sendArgs{NotificationID: n.ID}, InsertOpts: insertOpts()})
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := s.river.InsertMany(ctx, jobs); err != nil {
		return fmt.Errorf("notify: enqueueing %d queued message(s): %w", len(jobs), err)
	}
	return nil
}

// Stop lets running sends finish for up to grace, then cancels them.
func (s *Service) Stop(ctx context.Context, grace time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := s.river.Stop(sctx); err == nil {
		return nil
	}
	return s.river.StopAndCancel(ctx)
}

// Outbox reports whether email goes to the outbox (no SMTP configured).
func (s *Service) Outbox() bool { return s.o.SMTP == nil }

// ---- events (inside the transactions that cause them) ----

// message is the snapshot a message is rendered from, taken when the event
// happens (what the sender typed is escaped when rendered, never here).
type message struct {
	PackageID   string     `json:"package_id,omitempty"`
	Portal      string     `json:"portal,omitempty"`
	Package     string     `json:"package,omitempty"`
	Sender      string     `json:"sender,omitempty"`
	Description string     `json:"description,omitempty"`
	FileCount   int        `json:"file_count,omitempty"`
	TotalSize   int64      `json:"total_size,omitempty"`
	Files       []string   `json:"files,omitempty"` // the first few
	LinkID      string     `json:"link_id,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`

	// A settled delivery.
	DeliveryID string    `json:"delivery_id,omitempty"`
	Connection string    `json:"connection,omitempty"`
	State      string    `json:"state,omitempty"`
	Delivered  int       `json:"delivered,omitempty"`
	Failed     int       `json:"failed,omitempty"`
	Failures   []failure `json:"failures,omitempty"`
	Collection string    `json:"collection,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Duration   int64     `json:"duration_ms,omitempty"`
}

type failure struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// firstFiles is how many file names a "New package" email lists.
const firstFiles = 10

// outgoing is one message to record with its job.
type outgoing struct {
	kind, channel, recipient string
	msg                      message
	link                     bool // make a download link for it
}

// OnFinalize is portal.FinalizeHook: a portal's recipients get "New
// package" (each with a download link of their own, expiring with the
// package) and the sender a receipt.
func (s *Service) OnFinalize(ctx context.Context, tx db.Tx, fin *portal.Finalized) error {
	if fin.Portal == nil || fin.AlreadyFinalized {
		return nil
	}
	pkg := fin.Package
	m := message{PackageID: pkg.ID, Portal: fin.Portal.Name, Package: pkg.Name, Sender: pkg.SenderEmail, Description: pkg.Description,
		FileCount: len(fin.Files), ExpiresAt: pkg.ExpiresAt}
	for _, f := range fin.Files {
		m.TotalSize += f.Size
		if len(m.Files) < firstFiles {
			m.Files = append(m.Files, f.Path)
		}
	}
	var out []outgoing
	for _, r := range fin.Portal.Recipients {
		out = append(out, outgoing{kind: KindNewPackage, channel: db.NotificationEmail, recipient: r, msg: m, link: true})
	}
	receipt, err := senderReceipt(ctx, tx, fin.Portal.ID)
	if err != nil {
		return err
	}
	if pkg.SenderEmail != "" && receipt {
		out = append(out, outgoing{kind: KindReceipt, channel: db.NotificationEmail, recipient: pkg.SenderEmail, msg: m})
	}
	return s.record(ctx, tx, pkg, "finalized:"+pkg.ID, out)
}

// OnSettled is delivery's settled event: "Transfer to iconik" to the
// portal's recipients (for Send to Cloud, to the admin who sent the
// package) and the Slack message. The event runs in a River job and may run
// again; the unique key per (event, kind, recipient) makes that a no-op.
func (s *Service) OnSettled(ctx context.Context, ev delivery.Event) error {
	d := ev.Delivery
	if d.SettledAt == nil {
		return nil
	}
	return s.o.DB.InTx(ctx, func(tx db.Tx) error {
		pkg := ev.Package
		m := message{PackageID: pkg.ID, Package: pkg.Name, Sender: pkg.SenderEmail, Portal: d.PortalName, DeliveryID: d.ID,
			State: string(d.State), Duration: d.SettledAt.Sub(d.CreatedAt).Milliseconds()}
		conn, err := tx.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: d.ConnectionID})
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return err
		}
		m.Connection = d.ConnectionID
		if conn != nil {
			m.Connection = conn.Name
		}
		for _, f := range ev.Files {
			m.Bytes += f.Size
			switch f.State {
			case db.DeliveryFileDelivered:
				m.Delivered++
			case db.DeliveryFileFailed:
				m.Failed++
				m.Failures = append(m.Failures, failure{Path: f.Path, Reason: f.Error})
			}
		}
		parts := []string{d.RootTitle}
		if d.Origin == db.DeliveryOriginPortal {
			parts = append(parts, d.PortalName)
		}
		m.Collection = strings.Join(append(parts, cmpOr(d.PackageTitle, pkg.Name)), "/")

		var recipients []string
		if d.Origin == db.DeliveryOriginPortal && pkg.PortalID != "" {
			p, err := tx.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: pkg.PortalID})
			if err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
			if p != nil {
				recipients = p.Recipients
			}
		} else {
			// Send to Cloud: the admin who asked, else the one who sent
			// the package.
			who, err := tx.NotifyRequesterGet(ctx, &db.NotifyRequesterGetParams{PackageID: pkg.ID, ConnectionID: d.ConnectionID})
			if err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
			if who == "" && pkg.CreatedByUserID != "" {
				u, err := tx.UserGetByID(ctx, &db.UserGetByIDParams{ID: pkg.CreatedByUserID})
				if err != nil && !errors.Is(err, db.ErrNotFound) {
					return err
				}
				if u != nil {
					who = u.Email
				}
			}
			if who != "" {
				recipients = []string{who}
			}
		}
		var out []outgoing
		for _, r := range recipients {
			out = append(out, outgoing{kind: KindTransfer, channel: db.NotificationEmail, recipient: r, msg: m})
		}
		if conn != nil && conn.SlackWebhookSealed != "" && s.o.Webhooks != nil {
			out = append(out, outgoing{kind: KindSlack, channel: db.NotificationSlack, recipient: conn.ID, msg: m})
		}
		event := "settled:" + d.ID + ":" + strconv.FormatInt(d.SettledAt.UnixMicro(), 10)
		return s.record(ctx, tx, pkg, event, out)
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// record writes each message's row and job in tx; one already recorded for
// the same event is skipped (a replayed event).
func (s *Service) record(ctx context.Context, tx db.Tx, pkg *db.Package, event string, out []outgoing) error {
	var jobs []river.InsertManyParams
	for _, o := range out {
		id := uuid.Must(uuid.NewV7()).String()
		m := o.msg
		if o.link {
			// The link exists iff the message does; its token is derived
			// from the message id again when the message is sent.
			l, err := tx.DownloadLinkCreate(ctx, &db.DownloadLinkCreateParams{PackageID: pkg.ID, TokenHash: portal.HashToken(s.linkToken(id)),
				CreatedAt: s.o.Now(), ExpiresAt: pkg.ExpiresAt})
			if err != nil {
				return fmt.Errorf("notify: making the download link of a message to %s: %w", o.recipient, err)
			}
			m.LinkID = l.ID
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = tx.NotificationCreate(ctx, &db.NotificationCreateParams{ID: id, PackageID: pkg.ID, Event: event, Kind: o.kind,
			Channel: o.channel, Recipient: o.recipient, Data: string(data), CreatedAt: s.o.Now()})
		if errors.Is(err, db.ErrConflict) {
			if m.LinkID != "" {
				if err := tx.DownloadLinkDelete(ctx, &db.DownloadLinkDeleteParams{ID: m.LinkID}); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("notify: recording %s to %s: %w", o.kind, o.recipient, err)
		}
		jobs = append(jobs, river.InsertManyParams{Args: sendArgs{NotificationID: id}, InsertOpts: insertOpts()})
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := s.river.InsertManyTx(ctx, tx.SQLTx(), jobs); err != nil {
		return fmt.Errorf("notify: enqueueing %d message(s): %w", len(jobs), err)
	}
	return nil
}

func insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// linkToken is the download-link token of message id: a keyed hash, so it
// is never stored and is the same on every attempt.
func (s *Service) linkToken(id string) string {
	m := hmac.New(sha256.New, s.o.LinkKey)
	m.Write([]byte("ferry notify link v1 " + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ---- sending ----

type sendArgs struct {
	NotificationID string `json:"notification_id"`
}

func (sendArgs) Kind() string { return "ferry_notify_send" }

type sendWorker struct {
	river.WorkerDefaults[sendArgs]
	s *Service
}

func (w *sendWorker) NextRetry(job *river.Job[sendArgs]) time.Time {
	return time.Now().Add(w.s.o.Backoff(job.Attempt))
}

func (w *sendWorker) Timeout(*river.Job[sendArgs]) time.Duration { return 2 * time.Minute }

// outcome is one attempt's result.
type outcome struct {
	transport, subject, text, html string
	response                       string
	err                            error
	permanent                      bool // the peer refused it as wrong: retrying cannot help
}

func (w *sendWorker) Work(ctx context.Context, job *river.Job[sendArgs]) error {
	s := w.s
	n, err := s.o.DB.NotificationGetByID(ctx, &db.NotificationGetByIDParams{ID: job.Args.NotificationID})
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("notification %s is gone (its package was deleted)", job.Args.NotificationID))
	}
	if err != nil {
		return err
	}
	if n.State != db.NotificationQueued {
		return nil // a duplicate job: already sent or given up
	}
	out := s.attempt(ctx, n)
	last := job.Attempt >= job.MaxAttempts
	_, err = s.recordOutcome(ctx, n, out, last)
	if err != nil {
		return err
	}
	switch {
	case out.err == nil:
		return nil
	case out.permanent:
		return river.JobCancel(out.err)
	default:
		return out.err
	}
}

// recordOutcome writes an attempt's result: sent, failed for good (refused,
// or the last attempt), or queued for the next attempt.
func (s *Service) recordOutcome(ctx context.Context, n *db.Notification, out outcome, last bool) (*db.Notification, error) {
	p := &db.NotificationRecordAttemptParams{ID: n.ID, State: db.NotificationSent, Transport: out.transport, Subject: out.subject,
		Response: out.response, At: s.o.Now()}
	if out.transport == TransportOutbox {
		p.BodyText, p.BodyHTML = out.text, out.html
	}
	if out.err != nil {
		p.State, p.Error = db.NotificationQueued, out.err.Error()
		if out.permanent || last {
			p.State = db.NotificationFailed
		}
		s.log.Warn("notify: sending failed", "notification", n.ID, "kind", n.Kind, "channel", n.Channel, "final", p.State == db.NotificationFailed, "err", out.err)
	}
	if s.o.OnAttempt != nil {
		s.o.OnAttempt(n.Channel, map[db.NotificationState]string{db.NotificationSent: "sent", db.NotificationQueued: "retrying", db.NotificationFailed: "failed"}[p.State])
	}
	r, err := s.o.DB.NotificationRecordAttempt(ctx, p)
	if errors.Is(err, db.ErrPrecondition) {
		return n, nil // another attempt recorded it sent meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("notify: recording an attempt of %s: %w", n.ID, err)
	}
	return r, nil
}

func (s *Service) attempt(ctx context.Context, n *db.Notification) outcome {
	var m message
	if err := json.Unmarshal([]byte(n.Data), &m); err != nil {
		return outcome{err: fmt.Errorf("reading the message's data: %w", err), permanent: true}
	}
	if n.Channel == db.NotificationSlack {
		return s.sendSlack(ctx, n, m)
	}
	return s.sendEmail(ctx, n, m)
}

// SetRequester records that email asked for the Send to Cloud of package
// to connection: its "Transfer to iconik" goes to them. Call it before the
// delivery is created, so that it is known however fast the delivery settles.
func (s *Service) SetRequester(ctx context.Context, packageID, connectionID, email string) error {
	err := s.o.DB.NotifyRequesterSet(ctx, &db.NotifyRequesterSetParams{PackageID: packageID, ConnectionID: connectionID, Email: email, CreatedAt: s.o.Now()})
	if errors.Is(err, db.ErrConflict) {
		return fmt.Errorf("package %s: %w", packageID, db.ErrNotFound)
	}
	return err
}

// senderReceipt reads a portal's switch: on unless turned off.
func senderReceipt(ctx context.Context, q db.Queries, portalID string) (bool, error) {
	st, err := q.PortalNotifySettingsGet(ctx, &db.PortalNotifySettingsGetParams{PortalID: portalID})
	if errors.Is(err, db.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("notify: reading the notification settings of portal %s: %w", portalID, err)
	}
	return st.SenderReceipt, nil
}

// PortalSettings are a portal's notification switches.
type PortalSettings struct {
	SenderReceipt bool
}

// PortalSettings returns portal id's switches (db.ErrNotFound for an
// unknown portal).
func (s *Service) PortalSettings(ctx context.Context, portalID string) (*PortalSettings, error) {
	if _, err := s.o.DB.PortalGetByID(ctx, &db.PortalGetByIDParams{ID: portalID}); err != nil {
		return nil, err
	}
	r, err := senderReceipt(ctx, s.o.DB, portalID)
	if err != nil {
		return nil, err
	}
	return &PortalSettings{SenderReceipt: r}, nil
}

// SetPortalSettings stores portal id's switches (db.ErrNotFound for an
// unknown portal).
func (s *Service) SetPortalSettings(ctx context.Context, portalID string, in PortalSettings) (*PortalSettings, error) {
	_, err := s.o.DB.PortalNotifySettingsSet(ctx, &db.PortalNotifySettingsSetParams{PortalID: portalID, SenderReceipt: in.SenderReceipt, UpdatedAt: s.o.Now()})
	if errors.Is(err, db.ErrConflict) {
		return nil, fmt.Errorf("portal %s: %w", portalID, db.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// ---- reading ----

// List returns a package's notifications, newest first.
func (s *Service) List(ctx context.Context, packageID string) ([]*db.Notification, error) {
	if _, err := s.o.DB.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: packageID}); err != nil {
		return nil, err
	}
	return s.o.DB.NotificationList(ctx, &db.NotificationListParams{PackageID: packageID, Limit: 1000})
}

// OutboxList returns the messages kept in the outbox, newest first.
func (s *Service) OutboxList(ctx context.Context, limit int) ([]*db.Notification, error) {
	return s.o.DB.NotificationList(ctx, &db.NotificationListParams{Transport: TransportOutbox, Limit: limit})
}

// SlackFailure returns why Slack last refused connection id's webhook and
// when, or "" when its last Slack message went out (or none was sent yet).
func (s *Service) SlackFailure(ctx context.Context, connectionID string) (string, time.Time, error) {
	list, err := s.o.DB.NotificationList(ctx, &db.NotificationListParams{Channel: db.NotificationSlack, Recipient: connectionID, Limit: 10})
	if err != nil {
		return "", time.Time{}, err
	}
	for _, n := range list {
		switch n.State {
		case db.NotificationSent:
			return "", time.Time{}, nil
		case db.NotificationFailed:
			return n.Error, n.UpdatedAt, nil
		}
	}
	return "", time.Time{}, nil
}

// TestResult is what a test message got.
type TestResult struct {
	Notification *db.Notification
	Sent         bool
	Transport    string
	Response     string // the SMTP server's answer (or the outbox's note)
	Error        string
}

// Test sends a test message to addr now and returns the server's answer.
func (s *Service) Test(ctx context.Context, addr string) (*TestResult, error) {
	to, err := portal.NormalizeEmail(addr)
	if err != nil {
		return nil, ErrBadAddress
	}
	id := uuid.Must(uuid.NewV7()).String()
	n, err := s.o.DB.NotificationCreate(ctx, &db.NotificationCreateParams{ID: id, Event: "test:" + id, Kind: KindTest,
		Channel: db.NotificationEmail, Recipient: to, CreatedAt: s.o.Now()})
	if err != nil {
		return nil, err
	}
	out := s.sendEmail(ctx, n, message{})
	r, err := s.recordOutcome(ctx, n, out, true)
	if err != nil {
		return nil, err
	}
	res := &TestResult{Notification: r, Sent: out.err == nil, Transport: out.transport, Response: out.response}
	if out.err != nil {
		res.Error = out.err.Error()
	}
	return res, nil
}

// ErrBadAddress refuses a test message to something that is not one plain
// email address.
var ErrBadAddress = errors.New("not a plain email address like name@example.com")
