package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// memDeliveries adds the Deliveries capability to memStore, for the package
// page: the tests move its deliveries between states by hand.
type memDeliveries struct {
	*memStore
	dmu  sync.Mutex
	list map[string][]Delivery // package id -> deliveries
}

func (m *memDeliveries) find(id string) (*Delivery, bool) {
	for _, l := range m.list {
		for i := range l {
			if l[i].ID == id {
				return &l[i], true
			}
		}
	}
	return nil, false
}

func (m *memDeliveries) DeliveryGet(_ context.Context, id string) (*Delivery, error) {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	d, ok := m.find(id)
	if !ok {
		return nil, ErrNotFound
	}
	c := *d
	c.Files = append([]DeliveryFile(nil), d.Files...)
	return &c, nil
}

func (m *memDeliveries) DeliveryList(ctx context.Context, pkgID string) ([]Delivery, error) {
	if _, err := m.PackageGet(ctx, pkgID); err != nil {
		return nil, err
	}
	m.dmu.Lock()
	defer m.dmu.Unlock()
	var out []Delivery
	for _, d := range m.list[pkgID] {
		d.Files = append([]DeliveryFile(nil), d.Files...)
		out = append(out, d)
	}
	return out, nil
}

func (m *memDeliveries) DeliveryRetry(_ context.Context, id string) (int, error) {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	d, ok := m.find(id)
	if !ok {
		return 0, ErrNotFound
	}
	n := 0
	for i := range d.Files {
		if d.Files[i].State == "failed" {
			d.Files[i].State, d.Files[i].Error = "queued", ""
			n++
		}
	}
	d.State = "queued"
	return n, nil
}

func (m *memDeliveries) DeliverySend(ctx context.Context, pkgID, connID string) (*Delivery, error) {
	p, err := m.PackageGet(ctx, pkgID)
	if err != nil {
		return nil, err
	}
	if connID != "c1" {
		return nil, ErrNotFound
	}
	if p.State != StateFinalized {
		return nil, ErrConflict
	}
	m.dmu.Lock()
	defer m.dmu.Unlock()
	d := Delivery{ID: "d" + p.ID + "-" + string(rune('a'+len(m.list[pkgID]))), PackageID: pkgID, ConnectionID: connID, Origin: "send_to_cloud", State: "queued"}
	for _, f := range p.Files {
		d.Files = append(d.Files, DeliveryFile{FileID: f.ID, Path: f.Path, Size: f.Size, State: "queued"})
		d.Bytes += f.Size
	}
	m.list[pkgID] = append(m.list[pkgID], d)
	return &d, nil
}

func (m *memDeliveries) JobsUI() http.Handler { return nil }

// set changes a delivery in place (the tests' stand-in for the worker).
func (m *memDeliveries) set(id string, fn func(d *Delivery)) {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	d, _ := m.find(id)
	fn(d)
}

type consoleFixture struct {
	*fixture
	del    *memDeliveries
	cookie string
	csrf   string
}

// newConsoleFixture serves a memStore with deliveries and signs a browser in.
func newConsoleFixture(t *testing.T) *consoleFixture {
	f := newFixture(t)
	del := &memDeliveries{memStore: f.store, list: map[string][]Delivery{}}
	s, err := New(Options{Store: del, Blobs: f.blobs, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = s.Handler()
	resp, body := f.do("POST", "/login", "email=admin%40example.com&password=correct+horse", "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	c := &consoleFixture{fixture: f, del: del}
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			c.cookie, c.csrf = sessionCookie+"="+ck.Value, csrfToken(ck.Value)
		}
	}
	return c
}

func (c *consoleFixture) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, body := c.do("GET", path, nil, "Cookie", c.cookie)
	return resp, string(body)
}

// post sends a form as the browser would, with the CSRF token unless omitted.
func (c *consoleFixture) post(path string, form url.Values, withCSRF bool) (*http.Response, string) {
	c.t.Helper()
	if withCSRF {
		form.Set(csrfField, c.csrf)
	}
	resp, body := c.do("POST", path, form.Encode(), "Cookie", c.cookie, "Content-Type", "application/x-www-form-urlencoded")
	return resp, string(body)
}

