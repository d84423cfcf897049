package notify

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestSMTPOverSTARTTLSAndImplicitTLSWithAuth: the two TLS modes of
// --smtp-url against a Mailpit that requires them (and authentication):
// the test message is accepted, over TLS.
func TestSMTPOverSTARTTLSAndImplicitTLSWithAuth(t *testing.T) {
	bin := testbed.Binary(t, "mailpit")
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile, pool := testbed.SelfSignedCert(t, dir)
			smtpPort, httpPort := testbed.FreePort(t), testbed.FreePort(t)
			require := "--smtp-require-starttls"
			if mode == "implicit" {
				require = "--smtp-require-tls"
			}
			p, err := testbed.StartIn(dir, testbed.StartOpts{Name: "mailpit-" + mode, Bin: bin, Args: []string{
				"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
				"--database", filepath.Join(dir, "mail.db"), "--disable-version-check", "--smtp-auth-accept-any",
				"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, require}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			if err := testbed.WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", smtpPort), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(o *Options) {
				o.SMTP = &SMTP{Host: "127.0.0.1", Port: smtpPort, TLS: mode, Username: "ferry", Password: secret.New("hunter2"),
					Timeout: 20 * time.Second, RootCAs: pool}
			})
			res, err := f.svc.Test(t.Context(), "tls@example.com")
			if err != nil || !res.Sent || !strings.Contains(res.Response, "queued as") {
				t.Fatalf("test message over %s: %+v %v", mode, res, err)
			}
			// Without trusting the certificate, nothing is sent.
			f2 := newFixture(t, func(o *Options) {
				o.SMTP = &SMTP{Host: "127.0.0.1", Port: smtpPort, TLS: mode, Username: "ferry", Password: secret.New("hunter2"), Timeout: 20 * time.Second}
			})
			res, err = f2.svc.Test(t.Context(), "tls@example.com")
			if err != nil || res.Sent || !strings.Contains(res.Error, "certificate") || strings.Contains(res.Error, "hunter2") {
				t.Fatalf("an untrusted certificate was accepted: %+v %v", res, err)
			}
		})
	}
}

// TestRecipientRefusedBySMTPServerIsFailedAtOnceWithItsAnswer: a 5xx for the
// recipient (here Mailpit refusing any address outside example.org) is the
// server's final word: recorded as failed after one attempt with the
// server's answer, not retried.
func TestRecipientRefusedBySMTPServerIsFailedAtOnceWithItsAnswer(t *testing.T) {
	bin := testbed.Binary(t, "mailpit")
	dir := t.TempDir()
	smtpPort, httpPort := testbed.FreePort(t), testbed.FreePort(t)
	p, err := testbed.StartIn(dir, testbed.StartOpts{Name: "mailpit-refusing", Bin: bin, Args: []string{
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(dir, "mail.db"), "--disable-version-check", "--smtp-allowed-recipients", `@example\.org$`}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := testbed.WaitTCP(p, fmt.Sprintf("127.0.0.1:%d", smtpPort), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) {
		o.SMTP = &SMTP{Host: "127.0.0.1", Port: smtpPort, TLS: "none", Timeout: 20 * time.Second}
		o.MaxAttempts = 5
	})
	pkg := f.portalPackage("Dailies", []string{"ok@example.org", "nobody@example.com"}, "Shoot", "", "", map[string]int64{"a.mov": 5})
	f.finalize(pkg)
	for _, n := range f.settled(pkg.ID, 2) {
		switch n.Recipient {
		case "ok@example.org":
			if n.State != "sent" {
				t.Fatalf("allowed recipient: %+v", n)
			}
		default:
			if n.State != "failed" || n.Attempts != 1 || !strings.Contains(n.Response, "550") {
				t.Fatalf("refused recipient: %+v; want failed at the first 5xx with the server's answer", n)
			}
		}
	}
}
