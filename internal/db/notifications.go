package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// NotificationState is where one message is.
type NotificationState string

// The notification states: queued -> sent | failed (failed for good: the
// last attempt failed, or the peer refused the message as wrong).
const (
	NotificationQueued NotificationState = "queued"
	NotificationSent   NotificationState = "sent"
	NotificationFailed NotificationState = "failed"
)

// The notification channels.
const (
	NotificationEmail = "email"
	NotificationSlack = "slack"
)

// Notification is one message ferry owes one recipient because of one event.
type Notification struct {
	ID        string
	PackageID string // "" for a test message
	// Event names what caused it ("finalized:<package>",
	// "settled:<delivery>:<time>"); (Event, Kind, Recipient) is unique.
	Event     string
	Kind      string
	Channel   string // NotificationEmail | NotificationSlack
	Recipient string // an email address, or the connection id for Slack
	Data      string // JSON snapshot the message is rendered from; no secrets
	State     NotificationState
	Transport string // how it went out: smtp | outbox | slack; "" until tried
	Subject   string
	BodyText  string // kept for the outbox only
	BodyHTML  string // kept for the outbox only
	Attempts  int
	Response  string // the peer's last answer (SMTP reply, Slack status and body)
	Error     string // why the last attempt failed; "" once sent
	CreatedAt time.Time
	UpdatedAt time.Time
	SentAt    *time.Time
}

const notificationCols = "id, package_id, event, kind, channel, recipient, data, state, transport, subject, body_text, body_html, " +
	"attempts, response, error, created_at, updated_at, sent_at"

func scanNotification(r rowScanner) (*Notification, error) {
	var n Notification
	var pkg *string
	err := r.Scan(&n.ID, &pkg, &n.Event, &n.Kind, &n.Channel, &n.Recipient, &n.Data, &n.State, &n.Transport, &n.Subject,
		&n.BodyText, &n.BodyHTML, &n.Attempts, &n.Response, &n.Error,
		timeScan{dst: &n.CreatedAt}, timeScan{dst: &n.UpdatedAt}, timeScan{ptr: &n.SentAt})
	if pkg != nil {
		n.PackageID = *pkg
	}
	return &n, err
}

// NotificationCreate records a queued message. An equal one (same event,
// kind and recipient) already recorded is ErrConflict and nothing changes:
// a replayed event sends nothing twice. It never aborts the transaction.
func (q queries) NotificationCreate(ctx context.Context, p *NotificationCreateParams) (*Notification, error) {
	if p.Event == "" || p.Kind == "" || p.Recipient == "" {
		return nil, fmt.Errorf("db: NotificationCreate: event, kind and recipient are required: %w", ErrConflict)
	}
	data := p.Data
	if data == "" {
		data = "{}"
	}
	now := ts(p.CreatedAt)
	n, err := one(ctx, q, "NotificationCreate", ErrConflict, scanNotification,
		`INSERT INTO notifications (id, package_id, event, kind, channel, recipient, data, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8)
		ON CONFLICT (event, kind, recipient) DO NOTHING RETURNING `+notificationCols,
		newID(p.ID), nullString(p.PackageID), p.Event, p.Kind, p.Channel, p.Recipient, data, now)
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("db: NotificationCreate: %s %s to %s is already recorded: %w", p.Event, p.Kind, p.Recipient, ErrConflict)
	}
	return n, err
}

func (q queries) NotificationGetByID(ctx context.Context, p *NotificationGetByIDParams) (*Notification, error) {
	return one(ctx, q, "NotificationGetByID", ErrNotFound, scanNotification,
		"SELECT "+notificationCols+" FROM notifications WHERE id = $1", p.ID)
}

func (q queries) NotificationList(ctx context.Context, p *NotificationListParams) ([]*Notification, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	return many(ctx, q, "NotificationList", scanNotification,
		"SELECT "+notificationCols+` FROM notifications
		WHERE ($1 = '' OR package_id = $1) AND ($2 = '' OR transport = $2) AND ($3 = '' OR channel = $3) AND ($4 = '' OR recipient = $4)
		AND ($5 = '' OR state = $5)
		ORDER BY created_at DESC, id DESC LIMIT $6`,
		p.PackageID, p.Transport, p.Channel, p.Recipient, string(p.State), limit)
}

func (q queries) NotificationRecordAttempt(ctx context.Context, p *NotificationRecordAttemptParams) (*Notification, error) {
	if p.State == NotificationQueued && p.Error == "" {
		return nil, fmt.Errorf("db: NotificationRecordAttempt: a queued attempt must say what failed: %w", ErrConflict)
	}
	at := ts(p.At)
	var sentAt any
	if p.State == NotificationSent {
		sentAt = at
	}
	return one(ctx, q, "NotificationRecordAttempt", ErrPrecondition, scanNotification,
		`UPDATE notifications SET state = $2, transport = $3, subject = $4, body_text = $5, body_html = $6,
		attempts = attempts + 1, response = $7, error = $8, updated_at = $9, sent_at = $10
		WHERE id = $1 AND state <> 'sent' RETURNING `+notificationCols,
		p.ID, string(p.State), p.Transport, p.Subject, p.BodyText, p.BodyHTML, p.Response, p.Error, at, sentAt)
}

