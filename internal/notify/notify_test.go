package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/testbed"
)

// bound is a deadlock guard for waits on River jobs, not a timing assertion.
const bound = 2 * time.Minute

type fixture struct {
	t     *testing.T
	store db.Store
	svc   *Service
	dom   *portal.Service
}

func newStore(t *testing.T) db.Store {
	t.Helper()
	s, err := db.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"), db.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newFixture runs a started Service on a fresh SQLite database; edit
// adjusts its options (SMTP, Slack).
func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	return newFixtureOn(t, newStore(t), edit)
}

func newFixtureOn(t *testing.T, store db.Store, edit func(*Options)) *fixture {
	t.Helper()
	o := Options{DB: store, LinkKey: []byte("test link key"), From: "ferry <ferry@studio.example>",
		BaseURL: func() string { return "http://ferry.example" }, Backoff: func(int) time.Duration { return 10 * time.Millisecond },
		PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&o)
	}
	svc, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = svc.Stop(sctx, 5*time.Second)
		cancel()
	})
	return &fixture{t: t, store: store, svc: svc, dom: portal.New(store, portal.Options{})}
}

func mailpitSMTP(t *testing.T) (*testbed.MailServer, func(*Options)) {
	t.Helper()
	mp := testbed.Mailpit(t)
	return mp, func(o *Options) {
		o.SMTP = &SMTP{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: "none", Username: "ferry", Password: secret.New("hunter2"), Timeout: 20 * time.Second}
	}
}

// uniq makes addresses no other test (Mailpit is shared) uses.
func uniq(t *testing.T, local string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return local + "-" + hex.EncodeToString(b) + "@example.com"
}

