package server

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// TestConsolePackagePageWatchesADeliveryLive walks the packages console in
// Chromium against the real App: an admin signs in, finds the package in the
// list, opens it while its delivery into the emulator's S3 storage is still
// queued, and sees it reach "delivered" without reloading the page (server-
// sent events), then makes a download link and sees its absolute URL.
func TestConsolePackagePageWatchesADeliveryLive(t *testing.T) {
	h := newHarness(t)
	emu := emulatortest.Start(t, emulator.Options{})
	connID := connectEmulator(t, h, emu)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "active": true, "connection_ids": []string{connID}})

	// A package, finalized while no delivery worker runs: its delivery waits
	// queued until the page is open.
	var pkg created
	resp, body := h.req("POST", "/p/dailies/packages", map[string]string{"name": "Shoot day 1", "sender_email": "dop@example.com", "description": "Camera A"})
	h.mustJSON(resp, body, 201, &pkg)
	for p, size := range map[string]int{"Card A/Clip 1.mov": 3 << 20, "Card A/Audio/take 1.wav": 64 << 10, "notes é.txt": 20} {
		h.upload(pkg.UploadToken, p, []byte(strings.Repeat("x", size)))
	}
	// A still the emulator makes a keyframe of (Go decodes PNG).
	img := image.NewRGBA(image.Rect(0, 0, 320, 180))
	for x := range 320 {
		for y := range 180 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 160, 255})
		}
	}
	var still bytes.Buffer
	if err := png.Encode(&still, img); err != nil {
		t.Fatal(err)
	}
	h.upload(pkg.UploadToken, "Card A/still.png", still.Bytes())
	resp, body = h.req("POST", "/p/dailies/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, nil)

	ctx := browser(t)
	if err := within(ctx, time.Minute,
		chromedp.Navigate(h.srv.URL+"/admin/packages"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "admin@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		// Signed in once the page carries the sign-out form (polling the
		// location instead would race the navigation).
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	if err := within(ctx, time.Minute,
		chromedp.Navigate(h.srv.URL+"/admin/packages"),
		chromedp.WaitVisible(chromedp.CSS(`#f-q`)),
		chromedp.SendKeys(chromedp.CSS(`#f-q`), "day 1"),
		chromedp.Submit(chromedp.CSS(`#f-q`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/packages/`+pkg.Package.ID+`"]`)),
	); err != nil {
		t.Fatalf("searching the packages: %v", err)
	}
	screenshot(t, ctx, "packages-1-list.png")
	if err := within(ctx, 30*time.Second,
		chromedp.Click(chromedp.CSS(`a[href="/admin/packages/`+pkg.Package.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-delivery] h3 .badge`)),
	); err != nil {
		t.Fatalf("opening the package: %v", err)
	}
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { window.ferryNotReloaded = true; return document.querySelector('[data-delivery] h3 .badge').textContent })()`))
	if err != nil || state != "queued" {
		t.Fatalf("before the worker runs the page shows %q (%v)", state, err)
	}
	screenshot(t, ctx, "packages-2-queued.png")

	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = chromedp.Run(pctx, chromedp.Poll[bool](`document.querySelector('[data-delivery] h3 .badge').textContent === 'delivered'`))
	cancel()
	if err != nil {
		t.Fatalf("the page never showed delivered: %v", err)
	}
	live, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ferryNotReloaded === true && [...document.querySelectorAll('[data-file] [data-field=state]')].every(e => e.textContent === 'delivered')`))
	if err != nil || !live {
		t.Fatalf("delivered was not shown live on the same page, every file delivered (%v)", err)
	}
	// The still's keyframe comes through ferry's proxy once iconik made it
	// (the emulator transcodes after the delivery settles).
	kctx, kcancel := context.WithTimeout(ctx, time.Minute)
	_, err = chromedp.Run(kctx, chromedp.Poll[bool](`(() => {
		const row = [...document.querySelectorAll('[data-file]')].find(r => r.textContent.includes('still.png'));
		const img = row && row.querySelector('img.thumb');
		if (img && img.hidden) { img.hidden = false; img.src = img.src.split('?')[0] + '?t=' + Date.now(); }
		return !!img && img.complete && img.naturalWidth > 0;
	})()`, chromedp.WithPollingInterval(time.Second)))
	kcancel()
	if err != nil {
		t.Fatalf("the still's keyframe never showed: %v", err)
	}
	screenshot(t, ctx, "packages-3-delivered.png")

	if err := within(ctx, 30*time.Second,
		chromedp.SendKeys(chromedp.CSS(`#l-max`), "2"),
		chromedp.Submit(chromedp.CSS(`#l-max`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-link`)),
	); err != nil {
		t.Fatalf("creating a download link: %v", err)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#new-link').value`))
	if err != nil || !strings.HasPrefix(link, h.srv.URL+"/d/") {
		t.Fatalf("link field %q (%v)", link, err)
	}
	if resp, body := h.req("GET", strings.TrimPrefix(link, h.srv.URL), nil); resp.StatusCode != 200 || !strings.Contains(string(body), "Clip 1.mov") {
		t.Fatalf("the new link: %d %.300s", resp.StatusCode, body)
	}
	screenshot(t, ctx, "packages-4-link.png")
	if err := within(ctx, 30*time.Second, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "packages-5-phone.png")
}
