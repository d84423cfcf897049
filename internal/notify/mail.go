package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	gomail "github.com/wneessen/go-mail"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/secret"
)

// SMTP is where email goes: --smtp-url smtp://user:pass@host:587?tls=starttls.
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password secret.Value
	// TLS is "starttls" (required, the default), "implicit" (TLS from the
	// first byte, port 465) or "none" (plain text: a relay on localhost).
	TLS string
	// Timeout bounds one conversation with the server (default 30 s).
	Timeout time.Duration
	// RootCAs verifies the server's certificate (nil: the system's roots).
	RootCAs *x509.CertPool
}

// ParseSMTPURL reads --smtp-url. Its errors never repeat the password.
func ParseSMTPURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("the SMTP URL is not a URL like smtp://user:pass@host:587?tls=starttls")
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return nil, fmt.Errorf("the SMTP URL must start with smtp:// (got %q)", u.Scheme+"://")
	}
	if u.Hostname() == "" {
		return nil, errors.New("the SMTP URL names no host (smtp://user:pass@host:587)")
	}
	s := &SMTP{Host: u.Hostname(), TLS: "starttls", Timeout: 30 * time.Second}
	if u.Scheme == "smtps" {
		s.TLS = "implicit"
	}
	if t := u.Query().Get("tls"); t != "" {
		s.TLS = t
	}
	switch s.TLS {
	case "starttls", "implicit", "none":
	default:
		return nil, fmt.Errorf("the SMTP URL's tls=%q is not one of starttls, implicit, none", s.TLS)
	}
	if u.User != nil {
		s.Username = u.User.Username()
		pw, _ := u.User.Password()
		s.Password = secret.New(pw)
	}
	s.Port = map[string]int{"starttls": 587, "implicit": 465, "none": 25}[s.TLS]
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("the SMTP URL's port %q is not a port number", p)
		}
		s.Port = n
	}
	return s, nil
}

// String describes the server without its password (for logs).
func (s *SMTP) String() string {
	user := ""
	if s.Username != "" {
		user = s.Username + "@"
	}
	return "smtp://" + user + net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) + "?tls=" + s.TLS
}

// parseFrom reads --mail-from: one address, with an optional display name.
func parseFrom(from string) (*mail.Address, error) {
	a, err := mail.ParseAddress(from)
	if err != nil || hasControl(from) {
		return nil, fmt.Errorf("notify: --mail-from %q is not an address like \"ferry <ferry@studio.example>\"", from)
	}
	return a, nil
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// headerSafe makes a header value of text a sender typed: every control
// character (CR and LF above all: they would start a new header) becomes a
// space. go-mail encodes what is left as needed.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// sendEmail renders n and sends it over SMTP, or puts it in the outbox.
func (s *Service) sendEmail(ctx context.Context, n *db.Notification, m message) outcome {
	subject, text, html, err := s.render(n, m)
	if err != nil {
		return outcome{err: err, permanent: true}
	}
	if s.o.SMTP == nil {
		return outcome{transport: TransportOutbox, subject: subject, text: text, html: html,
			response: "kept in the outbox: no SMTP server is configured (--smtp-url)"}
	}
	out := outcome{transport: TransportSMTP, subject: subject}
	// The recipient was validated when it was saved; check again so that no
	// stored value can ever reach a header unchecked.
	to, err := mail.ParseAddress(n.Recipient)
	if err != nil || hasControl(n.Recipient) || to.Address != n.Recipient {
		out.err, out.permanent = fmt.Errorf("recipient %q is not a plain email address", n.Recipient), true
		return out
	}
	from, _ := parseFrom(s.o.From) // checked by New
	msg := gomail.NewMsg()
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.Subject(headerSafe(subject))
	msg.SetMessageIDWithValue(n.ID + "@ferry") // the same on every attempt: a receiving system can drop a repeat
	msg.SetDateWithValue(s.o.Now())
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, text)
	if html != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, html)
	}
	cl, err := s.smtpClient()
	if err != nil {
		out.err, out.permanent = err, true
		return out
	}
	err = cl.DialAndSendWithContext(ctx, msg)
	if err == nil {
		out.response = msg.ServerResponse()
		if out.response == "" {
			out.response = "accepted"
		}
		return out
	}
	out.err = fmt.Errorf("SMTP %s: %w", s.o.SMTP.String(), err)
	out.response = err.Error()
	var se *gomail.SendError
	// 5xx is the server refusing this message (unknown mailbox, policy);
	// 4xx and network trouble may pass later.
	if errors.As(err, &se) && se.ErrorCode() >= 500 {
		out.permanent = true
	}
	return out
}

func (s *Service) smtpClient() (*gomail.Client, error) {
	c := s.o.SMTP
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(c.Timeout)}
	switch c.TLS {
	case "implicit":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.TLS != "none" {
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: c.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}))
	}
	if c.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if c.TLS == "none" {
			// The operator chose a plain-text relay: PLAIN without TLS is
			// what it takes (go-mail refuses it otherwise).
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password.Reveal()))
	}
	cl, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP %s: %w", c.String(), err)
	}
	return cl, nil
}