// finalizedPackage makes a finalized package with a nested tree.
func (c *consoleFixture) finalizedPackage(name, sender string) Package {
	pkg, _, _ := c.store.PackageCreate(c.t.Context(), PackageInput{Name: name, SenderEmail: sender, Description: "Day one <rushes>"})
	c.store.addFile(pkg.ID, File{ID: pkg.ID + "f1", Path: "Card A/Clip 1.mov", Size: 3 << 20, SHA256: strings.Repeat("ab", 32), State: FileComplete, UploadID: "u1"})
	c.store.addFile(pkg.ID, File{ID: pkg.ID + "f2", Path: "notes é.txt", Size: 12, SHA256: strings.Repeat("cd", 32), State: FileComplete, UploadID: "u2"})
	p, err := c.store.PackageFinalize(c.t.Context(), pkg.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func TestConsolePackageListFiltersSearchesAndLinksEachPackage(t *testing.T) {
	c := newConsoleFixture(t)
	portal, _ := c.store.PortalCreate(t.Context(), PortalInput{Name: "Dailies", Slug: "p", Active: ptr(true)})
	a, _, _ := c.store.PackageCreate(t.Context(), PackageInput{PortalSlug: "p", Name: "Day 1 Rolls", SenderEmail: "ana@example.com"})
	b, _, _ := c.store.PackageCreate(t.Context(), PackageInput{PortalSlug: "p", Name: "Sound", SenderEmail: "bo@example.com"})
	d := c.finalizedPackage("Grade <final>", "cy@example.com")
	cases := []struct {
		name      string
		query     string
		want, not []string
	}{
		{"everything", "", []string{a.ID, b.ID, d.ID, "Dailies", "Grade &lt;final&gt;"}, nil},
		{"search by part of a name, any case", "?q=rolls", []string{a.ID}, []string{b.ID, d.ID}},
		{"search by part of a sender", "?q=BO%40", []string{b.ID}, []string{a.ID, d.ID}},
		{"by portal", "?portal_id=" + portal.ID, []string{a.ID, b.ID}, []string{d.ID}},
		{"by state", "?state=finalized", []string{d.ID}, []string{a.ID, b.ID}},
		{"by sender", "?sender_email=ana%40example.com", []string{a.ID}, []string{b.ID, d.ID}},
		{"nothing matches", "?q=zzz", []string{"No package matches", `href="/admin/packages"`}, []string{a.ID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := c.get("/admin/packages" + tc.query)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
			}
			for _, w := range tc.want {
				if w == a.ID || w == b.ID || w == d.ID {
					w = `href="/admin/packages/` + w + `"`
				}
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(page, `/admin/packages/`+n+`"`) {
					t.Errorf("page lists %s", n)
				}
			}
		})
	}
	resp, page := c.get("/admin/packages?state=bogus")
	if resp.StatusCode != 400 || !strings.Contains(page, "uploading, finalized or expired") {
		t.Fatalf("bad state: %d %s", resp.StatusCode, page)
	}
}

func TestPackageAPISearchesNameOrSenderWithQ(t *testing.T) {
	c := newConsoleFixture(t)
	c.finalizedPackage("Day 1 Rolls", "ana@example.com")
	c.finalizedPackage("Sound", "bo@example.com")
	resp, body := c.do("GET", "/api/v1/packages?q=ROLL", nil, "Authorization", "Bearer "+c.token)
	var got struct{ Packages []Package }
	json.Unmarshal(body, &got)
	if resp.StatusCode != 200 || len(got.Packages) != 1 || got.Packages[0].Name != "Day 1 Rolls" {
		t.Fatalf("q=ROLL: %d %s", resp.StatusCode, body)
	}
}

func TestConsolePackagePageShowsTreeDeliveriesAndRetry(t *testing.T) {
	c := newConsoleFixture(t)
	pkg := c.finalizedPackage("Shoot", "s@example.com")
	resp, page := c.get("/admin/packages/" + pkg.ID)
	for _, w := range []string{"Card A/", "Clip 1.mov", "notes é.txt", strings.Repeat("ab", 32), "3.0 MiB", "s@example.com",
		"Day one &lt;rushes&gt;", "has not been delivered anywhere", `data-live="/admin/packages/` + pkg.ID + `/events"`} {
		if !strings.Contains(page, w) {
			t.Errorf("package page lacks %q", w)
		}
	}
	if resp.StatusCode != 200 || t.Failed() {
		t.Fatalf("package page %d:\n%s", resp.StatusCode, page)
	}
	if resp, page := c.get("/admin/packages/nope"); resp.StatusCode != 404 || !strings.Contains(page, "<html") {
		t.Fatalf("unknown package: %d %s", resp.StatusCode, page)
	}

	// Send to Cloud: without CSRF refused; an unknown connection re-renders
	// the page with the refusal; a known one redirects with a flash.
	if resp, _ := c.post("/admin/packages/"+pkg.ID+"/deliveries", url.Values{"connection_id": {"c1"}}, false); resp.StatusCode != 403 {
		t.Fatalf("send without csrf: %d", resp.StatusCode)
	}
	resp, page = c.post("/admin/packages/"+pkg.ID+"/deliveries", url.Values{"connection_id": {"nope"}}, true)
	if resp.StatusCode != 404 || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, "no such package or connection") || !strings.Contains(page, "Clip 1.mov") {
		t.Fatalf("send to unknown connection: %d %s", resp.StatusCode, page)
	}
	resp, _ = c.post("/admin/packages/"+pkg.ID+"/deliveries", url.Values{"connection_id": {"c1"}}, true)
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/packages/"+pkg.ID+"?flash=") {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	did := c.del.list[pkg.ID][0].ID
	next := time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)
	c.del.set(did, func(d *Delivery) {
		d.State, d.Title = "partially failed", "Shoot"
		d.Files[0].State, d.Files[0].Error, d.Files[0].Attempts = "failed", "storage said <no>", 3
		d.Files[1].State, d.Files[1].BytesDone, d.Files[1].LastError, d.Files[1].NextAttemptAt = "retrying", 6, "iconik 503", &next
	})
	_, page = c.get("/admin/packages/" + pkg.ID)
	for _, w := range []string{`data-delivery="` + did + `"`, "partially failed", "storage said &lt;no&gt;", "last: iconik 503", "next at 17:00:00 UTC",
		"Retry failed files", `action="/admin/packages/` + pkg.ID + `/deliveries/` + did + `/retry"`} {
		if !strings.Contains(page, w) {
			t.Errorf("page with a failed delivery lacks %q", w)
		}
	}
	if t.Failed() {
		t.Fatal(page)
	}
	if resp, _ := c.post("/admin/packages/"+pkg.ID+"/deliveries/"+did+"/retry", url.Values{}, false); resp.StatusCode != 403 {
		t.Fatalf("retry without csrf: %d", resp.StatusCode)
	}
	resp, _ = c.post("/admin/packages/"+pkg.ID+"/deliveries/"+did+"/retry", url.Values{}, true)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, url.QueryEscape("1 failed file is being delivered again.")) {
		t.Fatalf("retry: %d %s", resp.StatusCode, loc)
	}
	if st := c.del.list[pkg.ID][0].Files[0].State; st != "queued" {
		t.Fatalf("after retry the file is %s", st)
	}
	// Without a keyframe source (this Store has none) a keyframe is a 404 page.
	if resp, page := c.get("/admin/packages/" + pkg.ID + "/deliveries/" + did + "/files/" + pkg.ID + "f1/keyframe"); resp.StatusCode != 404 || !strings.Contains(page, "<html") {
		t.Fatalf("keyframe without a source: %d %s", resp.StatusCode, page)
	}
	// A delivery of another package cannot be retried through this one's page.
	other := c.finalizedPackage("Other", "o@example.com")
	if resp, _ := c.post("/admin/packages/"+other.ID+"/deliveries/"+did+"/retry", url.Values{}, true); resp.StatusCode != 404 {
		t.Fatalf("retry through another package: %d", resp.StatusCode)
	}
}