// Params of the notification operations.

// NotificationCreateParams: a zero Data is "{}".
type NotificationCreateParams struct {
	ID        string
	PackageID string
	Event     string
	Kind      string
	Channel   string
	Recipient string
	Data      string
	CreatedAt time.Time
}
type NotificationGetByIDParams struct{ ID string }

// NotificationListParams lists newest first; empty fields match anything.
type NotificationListParams struct {
	PackageID string
	Transport string
	Channel   string
	Recipient string
	State     NotificationState
	Limit     int // 0 = 100
}

// NotificationRecordAttemptParams records one attempt's outcome: State
// NotificationSent (SentAt = At), NotificationFailed (for good) or
// NotificationQueued (will be retried; Error says why). A message already
// sent is never changed again (ErrPrecondition): a late duplicate attempt
// cannot undo it.
type NotificationRecordAttemptParams struct {
	ID        string
	State     NotificationState
	Transport string
	Subject   string
	BodyText  string
	BodyHTML  string
	Response  string
	Error     string
	At        time.Time
}

// PortalNotifySettings are a portal's notification switches.
type PortalNotifySettings struct {
	PortalID      string
	SenderReceipt bool // the sender gets a receipt when the package is finalized
	UpdatedAt     time.Time
}

func scanPortalNotifySettings(r rowScanner) (*PortalNotifySettings, error) {
	var p PortalNotifySettings
	err := r.Scan(&p.PortalID, &p.SenderReceipt, timeScan{dst: &p.UpdatedAt})
	return &p, err
}

// PortalNotifySettingsGet returns a portal's switches; ErrNotFound when none
// were ever set (the caller applies the defaults).
func (q queries) PortalNotifySettingsGet(ctx context.Context, p *PortalNotifySettingsGetParams) (*PortalNotifySettings, error) {
	return one(ctx, q, "PortalNotifySettingsGet", ErrNotFound, scanPortalNotifySettings,
		"SELECT portal_id, sender_receipt, updated_at FROM portal_notify_settings WHERE portal_id = $1", p.PortalID)
}

// PortalNotifySettingsSet stores a portal's switches (ErrConflict for an
// unknown portal).
func (q queries) PortalNotifySettingsSet(ctx context.Context, p *PortalNotifySettingsSetParams) (*PortalNotifySettings, error) {
	return one(ctx, q, "PortalNotifySettingsSet", ErrNotFound, scanPortalNotifySettings,
		`INSERT INTO portal_notify_settings (portal_id, sender_receipt, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (portal_id) DO UPDATE SET sender_receipt = excluded.sender_receipt, updated_at = excluded.updated_at
		RETURNING portal_id, sender_receipt, updated_at`, p.PortalID, p.SenderReceipt, ts(p.UpdatedAt))
}

type PortalNotifySettingsGetParams struct{ PortalID string }
type PortalNotifySettingsSetParams struct {
	PortalID      string
	SenderReceipt bool
	UpdatedAt     time.Time
}

// NotifyRequesterGet returns who asked for the Send to Cloud of a package
// to a connection ("" and ErrNotFound when nobody is recorded).
func (q queries) NotifyRequesterGet(ctx context.Context, p *NotifyRequesterGetParams) (string, error) {
	var email string
	err := q.ex.QueryRowContext(ctx, "SELECT email FROM notify_requesters WHERE package_id = $1 AND connection_id = $2",
		p.PackageID, p.ConnectionID).Scan(&email)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("db: NotifyRequesterGet: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("db: NotifyRequesterGet: %w", q.d.classify(err))
	}
	return email, nil
}

// NotifyRequesterSet records who asked for the Send to Cloud of a package
// to a connection (the latest request wins; ErrConflict for an unknown
// package).
func (q queries) NotifyRequesterSet(ctx context.Context, p *NotifyRequesterSetParams) error {
	_, err := q.exec(ctx, "NotifyRequesterSet", nil,
		`INSERT INTO notify_requesters (package_id, connection_id, email, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (package_id, connection_id) DO UPDATE SET email = excluded.email, created_at = excluded.created_at`,
		p.PackageID, p.ConnectionID, strings.ToLower(p.Email), ts(p.CreatedAt))
	return err
}

type NotifyRequesterGetParams struct{ PackageID, ConnectionID string }
type NotifyRequesterSetParams struct {
	PackageID, ConnectionID, Email string
	CreatedAt                      time.Time
}
