package server

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestConsoleAddsACloudConnectConnectionInTheBrowser walks the Cloud Connect
// pages in Chromium against the real App and the iconik emulator: an admin
// signs in, tries the power user's token and sees the one role it lacks
// reported (by iconik's name and the API's), then the admin token, picks the
// S3 storage and saves; the connection page and the list show it active.
func TestConsoleAddsACloudConnectConnectionInTheBrowser(t *testing.T) {
	h := newHarness(t)
	emu := emulatortest.Start(t, emulator.Options{})
	ctx := browser(t)
	step := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := within(ctx, 30*time.Second, steps...); err != nil {
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

	step("signing in",
		chromedp.Navigate(h.srv.URL+"/admin/connections"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "admin@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		// The page signed in (wherever it leads) has a sign-out form; leaving
		// before it shows would cancel the sign-in request.
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)),
	)
	step("opening Cloud Connect",
		chromedp.Navigate(h.srv.URL+"/admin/connections"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/connections/new"]`)),
	)
	screenshot(t, ctx, "connections-1-empty-list.png")

	fill := func(cred string) {
		t.Helper()
		c := emu.Cred(cred)
		step("entering the "+cred+" credentials",
			chromedp.Navigate(h.srv.URL+"/admin/connections/new"),
			chromedp.WaitVisible(chromedp.CSS(`#token`)),
			chromedp.SetValue(chromedp.CSS(`#base_url`), emu.URL),
			chromedp.SendKeys(chromedp.CSS(`#app_id`), c.AppID),
			chromedp.SendKeys(chromedp.CSS(`#token`), c.Token),
		)
	}
	fill("power")
	screenshot(t, ctx, "connections-2-credentials.png")
	step("verifying the power token",
		chromedp.Click(chromedp.CSS(`form[action="/admin/connections/new"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#checklist`)),
	)
	screenshot(t, ctx, "connections-3-power-missing-role.png")
	if got := text(`#missing-roles`); !strings.HasPrefix(got, "1 role missing") {
		t.Errorf("missing roles: %q", got)
	}
	if got := text(`li.no`); !strings.Contains(got, "Metadata values - write") || !strings.Contains(got, "can_write_metadata_values") {
		t.Errorf("the missing role is shown as %q", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[action="/admin/connections"]').length`)); n != 0 {
		t.Error("a token lacking a role is offered the save form")
	}

	fill("admin")
	step("verifying the admin token and picking S3",
		chromedp.Click(chromedp.CSS(`form[action="/admin/connections/new"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#storages`)),
		chromedp.Click(chromedp.Search(`//label[text()="s3"]`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Studio iconik"),
	)
	screenshot(t, ctx, "connections-4-admin-storage-picker.png")
	if html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, emu.Cred("admin").Token) {
		t.Error("the verified page holds the token in clear")
	}
	step("saving",
		chromedp.Click(chromedp.CSS(`form[action="/admin/connections"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
	)
	screenshot(t, ctx, "connections-5-saved.png")
	if got := text(`.flash`); got != "Connection Studio iconik saved." {
		t.Errorf("flash %q", got)
	}
	if got := text(`#state`); !strings.Contains(got, "active") {
		t.Errorf("state %q", got)
	}
	if got := text(`dl`); !strings.Contains(got, "s3 (S3)") {
		t.Errorf("details %q", got)
	}

	step("the connection page at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
	)
	screenshot(t, ctx, "connections-6-page-phone.png")
	step("the list at phone width",
		chromedp.Navigate(h.srv.URL+"/admin/connections"),
		chromedp.WaitVisible(chromedp.CSS(`table`)),
	)
	screenshot(t, ctx, "connections-7-list-phone.png")
	if got := text(`tbody`); !strings.Contains(got, "Studio iconik") || !strings.Contains(got, "Portal Downloads") || !strings.Contains(got, "MASV") {
		t.Errorf("list %q", got)
	}

	// Delete, refused while a portal delivers to the connection: the page
	// says so inline, naming the portal. data-confirm asks first: accept.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	var list struct{ Connections []web.Connection }
	resp, body := h.req("GET", "/api/v1/connections", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Connections) != 1 {
		t.Fatalf("connections: %s", body)
	}
	id := list.Connections[0].ID
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "connection_ids": []string{id}})
	step("deleting a connection a portal uses",
		chromedp.EmulateViewport(1200, 1000),
		chromedp.Navigate(h.srv.URL+"/admin/connections/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
		chromedp.Click(chromedp.CSS(`form[action$="/delete"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)),
	)
	screenshot(t, ctx, "connections-8-delete-refused.png")
	if got := text(`p.error`); !strings.Contains(got, "Dailies") {
		t.Errorf("the refusal does not name the portal: %q", got)
	}
}