func TestConsoleLinkFormShowsTheAbsoluteURLOnceAndRefusesInline(t *testing.T) {
	c := newConsoleFixture(t)
	pkg := c.finalizedPackage("Shoot", "s@example.com")
	path := "/admin/packages/" + pkg.ID + "/links"
	if resp, _ := c.post(path, url.Values{"expires_in": {"24h"}}, false); resp.StatusCode != 403 {
		t.Fatalf("link without csrf: %d", resp.StatusCode)
	}
	resp, page := c.post(path, url.Values{"expires_in": {"24h"}, "max_downloads": {"two"}}, true)
	if resp.StatusCode != 422 || !strings.Contains(page, `role="alert"`) || !strings.Contains(page, "whole number") || !strings.Contains(page, `value="two"`) {
		t.Fatalf("bad limit: %d %s", resp.StatusCode, page)
	}
	resp, page = c.post(path, url.Values{"expires_in": {"168h"}, "max_downloads": {"2"}, "password": {"pw"}}, true)
	u := c.srv.URL + "/d/"
	i := strings.Index(page, `value="`+u)
	if resp.StatusCode != 201 || i < 0 || !strings.Contains(page, `data-copy="#new-link"`) {
		t.Fatalf("link: %d %s", resp.StatusCode, page)
	}
	tok := page[i+len(`value="`+u):]
	tok = tok[:strings.IndexByte(tok, '"')]
	l, err := c.store.LinkByToken(t.Context(), tok)
	if err != nil || l.MaxDownloads != 2 || !l.HasPassword || l.ExpiresAt == nil || l.ExpiresAt.Sub(c.now) < 167*time.Hour {
		t.Fatalf("stored link %+v %v", l, err)
	}
	if _, page := c.get("/admin/packages/" + pkg.ID); strings.Contains(page, tok) {
		t.Fatal("the link's secret is shown again on the next visit")
	}
}

