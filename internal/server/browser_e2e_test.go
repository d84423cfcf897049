package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestBrowserFaceEndToEnd is the whole product as its two kinds of people
// use it, in Chromium against the real App and the iconik emulator:
//   - an admin signs in, adds a Cloud Connect connection with the power
//     user's token and sees the one missing role named, then with the admin
//     token, picks the S3 storage, and creates a password-protected portal
//     delivering to it;
//   - a contributor opens the portal, enters the password, drops a nested
//     folder (an empty subfolder, a 64 MiB file, a non-ASCII name), uploads
//     and sees "received"; a second upload finishes across a server restart
//     without help;
//   - the admin opens the first package and watches its delivery reach
//     "delivered" without reloading; the emulator holds the collection tree
//     (empty folders not recreated).
func TestBrowserFaceEndToEnd(t *testing.T) {
	h := newHarness(t)
	emu := emulatortest.Start(t, emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := browser(t)
	step := func(name string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := within(ctx, d, steps...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}

	// The admin.
	step("signing in", 30*time.Second,
		chromedp.Navigate(h.srv.URL+"/admin/connections"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "admin@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/connections/new"]`)),
	)
	verify := func(cred string) {
		t.Helper()
		c := emu.Cred(cred)
		step("verifying the "+cred+" token", 30*time.Second,
			chromedp.Navigate(h.srv.URL+"/admin/connections/new"),
			chromedp.WaitVisible(chromedp.CSS(`#token`)),
			chromedp.SetValue(chromedp.CSS(`#base_url`), emu.URL),
			chromedp.SendKeys(chromedp.CSS(`#app_id`), c.AppID),
			chromedp.SendKeys(chromedp.CSS(`#token`), c.Token),
			chromedp.Click(chromedp.CSS(`form[action="/admin/connections/new"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`#checklist`)),
		)
	}
	verify("power")
	screenshot(t, ctx, "e2e-1-power-token.png")
	if got := text(`#missing-roles`); !strings.HasPrefix(got, "1 role missing") || !strings.Contains(got, "can_write_metadata_values") {
		t.Fatalf("the power token's missing role is reported as %q", got)
	}
	verify("admin")
	step("picking S3 and saving", 30*time.Second,
		chromedp.Click(chromedp.Search(`//label[text()="s3"]`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Studio iconik"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/connections"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
	)
	if got := text(`#state`); !strings.Contains(got, "active") {
		t.Fatalf("the saved connection reads %q", got)
	}
	step("creating a portal delivering to it, with a password", 30*time.Second,
		chromedp.Navigate(h.srv.URL+"/admin/portals/new"),
		chromedp.WaitVisible(chromedp.CSS(`#slug`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Dailies"),
		chromedp.SetValue(chromedp.CSS(`#slug`), "dailies"),
		chromedp.Click(chromedp.CSS(`#pw-set`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), "letmein"),
		chromedp.Click(chromedp.CSS(`#conn-0`)),
		chromedp.Submit(chromedp.CSS(`#slug`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	screenshot(t, ctx, "e2e-2-portal-saved.png")
	var portals struct{ Portals []web.Portal }
	resp, body := h.req("GET", "/api/v1/portals", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &portals)
	if len(portals.Portals) != 1 || !portals.Portals[0].HasPassword || len(portals.Portals[0].ConnectionIDs) != 1 {
		t.Fatalf("the portal the admin made: %s", body)
	}

	// The contributor.
	root, _ := shootFolder(t, rand.NewPCG(7, 8))
	step("dropping a folder on the portal page", time.Minute,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "dop@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Rushes day 1"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "letmein"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input[webkitdirectory]`), []string{root}),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
		chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	)
	if out, err := pageOutcome(ctx, 2*time.Minute); err != nil || out != "received" {
		t.Fatalf("the first upload ended with %q (%v)", out, err)
	}
	screenshot(t, ctx, "e2e-3-received.png")

	// A second package, with the server restarted under it.
	big := filepath.Join(t.TempDir(), "big.mov")
	if err := os.WriteFile(big, randBytes(rand.New(rand.NewPCG(9, 10)), 160<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	throttle := func(bps float64) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: bps}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	throttle(12 << 20)
	step("starting a second upload", time.Minute,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "dop@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Rushes day 2"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "letmein"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input:not([webkitdirectory])`), []string{big}),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
		chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	)
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := chromedp.Run(pctx, chromedp.Poll[bool](`window.ferryUppy.getState().totalProgress >= 25`))
	cancel()
	if err != nil {
		t.Fatalf("waiting for the second upload to get going: %v", err)
	}
	h.restartOnSameAddress()
	if out, err := pageOutcome(ctx, 3*time.Minute); err != nil || out != "received" {
		t.Fatalf("across the restart the page ended with %q (%v)", out, err)
	}
	throttle(-1)

	// The admin watches the first package's delivery.
	var list struct{ Packages []web.Package }
	resp, body = h.req("GET", "/api/v1/packages?q=day+1", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Packages) != 1 {
		t.Fatalf("packages named day 1: %s", body)
	}
	id := list.Packages[0].ID
	step("opening the package (signed in again: the restart kept the session)", time.Minute,
		chromedp.Navigate(h.srv.URL+"/admin/packages/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-delivery] h3 .badge`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ferryNotReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	_, err = chromedp.Run(dctx, chromedp.Poll[bool](`document.querySelector('[data-delivery] h3 .badge').textContent === 'delivered'`))
	cancel()
	if err != nil {
		t.Fatalf("the package page never showed delivered: %v", err)
	}
	if live, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ferryNotReloaded === true`)); err != nil || !live {
		t.Fatalf("the page reloaded instead of updating live (%v)", err)
	}
	screenshot(t, ctx, "e2e-4-delivered.png")
	if got := text(`[data-field=collection]`); got != "Portal Downloads/Dailies/Rushes day 1" {
		t.Errorf("the page names the iconik collection %q", got)
	}

	// The emulator holds the tree: no collection for the empty folder.
	cred := emu.Cred("admin")
	cl, err := iconik.New(iconik.Options{BaseURL: emu.URL, AppID: cred.AppID, Token: cred.Token, Transport: ispectest.Transport(t, nil),
		RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{harness: h, emu: emu, cl: cl}
	tree := e.tree(e.root("Portal Downloads"), "")
	for _, want := range []string{"Dailies/", "Dailies/Rushes day 1/", "Dailies/Rushes day 1/Shoot/", "Dailies/Rushes day 1/Shoot/Day 1/",
		"Dailies/Rushes day 1/Shoot/Day 1/clip A.mov", "Dailies/Rushes day 1/Shoot/Day 1/notes.txt", "Dailies/Rushes day 1/Shoot/Café – días ñ.txt"} {
		if tree[want] == "" {
			t.Errorf("the emulator has no %q; its tree: %v", want, tree)
		}
	}
	if tree["Dailies/Rushes day 1/Shoot/Empty/"] != "" {
		t.Error("the empty folder was recreated in iconik")
	}
}
