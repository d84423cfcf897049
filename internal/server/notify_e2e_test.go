package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// errInjected is what a stored file starting with "FAIL" reads as in
// these tests: a disk that cannot give the bytes back.
var errInjected = errors.New("injected fault: the stored bytes cannot be read")

// startJobs starts the App's delivery and notification workers (Serve does
// that, and these harnesses serve through httptest instead).
func (h *harness) startJobs() {
	if err := h.app.startDelivery(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.app.stopDelivery)
	if err := h.app.startNotify(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.app.stopNotify)
}

// giveUpOnFAIL makes deliveries give up on a file at its first failure, and
// stored files beginning with "FAIL" unreadable: a test fails a file by its
// content.
func giveUpOnFAIL(o *delivery.Options) {
	o.MaxAttempts = 1
	real := o.Blobs
	o.Blobs = delivery.BlobsFunc(func(ctx context.Context, id string) (delivery.Blob, error) {
		b, err := real.Open(ctx, id)
		if err != nil {
			return nil, err
		}
		head := make([]byte, 4)
		if n, _ := b.ReadAt(head, 0); n == 4 && string(head) == "FAIL" {
			b.Close()
			return nil, errInjected
		}
		return b, nil
	})
}

// newNotifyE2E is the real App with SMTP to Mailpit, links on its own
// address, a connection to an emulator's S3 storage, and deliveries that
// give up on a file at its first failure (stored files beginning with
// "FAIL" cannot be read).
func newNotifyE2E(t *testing.T, mp *testbed.MailServer) *e2e {
	t.Helper()
	h := startHarness(t, t.TempDir(), Options{Delivery: giveUpOnFAIL}, func(cfg *config.Config, url string) {
		cfg.SMTPURL = fmt.Sprintf("smtp://ferry:pw@%s:%d?tls=none", mp.SMTPHost, mp.SMTPPort)
		cfg.MailFrom = "ferry <ferry@studio.example>"
		cfg.PublicURL = url
	})

	emu := emulatortest.Start(t, emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	cred := emu.Cred("admin")
	e := &e2e{harness: h, emu: emu}
	creds := map[string]string{"base_url": emu.URL, "app_id": cred.AppID, "token": cred.Token}
	var v struct {
		Verification web.Verification `json:"verification"`
	}
	resp, body := h.req("POST", "/api/v1/connections/verify", creds, h.admin()...)
	h.mustJSON(resp, body, 200, &v)
	in := map[string]string{"name": "Studio iconik"}
	for k, x := range creds {
		in[k] = x
	}
	for _, s := range v.Verification.Storages {
		if s.Name == "s3" && s.Selectable {
			in["storage_id"] = s.ID
		}
	}
	var c struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = h.req("POST", "/api/v1/connections", in, h.admin()...)
	h.mustJSON(resp, body, 201, &c)
	e.conn = c.Connection
	h.startJobs()
	return e
}

// notifications waits (bounded) until the package has want notifications
// of kind, none of them queued, and returns them.
func (h *harness) notifications(pkgID, kind string, want int) []web.Notification {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), e2eBound)
	defer cancel()
	for {
		var list struct {
			Notifications []web.Notification `json:"notifications"`
		}
		resp, body := h.req("GET", "/api/v1/packages/"+pkgID+"/notifications", nil, h.admin()...)
		h.mustJSON(resp, body, 200, &list)
		var got []web.Notification
		done := true
		for _, n := range list.Notifications {
			if n.Kind == kind {
				got = append(got, n)
				done = done && n.State != "queued"
			}
		}
		if done && len(got) == want {
			return got
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("%s notifications of %s: %+v, want %d settled", kind, pkgID, list.Notifications, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type mpSummary struct {
	ID      string
	Subject string
}

func mailpitSearch(t *testing.T, mp *testbed.MailServer, query string) []mpSummary {
	t.Helper()
	resp, err := http.Get(mp.APIURL + "/api/v1/search?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Messages []mpSummary }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func mailpitText(t *testing.T, mp *testbed.MailServer, id string) string {
	t.Helper()
	resp, err := http.Get(mp.APIURL + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Text string }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Text
}

// onlyMail returns the one message to `to` whose subject starts with
// prefix, failing unless there is exactly one.
func onlyMail(t *testing.T, mp *testbed.MailServer, to, prefix string) (mpSummary, string) {
	t.Helper()
	var found []mpSummary
	for _, m := range mailpitSearch(t, mp, "to:"+to) {
		if strings.HasPrefix(m.Subject, prefix) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s received %d messages starting %q, want exactly 1: %+v", to, len(found), prefix, found)
	}
	return found[0], mailpitText(t, mp, found[0].ID)
}

var linkRE = regexp.MustCompile(`http://\S+/d/[A-Za-z0-9_-]+`)

// TestPortalUploadEmailsRecipientsAWorkingLinkThenTheTransferResult is
// issue 11's proof through the public flow against a real SMTP server: a
// portal upload sends exactly one "New package" email per recipient, whose
// download link downloads the file byte for byte; once delivered, exactly
// one "Transfer to iconik" per recipient with the right counts; and a
// delivery with a failing file names it and its reason.
func TestPortalUploadEmailsRecipientsAWorkingLinkThenTheTransferResult(t *testing.T) {
	mp := testbed.Mailpit(t)
	e := newNotifyE2E(t, mp)
	r1, r2, sender := uniqAddr("producer"), uniqAddr("editor"), uniqAddr("sender")
	e.portal(map[string]any{"name": "Dailies", "slug": "dailies", "active": true, "recipients": []string{r1, r2}, "retention_days": 7,
		"connection_ids": []string{e.conn.ID}})

	// The test message reports the SMTP server's answer.
	var res struct {
		Result web.MailTest `json:"result"`
	}
	tester := uniqAddr("tester")
	resp, body := e.req("POST", "/api/v1/notifications/test", map[string]string{"to": tester}, e.admin()...)
	e.mustJSON(resp, body, 200, &res)
	if !res.Result.Sent || res.Result.Transport != "smtp" || !strings.Contains(res.Result.Response, "queued as") {
		t.Fatalf("test message %+v", res.Result)
	}
	onlyMail(t, mp, tester, "ferry test message")

	rng := rand.New(rand.NewPCG(11, 5))
	files := map[string][]byte{"notes.txt": []byte("day one\n"), "cam A/clip.bin": randBytes(rng, 300<<10+7)}
	c := e.createPortalPackage("dailies", "Shoot 1", sender)
	for p, b := range files {
		e.upload(c.UploadToken, p, b)
	}
	resp, body = e.req("POST", "/p/dailies/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	var pkg struct {
		Package web.Package `json:"package"`
	}
	resp, body = e.req("GET", "/api/v1/packages/"+c.Package.ID, nil, e.admin()...)
	e.mustJSON(resp, body, 200, &pkg)

	for _, n := range e.notifications(c.Package.ID, "new_package", 2) {
		if n.State != "sent" || n.Transport != "smtp" || !strings.Contains(n.Response, "queued as") {
			t.Fatalf("new package notification %+v", n)
		}
	}
	e.notifications(c.Package.ID, "receipt", 1)
	onlyMail(t, mp, sender, `Dailies received your package "Shoot 1"`)
	for _, to := range []string{r1, r2} {
		_, text := onlyMail(t, mp, to, `New package "Shoot 1" from `+sender+` on Dailies`)
		link := linkRE.FindString(text)
		if !strings.HasPrefix(link, e.srv.URL+"/d/") {
			t.Fatalf("no download link on this server in:\n%s", text)
		}
		for _, f := range pkg.Package.Files {
			got := httpGet(t, link+"/files/"+f.ID)
			if !bytes.Equal(got, files[f.Path]) {
				t.Fatalf("%s downloaded through %s's link: %d bytes, not the %d uploaded", f.Path, to, len(got), len(files[f.Path]))
			}
		}
	}

	e.waitSettled(e.onlyDelivery(c.Package.ID, "portal").ID)
	e.notifications(c.Package.ID, "transfer", 2)
	for _, to := range []string{r1, r2} {
		_, text := onlyMail(t, mp, to, `Transfer to iconik: "Shoot 1" delivered`)
		for _, s := range []string{"All 2 files delivered", "Connection: Studio iconik", "Collection: Portal Downloads/Dailies/Shoot 1"} {
			if !strings.Contains(text, s) {
				t.Fatalf("transfer email lacks %q:\n%s", s, text)
			}
		}
	}

	// A delivery in which one file fails: the email names it and why.
	c2 := e.createPortalPackage("dailies", "Shoot 2", sender)
	e.upload(c2.UploadToken, "good.txt", []byte("fine\n"))
	e.upload(c2.UploadToken, "cam B/bad.mov", []byte("FAIL: these bytes will not read back\n"))
	resp, body = e.req("POST", "/p/dailies/packages/"+c2.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c2.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	if d := e.waitSettled(e.onlyDelivery(c2.Package.ID, "portal").ID); d.State != "partially failed" {
		t.Fatalf("delivery with a failing file: %s", d.State)
	}
	e.notifications(c2.Package.ID, "transfer", 2)
	for _, to := range []string{r1, r2} {
		_, text := onlyMail(t, mp, to, `Transfer to iconik: "Shoot 2" 1 of 2 files failed`)
		if !strings.Contains(text, "1 of 2 files failed") || !strings.Contains(text, "cam B/bad.mov: ") || !strings.Contains(text, errInjected.Error()) {
			t.Fatalf("transfer email does not name the failed file and its reason:\n%s", text)
		}
		if strings.Contains(text, "good.txt:") {
			t.Fatalf("transfer email lists a delivered file as failed:\n%s", text)
		}
	}
}

func uniqAddr(local string) string {
	return fmt.Sprintf("%s-%d@example.com", local, rand.Uint64())
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

// TestSlackRefusalIsShownOnTheConnection: a connection whose Slack webhook
// answers 404 (revoked) gets one call when its delivery settles; the
// failure is recorded on the package's notifications and shown on the
// connection, and a new webhook clears it.
func TestSlackRefusalIsShownOnTheConnection(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_service")
	}))
	defer hook.Close()
	e := newE2E(t, "s3")
	if err := e.app.startNotify(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.app.stopNotify)
	resp, body := e.req("PATCH", "/api/v1/connections/"+e.conn.ID, map[string]any{"slack_webhook_url": hook.URL + "/services/T/B/XSECRETX"}, e.admin()...)
	e.mustJSON(resp, body, 200, nil)
	e.portal(map[string]any{"name": "Dailies", "slug": "dailies", "active": true, "connection_ids": []string{e.conn.ID}})
	c := e.createPortalPackage("dailies", "Shoot", "s@example.com")
	e.upload(c.UploadToken, "a.txt", []byte("a\n"))
	resp, body = e.req("POST", "/p/dailies/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	e.waitSettled(e.onlyDelivery(c.Package.ID, "portal").ID)
	n := e.notifications(c.Package.ID, "slack", 1)[0]
	if n.State != "failed" || n.Attempts != 1 || n.Response != "404 no_service" || n.Recipient != e.conn.ID {
		t.Fatalf("slack notification %+v: want failed at the first 404", n)
	}
	var got struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = e.req("GET", "/api/v1/connections/"+e.conn.ID, nil, e.admin()...)
	e.mustJSON(resp, body, 200, &got)
	if !strings.Contains(got.Connection.SlackError, "404 no_service") || strings.Contains(string(body), "XSECRETX") {
		t.Fatalf("connection %s: want the Slack refusal shown, without the URL", body)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d webhook calls, want 1 (a 4xx is not retried)", calls.Load())
	}
	e.now = e.now.Add(time.Minute) // the update happens after the failure
	resp, body = e.req("PATCH", "/api/v1/connections/"+e.conn.ID, map[string]any{"slack_webhook_url": hook.URL + "/services/T/B/new"}, e.admin()...)
	e.mustJSON(resp, body, 200, nil)
	var after struct {
		Connection web.Connection `json:"connection"`
	}
	resp, body = e.req("GET", "/api/v1/connections/"+e.conn.ID, nil, e.admin()...)
	e.mustJSON(resp, body, 200, &after)
	if after.Connection.SlackError != "" || !after.Connection.HasSlackWebhook {
		t.Fatalf("a new webhook still shows the old refusal: %s", body)
	}
}

// TestPortalRecipientsAreValidatedWhenSaved: a recipient that is not one
// plain address (CR/LF included) is refused with a 400 naming it, and
// nothing is stored.
func TestPortalRecipientsAreValidatedWhenSaved(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{"ed@example.com\r\nBcc: victim@example.com", "not an address", "Ed <ed@example.com>", "ed@example.com, x@example.com"} {
		resp, body := h.req("POST", "/api/v1/portals", map[string]any{"name": "P", "slug": "p", "recipients": []string{"ok@example.com", bad}}, h.admin()...)
		var e struct {
			Error struct{ Code, Message string }
		}
		h.mustJSON(resp, body, 400, &e)
		if e.Error.Code != "invalid_recipient" || !strings.Contains(e.Error.Message, strings.Split(bad, "\r")[0]) {
			t.Fatalf("recipient %q: %s", bad, body)
		}
	}
	var list struct{ Portals []web.Portal }
	resp, body := h.req("GET", "/api/v1/portals", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Portals) != 0 {
		t.Fatalf("refused portals were stored: %+v", list.Portals)
	}
}

// TestSenderReceiptFollowsThePortalSwitchAndTheOutboxShowsMessages: with no
// SMTP server, messages go to the outbox and its page; a portal whose
// sender_receipt switch is off sends the recipients' email but no receipt;
// a test message reports where it went; bad input is refused.
func TestSenderReceiptFollowsThePortalSwitchAndTheOutboxShowsMessages(t *testing.T) {
	h := newHarness(t)
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)
	if err := h.app.startNotify(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopNotify)
	p := h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "active": true, "recipients": []string{"r@example.com"}})
	var st struct {
		Settings web.PortalNotify `json:"settings"`
	}
	resp, body := h.req("GET", "/api/v1/portals/"+p.ID+"/notifications", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &st)
	if !st.Settings.SenderReceipt {
		t.Fatalf("a new portal's sender receipt is off: %s", body)
	}
	resp, body = h.req("PUT", "/api/v1/portals/"+p.ID+"/notifications", map[string]any{}, h.admin()...)
	h.mustJSON(resp, body, 400, nil)
	resp, body = h.req("PUT", "/api/v1/portals/nope/notifications", map[string]any{"sender_receipt": false}, h.admin()...)
	h.mustJSON(resp, body, 404, nil)
	resp, body = h.req("PUT", "/api/v1/portals/"+p.ID+"/notifications", map[string]any{"sender_receipt": false}, h.admin()...)
	h.mustJSON(resp, body, 200, &st)
	if st.Settings.SenderReceipt {
		t.Fatalf("switch not stored: %s", body)
	}

	var c created
	resp, body = h.req("POST", "/p/dailies/packages", map[string]string{"name": "Shoot <b>1<b>", "sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &c)
	h.upload(c.UploadToken, "a.txt", []byte("a\n"))
	resp, body = h.req("POST", "/p/dailies/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	n := h.notifications(c.Package.ID, "new_package", 1)[0]
	if n.State != "sent" || n.Transport != "outbox" || n.Recipient != "r@example.com" {
		t.Fatalf("new package notification %+v", n)
	}
	var all struct {
		Notifications []web.Notification `json:"notifications"`
	}
	resp, body = h.req("GET", "/api/v1/packages/"+c.Package.ID+"/notifications", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &all)
	if len(all.Notifications) != 1 {
		t.Fatalf("with the receipt switched off: %+v", all.Notifications)
	}
	resp, body = h.req("GET", "/api/v1/packages/nope/notifications", nil, h.admin()...)
	h.mustJSON(resp, body, 404, nil)

	resp, body = h.req("GET", "/admin/outbox", nil, h.admin()...)
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, "New package &#34;Shoot &lt;b&gt;1&lt;b&gt;&#34; from s@example.com on Dailies") ||
		!strings.Contains(page, `<iframe sandbox=""`) || strings.Contains(page, "<b>1<b>") {
		t.Fatalf("outbox page %d:\n%s", resp.StatusCode, page)
	}
	// Scripts run only with the page's nonce (the console's own bundle), and
	// the emails themselves sit in a sandboxed frame that runs none.
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "script-src 'unsafe-inline'") {
		t.Fatalf("outbox page CSP %q", csp)
	}
	resp, body = h.req("GET", "/admin/packages/"+c.Package.ID, nil, h.admin()...)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "r@example.com") || !strings.Contains(string(body), "new_package") {
		t.Fatalf("package page %d:\n%s", resp.StatusCode, body)
	}

	var res struct {
		Result web.MailTest `json:"result"`
	}
	resp, body = h.req("POST", "/api/v1/notifications/test", map[string]string{"to": "T@Example.com"}, h.admin()...)
	h.mustJSON(resp, body, 200, &res)
	if !res.Result.Sent || res.Result.Transport != "outbox" || res.Result.To != "t@example.com" || !strings.Contains(res.Result.Response, "outbox") {
		t.Fatalf("test message %+v", res.Result)
	}
	resp, body = h.req("POST", "/api/v1/notifications/test", map[string]string{"to": "x@example.com\r\nBcc: y@example.com"}, h.admin()...)
	h.mustJSON(resp, body, 400, nil)
	if !strings.Contains(string(body), "invalid_address") {
		t.Fatalf("bad test address: %s", body)
	}
}

// TestSendToCloudResultGoesToTheAdminWhoAskedForIt: a package one admin
// uploaded and another sent to the cloud: "Transfer to iconik" goes to the
// one who asked for the Send to Cloud.
func TestSendToCloudResultGoesToTheAdminWhoAskedForIt(t *testing.T) {
	e := newE2E(t, "s3")
	if err := e.app.startNotify(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.app.stopNotify)
	if _, err := CreateUser(t.Context(), e.cfg, "second@example.com", "another horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, err := CreateAPIToken(t.Context(), e.cfg, "second@example.com", "test")
	if err != nil {
		t.Fatal(err)
	}
	var own created
	resp, body := e.req("POST", "/api/v1/packages", map[string]string{"name": "Masters"}, e.admin()...)
	e.mustJSON(resp, body, 201, &own)
	e.upload(own.UploadToken, "a/b.txt", []byte("sent to cloud\n"))
	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/finalize", nil, e.admin()...)
	e.mustJSON(resp, body, 200, nil)
	var sd struct {
		Delivery web.Delivery `json:"delivery"`
	}
	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/deliveries", map[string]string{"connection_id": e.conn.ID}, "Authorization", "Bearer "+tok)
	e.mustJSON(resp, body, 202, &sd)
	e.waitSettled(sd.Delivery.ID)
	n := e.notifications(own.Package.ID, "transfer", 1)[0]
	if n.Recipient != "second@example.com" || n.State != "sent" || n.Subject != `Transfer to iconik: "Masters" delivered` {
		t.Fatalf("transfer notification %+v: want it sent to the admin who asked", n)
	}
}

// TestMailTestPageNeedsItsCSRFTokenAndShowsTheServersAnswer: the console's
// test-message form, in a browser session: refused without the session's
// CSRF token, and with it sent, showing where it went and the answer.
func TestMailTestPageNeedsItsCSRFTokenAndShowsTheServersAnswer(t *testing.T) {
	h := newHarness(t)
	resp, body := h.req("POST", "/login", map[string]string{"email": "admin@example.com", "password": "correct horse battery"})
	var login struct {
		CSRFToken string `json:"csrf_token"`
	}
	h.mustJSON(resp, body, 200, &login)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "ferry_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	resp, body = h.req("GET", "/admin/mail-test", nil, "Cookie", cookie)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `name="csrf_token" value="`+login.CSRFToken+`"`) {
		t.Fatalf("form page %d:\n%s", resp.StatusCode, body)
	}
	form := func(token string) (*http.Response, []byte) {
		return h.req("POST", "/admin/mail-test", []byte(url.Values{"to": {"me@example.com"}, "csrf_token": {token}}.Encode()),
			"Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded", "Origin", h.srv.URL)
	}
	if resp, body := form(""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a form without its CSRF token: %d %s", resp.StatusCode, body)
	}
	resp, body = form(login.CSRFToken)
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, "<h2>Sent</h2>") || !strings.Contains(page, "outbox") || !strings.Contains(page, "me@example.com") {
		t.Fatalf("form answer %d:\n%s", resp.StatusCode, page)
	}
}
