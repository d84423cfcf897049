package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Notifications is what the notification routes need (internal/notify,
// adapted by the server). Without it they answer 503.
type Notifications interface {
	// NotificationList returns what was sent about a package, newest first
	// (ErrNotFound for an unknown package).
	NotificationList(ctx context.Context, packageID string) ([]Notification, error)
	// NotificationOutbox returns the emails kept in the outbox, newest first.
	NotificationOutbox(ctx context.Context, limit int) ([]Notification, error)
	// NotificationTest sends a test email now (ErrBadAddress for anything
	// but one plain address).
	NotificationTest(ctx context.Context, to string) (*MailTest, error)
	// MailToOutbox reports whether email goes to the outbox (no SMTP).
	MailToOutbox() bool
	// PortalNotifySettings and PortalNotifySettingsSet read and change a
	// portal's switches (ErrNotFound for an unknown portal).
	PortalNotifySettings(ctx context.Context, portalID string) (*PortalNotify, error)
	PortalNotifySettingsSet(ctx context.Context, portalID string, in PortalNotify) (*PortalNotify, error)
	// SlackFailure says why Slack last refused a connection's webhook, and
	// when ("" = it did not).
	SlackFailure(ctx context.Context, connectionID string) (string, time.Time, error)
}

// ErrBadAddress refuses a test message to something that is not an address.
var ErrBadAddress = errors.New("not a plain email address")

// Notification is one message: to whom, when, and what the peer answered.
type Notification struct {
	ID        string     `json:"id"`
	PackageID string     `json:"package_id,omitempty"`
	Kind      string     `json:"kind"`      // new_package | receipt | transfer | slack | test
	Channel   string     `json:"channel"`   // email | slack
	Recipient string     `json:"recipient"` // an address, or the connection id (Slack)
	State     string     `json:"state"`     // queued | sent | failed
	Transport string     `json:"transport,omitempty"`
	Subject   string     `json:"subject,omitempty"`
	Attempts  int        `json:"attempts"`
	Response  string     `json:"response,omitempty"` // the server's answer
	Error     string     `json:"error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	// The outbox keeps the message as the recipient would see it.
	BodyText string `json:"-"`
	BodyHTML string `json:"-"`
}

// PortalNotify are a portal's notification switches.
type PortalNotify struct {
	// SenderReceipt: the sender gets a receipt when the package is
	// finalized (on unless turned off).
	SenderReceipt bool `json:"sender_receipt"`
}

type portalNotifyRequest struct {
	SenderReceipt *bool `json:"sender_receipt"`
}
type portalNotifyResponse struct {
	Settings PortalNotify `json:"settings"`
}

func (s *Server) portalNotifyGet(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	st, err := ns.PortalNotifySettings(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		return notFound("portal")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, portalNotifyResponse{Settings: *st})
	return nil
}

func (s *Server) portalNotifySet(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	var in portalNotifyRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.SenderReceipt == nil {
		return errorf(http.StatusBadRequest, "invalid_sender_receipt", "Send {\"sender_receipt\": true} or false.")
	}
	st, err := ns.PortalNotifySettingsSet(r.Context(), r.PathValue("id"), PortalNotify{SenderReceipt: *in.SenderReceipt})
	if errors.Is(err, ErrNotFound) {
		return notFound("portal")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, portalNotifyResponse{Settings: *st})
	return nil
}

// MailTest is a test message's outcome, with the SMTP server's answer.
type MailTest struct {
	To        string `json:"to"`
	Sent      bool   `json:"sent"`
	Transport string `json:"transport"` // smtp | outbox
	Response  string `json:"response,omitempty"`
	Error     string `json:"error,omitempty"`
}

type notificationsResponse struct {
	Notifications []Notification `json:"notifications"`
}
type mailTestRequest struct {
	To string `json:"to"`
}
type mailTestResponse struct {
	Result MailTest `json:"result"`
}

// RequestUser returns the user an admin request acts as (the signed-in user
// or the API token's), from the context handlers and the Store receive.
func RequestUser(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey).(User)
	return u, ok && u.Email != ""
}

func (s *Server) notifications() (Notifications, error) {
	if s.opt.Notifications == nil {
		return nil, errorf(http.StatusServiceUnavailable, "notifications_unavailable", "Notifications are not enabled on this server.")
	}
	return s.opt.Notifications, nil
}

func (s *Server) notificationList(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	list, err := ns.NotificationList(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		return notFound("package")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, notificationsResponse{Notifications: nonNilList(list)})
	return nil
}

func nonNilList(l []Notification) []Notification {
	if l == nil {
		return []Notification{}
	}
	return l
}

func (s *Server) mailTest(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	var in mailTestRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	res, err := s.sendTest(r.Context(), ns, in.To)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mailTestResponse{Result: *res})
	return nil
}

func (s *Server) sendTest(ctx context.Context, ns Notifications, to string) (*MailTest, error) {
	res, err := ns.NotificationTest(ctx, strings.TrimSpace(to))
	if errors.Is(err, ErrBadAddress) {
		return nil, errorf(http.StatusBadRequest, "invalid_address", "%q is not an email address like name@example.com.", to)
	}
	return res, err
}

// withSlackFailure shows on a connection why Slack refused its webhook,
// unless the connection changed since (a new webhook deserves a new try).
func (s *Server) withSlackFailure(ctx context.Context, c Connection) Connection {
	if s.opt.Notifications == nil || !c.HasSlackWebhook {
		return c
	}
	reason, at, err := s.opt.Notifications.SlackFailure(ctx, c.ID)
	if err != nil {
		s.log.WarnContext(ctx, "web: reading a connection's Slack status", "connection", c.ID, "err", err)
		return c
	}
	if reason != "" && !at.Before(c.UpdatedAt) {
		c.SlackError = reason
	}
	return c
}

// ---- pages ----

// pageCSRF is the CSRF token of the signed-in browser session ("" for an
// API token caller, who needs none).
func pageCSRF(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		return csrfToken(c.Value)
	}
	return ""
}

func (s *Server) outboxPage(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	list, err := ns.NotificationOutbox(r.Context(), 100)
	if err != nil {
		return err
	}
	return s.consolePage(w, r, http.StatusOK, "notify/outbox", "Outbox", "/admin/outbox", map[string]any{"Messages": list, "Outbox": ns.MailToOutbox()})
}

func (s *Server) mailTestPage(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	data := map[string]any{"Outbox": ns.MailToOutbox(), "To": currentUser(r).Email}
	status := http.StatusOK
	errMsg := ""
	if r.Method == http.MethodPost {
		to := r.PostFormValue("to")
		data["To"] = to
		res, err := s.sendTest(r.Context(), ns, to)
		var ae *Error
		switch {
		case errors.As(err, &ae):
			status, errMsg = ae.Status, ae.Message
		case err != nil:
			return err
		default:
			data["Result"] = res
		}
	}
	p, err := s.newPage(r, "Send a test message", "/admin/outbox", data)
	if err != nil {
		return err
	}
	p.Error = errMsg
	renderNonce(w, status, "notify/mailtest", p, p.Nonce)
	return nil
}
