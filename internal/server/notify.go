package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/notify"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/web"
)

// openNotify builds the notification service: SMTP from --smtp-url (none:
// the outbox), download links keyed by the master key, Slack webhooks opened
// by Cloud Connect. Its River client follows delivery's, which leads.
func (a *App) openNotify(ctx context.Context, key []byte) error {
	var smtp *notify.SMTP
	if a.cfg.SMTPURL != "" {
		var err error
		if smtp, err = notify.ParseSMTPURL(a.cfg.SMTPURL); err != nil {
			return fmt.Errorf("config: --smtp-url: %w", err)
		}
	}
	n, err := notify.New(ctx, notify.Options{DB: a.DB, SMTP: smtp, From: a.cfg.MailFrom, LinkKey: derive(key, "notify links v1"),
		BaseURL: a.baseURL, Webhooks: a.Connect, Follower: true, Logger: a.log, Now: a.now, OnAttempt: a.Metrics.Notification})
	if err != nil {
		return fmt.Errorf("starting notifications: %w", err)
	}
	a.Notify = n
	if smtp != nil {
		a.log.Info("email goes out over SMTP", "server", smtp.String(), "from", a.cfg.MailFrom)
	} else {
		a.log.Info("no --smtp-url: emails are kept in the outbox at /admin/outbox")
	}
	return nil
}

// baseURL is where people reach this server, for links in messages:
// --public-url, else the address Serve listens on.
func (a *App) baseURL() string {
	if a.cfg.PublicURL != "" {
		return a.cfg.PublicURL
	}
	if u := a.bound.Load(); u != nil {
		return *u
	}
	return ""
}

// finalizeHook enqueues, in the transaction finalizing a package, its
// deliveries and then its notifications.
func (a *App) finalizeHook() portal.FinalizeHook {
	return func(ctx context.Context, tx db.Tx, fin *portal.Finalized) error {
		if a.Delivery != nil {
			if err := a.Delivery.OnFinalize(ctx, tx, fin); err != nil {
				return err
			}
		}
		if a.Notify != nil {
			return a.Notify.OnFinalize(ctx, tx, fin)
		}
		return nil
	}
}

func (a *App) startNotify(ctx context.Context) error {
	if a.Notify == nil {
		return nil
	}
	return a.Notify.Start(context.WithoutCancel(ctx))
}

func (a *App) stopNotify() {
	if a.Notify == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	if err := a.Notify.Stop(ctx, a.cfg.ShutdownTimeout); err != nil {
		a.log.Warn("stopping notification jobs", "err", err)
	}
}

// notifyWeb adapts notify to web.Notifications.
type notifyWeb struct{ n *notify.Service }

var _ web.Notifications = notifyWeb{}

func webNotification(n *db.Notification) web.Notification {
	return web.Notification{ID: n.ID, PackageID: n.PackageID, Kind: n.Kind, Channel: n.Channel, Recipient: n.Recipient, State: string(n.State),
		Transport: n.Transport, Subject: n.Subject, Attempts: n.Attempts, Response: n.Response, Error: n.Error, CreatedAt: n.CreatedAt,
		SentAt: n.SentAt, BodyText: n.BodyText, BodyHTML: n.BodyHTML}
}

func webNotifications(list []*db.Notification) []web.Notification {
	out := make([]web.Notification, 0, len(list))
	for _, n := range list {
		out = append(out, webNotification(n))
	}
	return out
}

func (w notifyWeb) NotificationList(ctx context.Context, packageID string) ([]web.Notification, error) {
	list, err := w.n.List(ctx, packageID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, fmt.Errorf("package %s: %w", packageID, web.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return webNotifications(list), nil
}

func (w notifyWeb) NotificationOutbox(ctx context.Context, limit int) ([]web.Notification, error) {
	list, err := w.n.OutboxList(ctx, limit)
	if err != nil {
		return nil, err
	}
	return webNotifications(list), nil
}

func (w notifyWeb) NotificationTest(ctx context.Context, to string) (*web.MailTest, error) {
	res, err := w.n.Test(ctx, to)
	if errors.Is(err, notify.ErrBadAddress) {
		return nil, web.ErrBadAddress
	}
	if err != nil {
		return nil, err
	}
	return &web.MailTest{To: strings.ToLower(strings.TrimSpace(to)), Sent: res.Sent, Transport: res.Transport, Response: res.Response, Error: res.Error}, nil
}

func (w notifyWeb) PortalNotifySettings(ctx context.Context, portalID string) (*web.PortalNotify, error) {
	st, err := w.n.PortalSettings(ctx, portalID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, fmt.Errorf("portal %s: %w", portalID, web.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &web.PortalNotify{SenderReceipt: st.SenderReceipt}, nil
}

func (w notifyWeb) PortalNotifySettingsSet(ctx context.Context, portalID string, in web.PortalNotify) (*web.PortalNotify, error) {
	st, err := w.n.SetPortalSettings(ctx, portalID, notify.PortalSettings{SenderReceipt: in.SenderReceipt})
	if errors.Is(err, db.ErrNotFound) {
		return nil, fmt.Errorf("portal %s: %w", portalID, web.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &web.PortalNotify{SenderReceipt: st.SenderReceipt}, nil
}

func (w notifyWeb) MailToOutbox() bool { return w.n.Outbox() }

func (w notifyWeb) SlackFailure(ctx context.Context, connectionID string) (string, time.Time, error) {
	return w.n.SlackFailure(ctx, connectionID)
}