// readEvent reads the next server-sent event's data.
func readEvent(t *testing.T, r *bufio.Reader) map[string][]deliveryView {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev map[string][]deliveryView
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			return ev
		}
	}
}

func TestPackageEventsStreamEachChangeOfADelivery(t *testing.T) {
	c := newConsoleFixture(t)
	pkg := c.finalizedPackage("Shoot", "s@example.com")
	c.del.DeliverySend(t.Context(), pkg.ID, "c1")
	did := c.del.list[pkg.ID][0].ID

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.srv.URL+"/admin/packages/"+pkg.ID+"/events", nil)
	req.Header.Set("Cookie", c.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	ev := readEvent(t, r)
	if d := ev["deliveries"]; len(d) != 1 || d[0].ID != did || d[0].State != "queued" || len(d[0].Files) != 2 {
		t.Fatalf("first event: %+v", ev)
	}
	c.del.set(did, func(d *Delivery) {
		d.State, d.BytesDone = "running", 1<<20
		d.Files[0].State, d.Files[0].BytesDone = "running", 1<<20
	})
	ev = readEvent(t, r)
	if d := ev["deliveries"][0]; d.State != "running" || d.Files[0].BytesDone != 1<<20 || d.Files[0].Percent != 33 || d.Files[0].Speed <= 0 {
		t.Fatalf("after the change: %+v", d)
	}
	c.del.set(did, func(d *Delivery) {
		d.State, d.BytesDone = "delivered", d.Bytes
		for i := range d.Files {
			d.Files[i].State, d.Files[i].BytesDone = "delivered", d.Files[i].Size
		}
	})
	for {
		// Running files may send one more event (their speed); delivered comes.
		if d := readEvent(t, r)["deliveries"][0]; d.State == "delivered" {
			if d.Files[0].State != "delivered" || d.Percent != 100 {
				t.Fatalf("delivered event: %+v", d)
			}
			break
		}
	}
}