// portalPackage stores a portal with recipients and a package of files,
// all complete, ready to finalize (rows written directly, so a test can
// also store what validation would refuse).
func (f *fixture) portalPackage(portalName string, recipients []string, pkgName, sender, description string, files map[string]int64) *db.Package {
	f.t.Helper()
	ctx := f.t.Context()
	p, err := f.store.PortalCreate(ctx, &db.PortalCreateParams{Name: portalName, Slug: "p" + strings.ToLower(hex.EncodeToString([]byte(pkgName)))[:6] + fmt.Sprint(time.Now().UnixNano()%1e6),
		Active: true, Recipients: recipients, RetentionDays: 7})
	if err != nil {
		f.t.Fatal(err)
	}
	pkg, err := f.store.PackageCreate(ctx, &db.PackageCreateParams{PortalID: p.ID, Name: pkgName, SenderEmail: sender, Description: description,
		UploadTokenHash: portal.HashToken(pkgName + fmt.Sprint(time.Now().UnixNano()))})
	if err != nil {
		f.t.Fatal(err)
	}
	for path, size := range files {
		file, err := f.store.FileCreate(ctx, &db.FileCreateParams{PackageID: pkg.ID, Path: path, PathKey: strings.ToLower(path), Size: size})
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.store.PackageAddUsage(ctx, &db.PackageAddUsageParams{ID: pkg.ID, FilesDelta: 1, BytesDelta: size}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.store.FileSetComplete(ctx, &db.FileSetCompleteParams{ID: file.ID, Size: size, CompletedAt: time.Now()}); err != nil {
			f.t.Fatal(err)
		}
	}
	return pkg
}

func (f *fixture) finalize(pkg *db.Package) *portal.Finalized {
	f.t.Helper()
	fin, err := f.dom.Finalize(f.t.Context(), pkg.ID, f.svc.OnFinalize)
	if err != nil {
		f.t.Fatal(err)
	}
	return fin
}

// settled waits until every notification of pkg left the queue.
func (f *fixture) settled(pkgID string, want int) []*db.Notification {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), bound)
	defer cancel()
	for {
		list, err := f.store.NotificationList(ctx, &db.NotificationListParams{PackageID: pkgID})
		if err != nil {
			f.t.Fatal(err)
		}
		done := len(list) == want
		for _, n := range list {
			done = done && n.State != db.NotificationQueued
		}
		if done {
			return list
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("notifications of %s not settled: %d rows, want %d: %+v", pkgID, len(list), want, list)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ---- Mailpit ----

type mpMessage struct {
	ID      string
	Subject string
	To      []struct{ Address string }
	Bcc     []struct{ Address string }
	Cc      []struct{ Address string }
}

func mpSearch(t *testing.T, mp *testbed.MailServer, query string) []mpMessage {
	t.Helper()
	resp, err := http.Get(mp.APIURL + "/api/v1/search?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Messages []mpMessage }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func mpGet(t *testing.T, mp *testbed.MailServer, path string) []byte {
	t.Helper()
	resp, err := http.Get(mp.APIURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

type mpFull struct {
	Subject string
	Text    string
	HTML    string
}

func mpMessageOf(t *testing.T, mp *testbed.MailServer, id string) mpFull {
	t.Helper()
	var m mpFull
	if err := json.Unmarshal(mpGet(t, mp, "/api/v1/message/"+id), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFinalizeEmailsEachRecipientOnceAndTheSenderAReceipt: a finalized
// portal package sends exactly one "New package" email per recipient and one
// receipt to the sender, through a real SMTP server, even when the event is
// replayed (a second finalize, the hook run again in a transaction).
func TestFinalizeEmailsEachRecipientOnceAndTheSenderAReceipt(t *testing.T) {
	mp, smtp := mailpitSMTP(t)
	f := newFixture(t, smtp)
	r1, r2, sender := uniq(t, "producer"), uniq(t, "editor"), uniq(t, "sender")
	pkg := f.portalPackage("Dailies", []string{r1, r2}, "Shoot 1", sender, "Day one & <two>", map[string]int64{"a/clip.mov": 2048, "b.txt": 10})
	fin := f.finalize(pkg)
	f.finalize(pkg) // a retried request: already finalized
	if err := f.store.InTx(t.Context(), func(tx db.Tx) error {
		return f.svc.OnFinalize(t.Context(), tx, &portal.Finalized{Package: fin.Package, Files: fin.Files, Portal: fin.Portal})
	}); err != nil {
		t.Fatalf("replaying the finalize event: %v", err)
	}
	list := f.settled(pkg.ID, 3)
	for _, n := range list {
		if n.State != db.NotificationSent || n.Transport != TransportSMTP || !strings.Contains(n.Response, "queued as") {
			t.Fatalf("notification %+v: want sent over SMTP with the server's answer", n)
		}
	}
	for _, to := range []string{r1, r2} {
		got := mpSearch(t, mp, "to:"+to)
		if len(got) != 1 {
			t.Fatalf("%s received %d messages, want exactly 1", to, len(got))
		}
		want := `New package "Shoot 1" from ` + sender + ` on Dailies`
		if got[0].Subject != want {
			t.Fatalf("subject %q, want %q", got[0].Subject, want)
		}
		m := mpMessageOf(t, mp, got[0].ID)
		for _, s := range []string{"Day one & <two>", "a/clip.mov", "b.txt", "2 (2.0 KiB)", "http://ferry.example/d/"} {
			if !strings.Contains(m.Text, s) {
				t.Fatalf("text part lacks %q:\n%s", s, m.Text)
			}
		}
		if !strings.Contains(m.HTML, "Day one &amp; &lt;two&gt;") || strings.Contains(m.HTML, "<two>") {
			t.Fatalf("HTML part does not escape the description:\n%s", m.HTML)
		}
	}
	if got := mpSearch(t, mp, "to:"+sender); len(got) != 1 || got[0].Subject != `Dailies received your package "Shoot 1"` {
		t.Fatalf("sender got %+v, want one receipt", got)
	}
	// Each recipient's link is its own, and works: it was stored hashed.
	links, err := f.store.DownloadLinkListByPackage(t.Context(), &db.DownloadLinkListByPackageParams{PackageID: pkg.ID})
	if err != nil || len(links) != 2 {
		t.Fatalf("download links %d (%v), want one per recipient", len(links), err)
	}
	for _, n := range list {
		if n.Kind != KindNewPackage {
			continue
		}
		l, err := f.store.DownloadLinkGetByHash(t.Context(), &db.DownloadLinkGetByHashParams{TokenHash: portal.HashToken(f.svc.linkToken(n.ID))})
		if err != nil || l.PackageID != pkg.ID || l.ExpiresAt == nil || !l.ExpiresAt.Equal(*fin.Package.ExpiresAt) {
			t.Fatalf("link of %s: %+v %v; want the package's, expiring with it", n.Recipient, l, err)
		}
	}
}

// TestHeaderInjectionThroughNamesAndAddressesAddsNoHeader: CR/LF in a
// package, portal or sender name cannot add a header (checked on the raw
// message Mailpit received), and a stored recipient carrying CR/LF is
// refused, not sent.
func TestHeaderInjectionThroughNamesAndAddressesAddsNoHeader(t *testing.T) {
	mp, smtp := mailpitSMTP(t)
	f := newFixture(t, smtp)
	victim := uniq(t, "victim")
	good := uniq(t, "good")
	evilRecipient := uniq(t, "evil") + "\r\nBcc: " + victim
	pkg := f.portalPackage("Portal\r\nX-Injected-Portal: 1", []string{good, evilRecipient},
		"Shoot\r\nBcc: "+victim+"\r\nX-Injected: yes", "s\r\nX-Injected-Sender: 1@example.com", "line\r\nX-Injected-Body: 1",
		map[string]int64{"a.txt": 1})
	f.finalize(pkg)
	list := f.settled(pkg.ID, 3)
	for _, n := range list {
		switch n.Recipient {
		case good:
			if n.State != db.NotificationSent {
				t.Fatalf("the good recipient's message: %+v", n)
			}
		case evilRecipient:
			if n.State != db.NotificationFailed || n.Attempts != 1 {
				t.Fatalf("a recipient with CR/LF was not refused at once: %+v", n)
			}
		}
	}
	got := mpSearch(t, mp, "to:"+good)
	if len(got) != 1 {
		t.Fatalf("good recipient got %d messages", len(got))
	}
	if len(got[0].Bcc) != 0 || len(got[0].Cc) != 0 || len(got[0].To) != 1 {
		t.Fatalf("recipients of the message: %+v", got[0])
	}
	raw := string(mpGet(t, mp, "/api/v1/message/"+got[0].ID+"/raw"))
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		if strings.HasPrefix(strings.ToLower(name), "x-injected") || strings.EqualFold(name, "bcc") {
			t.Fatalf("an injected header reached the message:\n%s", head)
		}
	}
	if n := len(mpSearch(t, mp, "to:"+victim)); n != 0 {
		t.Fatalf("the victim received %d messages", n)
	}
}

// TestSettledDeliveryEmailsTheResultNamingEachFailedFile: "Transfer to
// iconik" goes once to each recipient, with the counts and each failed file
// and its reason; a replayed settled event sends nothing more.
func TestSettledDeliveryEmailsTheResultNamingEachFailedFile(t *testing.T) {
	mp, smtp := mailpitSMTP(t)
	f := newFixture(t, smtp)
	r := uniq(t, "producer")
	pkg := f.portalPackage("Dailies", []string{r}, "Shoot 2", "", "", map[string]int64{"a.mov": 5, "b.mov": 6, "c.mov": 7})
	f.finalize(pkg)
	ev := f.event(pkg, db.DeliveryPartiallyFailed, map[string]string{"a.mov": "", "b.mov": "iconik refused the asset: 403", "c.mov": "storage unreachable"})
	for range 2 {
		if err := f.svc.OnSettled(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	list := f.settled(pkg.ID, 2) // "New package" and "Transfer to iconik"
	for _, n := range list {
		if n.State != db.NotificationSent || (n.Kind != KindTransfer && n.Kind != KindNewPackage) {
			t.Fatalf("notification %+v", n)
		}
	}
	var got []mpMessage
	for _, m := range mpSearch(t, mp, "to:"+r) {
		if strings.HasPrefix(m.Subject, "Transfer to iconik") {
			got = append(got, m)
		}
	}
	if len(got) != 1 || got[0].Subject != `Transfer to iconik: "Shoot 2" 2 of 3 files failed` {
		t.Fatalf("recipient got %+v", got)
	}
	m := mpMessageOf(t, mp, got[0].ID)
	for _, s := range []string{"2 of 3 files failed", "b.mov: iconik refused the asset: 403", "c.mov: storage unreachable",
		"Connection: Tenant", "Collection: Portal Downloads/Dailies/Shoot 2", "18 bytes"} {
		if !strings.Contains(m.Text, s) {
			t.Fatalf("text lacks %q:\n%s", s, m.Text)
		}
	}
}

// event makes the settled event of a delivery of pkg to a connection
// (stored, with a Slack webhook when hook != ""); files maps path to error
// ("" = delivered).
func (f *fixture) event(pkg *db.Package, state db.DeliveryState, files map[string]string) delivery.Event {
	return f.eventWithHook(pkg, state, files, "")
}

func (f *fixture) eventWithHook(pkg *db.Package, state db.DeliveryState, files map[string]string, hook string) delivery.Event {
	f.t.Helper()
	ctx := f.t.Context()
	conn, err := f.store.ConnectionCreate(ctx, &db.ConnectionCreateParams{Name: "Tenant " + pkg.ID, BaseURL: "http://iconik", AppID: "a", TokenSealed: "x",
		StorageID: "s", PortalRoot: "Portal Downloads", SendRoot: "MASV", SlackWebhookSealed: hook})
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.store.DeliveryCreate(ctx, &db.DeliveryCreateParams{PackageID: pkg.ID, ConnectionID: conn.ID, Origin: db.DeliveryOriginPortal,
		RootTitle: "Portal Downloads", PortalName: "Dailies", Finalized: true})
	if err != nil {
		f.t.Fatal(err)
	}
	d, err = f.store.DeliverySetState(ctx, &db.DeliverySetStateParams{ID: d.ID, State: state, OnlyUnsettled: true, At: d.CreatedAt.Add(90 * time.Second)})
	if err != nil {
		f.t.Fatal(err)
	}
	ev := delivery.Event{Delivery: d, Package: pkg}
	sizes := map[string]int64{"a.mov": 5, "b.mov": 6, "c.mov": 7}
	for p, e := range files {
		df := &db.DeliveryFile{DeliveryID: d.ID, FileID: p, Path: p, Size: sizes[p], State: db.DeliveryFileDelivered}
		if e != "" {
			df.State, df.Error = db.DeliveryFileFailed, e
		}
		ev.Files = append(ev.Files, df)
	}
	return ev
}

// ---- Slack ----

type slackPeer struct {
	mu     sync.Mutex
	calls  []map[string]any
	answer []int // status per call; the last repeats
	srv    *httptest.Server
}

func newSlackPeer(t *testing.T, answers ...int) *slackPeer {
	p := &slackPeer{answer: answers}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "invalid_payload", 400)
			return
		}
		p.mu.Lock()
		p.calls = append(p.calls, body)
		status := p.answer[min(len(p.calls), len(p.answer))-1]
		p.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, map[int]string{200: "ok", 404: "no_service", 500: "internal_error"}[status])
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *slackPeer) Calls() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.calls...)
}

// webhooks is the connection's webhook as connect would open it.
type webhooks string

func (w webhooks) SlackWebhook(context.Context, string) (secret.Value, error) {
	return secret.New(string(w)), nil
}

// TestSlackMessageIsRetriedAfterA5xxAndCarriesBlocksAndFallback: the
// payload is Block Kit plus a plain-text fallback naming the status,
// package, portal, connection, counts; a 500 is retried, once, then sent.
func TestSlackMessageIsRetriedAfterA5xxAndCarriesBlocksAndFallback(t *testing.T) {
	peer := newSlackPeer(t, 500, 200)
	f := newFixture(t, func(o *Options) { o.Webhooks = webhooks(peer.srv.URL + "/services/T/B/secret") })
	pkg := f.portalPackage("Dailies", nil, "Shoot <!channel>", "", "", map[string]int64{"a.mov": 5, "b.mov": 6})
	f.finalize(pkg)
	if err := f.svc.OnSettled(t.Context(), f.eventWithHook(pkg, db.DeliveryPartiallyFailed, map[string]string{"a.mov": "", "b.mov": "boom"}, "sealed")); err != nil {
		t.Fatal(err)
	}
	list := f.settled(pkg.ID, 1)
	n := list[0]
	if n.State != db.NotificationSent || n.Attempts != 2 || n.Response != "200 ok" || n.Kind != KindSlack {
		t.Fatalf("slack notification %+v: want sent on the second attempt", n)
	}
	calls := peer.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d webhook calls, want 2 (500 then 200)", len(calls))
	}
	msg := calls[1]
	text, _ := msg["text"].(string)
	for _, s := range []string{":warning:", "Partially failed", "Shoot &lt;!channel&gt;", "1 of 2 files delivered, 1 failed", "11 bytes"} {
		if !strings.Contains(text, s) {
			t.Fatalf("fallback text %q lacks %q", text, s)
		}
	}
	blocks, _ := msg["blocks"].([]any)
	if len(blocks) < 3 {
		t.Fatalf("blocks %v", blocks)
	}
	js, _ := json.Marshal(blocks)
	for _, s := range []string{`"type":"section"`, `*Portal*\nDailies`, `*Connection*\nTenant `, `*Files*\n1 delivered, 1 failed`,
		`• b.mov: boom`, `"url":"http://ferry.example/admin/packages/` + pkg.ID + `"`} {
		if !strings.Contains(string(js), s) {
			t.Fatalf("blocks lack %s:\n%s", s, js)
		}
	}
}

// TestSlack4xxIsRecordedAsAConfigurationErrorNotRetried: a 404 (revoked
// webhook) is tried once, recorded as failed with Slack's answer, and shown
// for the connection; the job is cancelled, not retried.
func TestSlack4xxIsRecordedAsAConfigurationErrorNotRetried(t *testing.T) {
	peer := newSlackPeer(t, 404)
	f := newFixture(t, func(o *Options) { o.Webhooks = webhooks(peer.srv.URL + "/services/T/B/secret") })
	pkg := f.portalPackage("Dailies", nil, "Shoot", "", "", map[string]int64{"a.mov": 5})
	f.finalize(pkg)
	ev := f.eventWithHook(pkg, db.DeliveryDelivered, map[string]string{"a.mov": ""}, "sealed")
	if err := f.svc.OnSettled(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	n := f.settled(pkg.ID, 1)[0]
	if n.State != db.NotificationFailed || n.Attempts != 1 || n.Response != "404 no_service" || !strings.Contains(n.Error, "update the connection's Slack webhook") {
		t.Fatalf("notification %+v", n)
	}
	if strings.Contains(n.Error, "secret") || strings.Contains(n.Response, "/services/") {
		t.Fatalf("the webhook URL leaked into the record: %+v", n)
	}
	reason, _, err := f.svc.SlackFailure(t.Context(), ev.Delivery.ConnectionID)
	if err != nil || !strings.Contains(reason, "404 no_service") {
		t.Fatalf("connection's Slack failure %q (%v)", reason, err)
	}
	// The row is recorded before River finishes the job: wait for River.
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	var state string
	for state != "cancelled" && ctx.Err() == nil {
		if err := f.store.SQLDB().QueryRowContext(ctx, `SELECT state FROM river_job WHERE kind = 'ferry_notify_send'`).Scan(&state); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state != "cancelled" || len(peer.Calls()) != 1 {
		t.Fatalf("job %s after %d calls: want cancelled after one", state, len(peer.Calls()))
	}
}

// TestWithoutSMTPEmailsGoToTheOutboxRenderedAsSent: no SMTP configured (the
// demo): each message is kept with its subject and both parts.
func TestWithoutSMTPEmailsGoToTheOutboxRenderedAsSent(t *testing.T) {
	f := newFixture(t, nil)
	r := uniq(t, "producer")
	pkg := f.portalPackage("Dailies", []string{r}, "Shoot", "s@example.com", "", map[string]int64{"a.mov": 5})
	f.finalize(pkg)
	f.settled(pkg.ID, 2)
	box, err := f.svc.OutboxList(t.Context(), 10)
	if err != nil || len(box) != 2 {
		t.Fatalf("outbox %d (%v)", len(box), err)
	}
	for _, n := range box {
		if n.State != db.NotificationSent || n.Subject == "" || n.BodyText == "" || n.BodyHTML == "" || n.Transport != TransportOutbox {
			t.Fatalf("outbox message %+v", n)
		}
	}
}

// TestSMTPURLIsParsedAndItsPasswordNeverShown covers --smtp-url.
func TestSMTPURLIsParsedAndItsPasswordNeverShown(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"smtp://user:s3cret@mail.example:587?tls=starttls", "smtp://user@mail.example:587?tls=starttls", ""},
		{"smtp://mail.example", "smtp://mail.example:587?tls=starttls", ""},
		{"smtp://u:s3cret@mail.example?tls=implicit", "smtp://u@mail.example:465?tls=implicit", ""},
		{"smtps://u:s3cret@mail.example", "smtp://u@mail.example:465?tls=implicit", ""},
		{"smtp://127.0.0.1:1025?tls=none", "smtp://127.0.0.1:1025?tls=none", ""},
		{"smtp://u:s3cret@mail.example?tls=maybe", "", "tls="},
		{"http://u:s3cret@mail.example", "", "smtp://"},
		{"smtp://u:s3cret@mail.example:99999", "", "port"},
		{"smtp://u:s3cret@/x", "", "no host"},
	} {
		s, err := ParseSMTPURL(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error %v, want one about %q without the password", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want || strings.Contains(fmt.Sprintf("%v %+v", s, s), "s3cret") {
			t.Errorf("%s: %v (%v), want %s without the password", c.in, s, err, c.want)
		}
	}
}

// TestFinalizeAndSettleSendOnceOnPostgreSQL: the same exactly-once flow on
// PostgreSQL (River's database/sql driver there), with a replayed event and
// a real SMTP server.
func TestFinalizeAndSettleSendOnceOnPostgreSQL(t *testing.T) {
	pg := testbed.Postgres(t)
	mp, smtp := mailpitSMTP(t)
	store, err := db.Open(t.Context(), pg.CreateDatabase(t), db.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newFixtureOn(t, store, smtp)
	r := uniq(t, "producer")
	pkg := f.portalPackage("Dailies", []string{r}, "Shoot PG", "", "", map[string]int64{"a.mov": 5, "b.mov": 6})
	fin := f.finalize(pkg)
	if err := f.store.InTx(t.Context(), func(tx db.Tx) error {
		return f.svc.OnFinalize(t.Context(), tx, &portal.Finalized{Package: fin.Package, Files: fin.Files, Portal: fin.Portal})
	}); err != nil {
		t.Fatalf("replaying the finalize event on PostgreSQL: %v", err)
	}
	ev := f.event(pkg, db.DeliveryFailed, map[string]string{"a.mov": "boom", "b.mov": "bang"})
	for range 2 {
		if err := f.svc.OnSettled(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range f.settled(pkg.ID, 2) {
		if n.State != db.NotificationSent {
			t.Fatalf("notification %+v", n)
		}
	}
	if got := mpSearch(t, mp, "to:"+r); len(got) != 2 {
		t.Fatalf("%s received %d messages, want New package and Transfer to iconik once each", r, len(got))
	}
}

// TestUnreachableSMTPIsRetriedThenRecordedAsFailed: a server that refuses
// connections is tried MaxAttempts times (with backoff), then the message
// is recorded as failed with the reason, and nothing is queued any more.
func TestUnreachableSMTPIsRetriedThenRecordedAsFailed(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	addr := closed.Listener.Addr().(*net.TCPAddr)
	closed.Close() // a port nothing listens on any more
	f := newFixture(t, func(o *Options) {
		o.SMTP = &SMTP{Host: "127.0.0.1", Port: addr.Port, TLS: "none", Timeout: 5 * time.Second}
		o.MaxAttempts = 2
	})
	pkg := f.portalPackage("Dailies", []string{uniq(t, "producer")}, "Shoot", "", "", map[string]int64{"a.mov": 5})
	f.finalize(pkg)
	n := f.settled(pkg.ID, 1)[0]
	if n.State != db.NotificationFailed || n.Attempts != 2 || !strings.Contains(n.Error, "SMTP smtp://127.0.0.1:") || n.SentAt != nil {
		t.Fatalf("notification %+v: want failed after 2 attempts, saying why", n)
	}
}
