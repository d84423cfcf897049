package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/config"
)

// seeText waits until the page's visible text contains want.
// It asks again while a form post navigates (the page being asked may go
// away under the question), until the step's deadline.
func seeText(want string) chromedp.Action[chromedp.Void] {
	check := chromedp.Evaluate[bool](`!!(document.body && document.body.innerText.includes(` + strconv.Quote(want) + `))`)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			if ok, err := check(ctx, t); err == nil && ok {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("waiting to see %q: %w", want, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// TestConsoleCorePagesInChromium walks a fresh server's console as a new
// admin would: the first-run form (a mismatch refused inline), the
// dashboard, a new portal with a password and a size limit, an API token
// shown once, a second admin, signing out, a wrong password shown inline and
// the return to the page asked for; and the portal form at phone width.
func TestConsoleCorePagesInChromium(t *testing.T) {
	cfg := config.Default("")
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	app, err := Open(t.Context(), cfg, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	ctx := browser(t)
	step := func(name string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := within(ctx, d, steps...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	step("first run: passwords that differ", 30*time.Second,
		chromedp.Navigate(srv.URL+"/"),
		seeText("This server has no admin yet"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "first@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.SendKeys(chromedp.CSS(`#password2`), "a long enough passw0rd"),
		chromedp.Click(chromedp.CSS(`form button`)),
		seeText("The two passwords differ"),
	)
	screenshot(t, ctx, "core-1-firstrun-refused.png")
	step("first run: the admin", 30*time.Second,
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.SendKeys(chromedp.CSS(`#password2`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form button`)),
		seeText("Your admin account is ready"),
		seeText("No portals yet"),
	)
	screenshot(t, ctx, "core-2-dashboard-empty.png")

	step("new portal", 30*time.Second,
		chromedp.Navigate(srv.URL+"/admin/portals/new"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Dailies"),
		chromedp.SendKeys(chromedp.CSS(`#slug`), "dailies"),
		chromedp.Click(chromedp.CSS(`#pw-set`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), "letmein"),
		chromedp.SendKeys(chromedp.CSS(`#recipients`), "producer@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#welcome_message`), "Drop your rushes here."),
		chromedp.SendKeys(chromedp.CSS(`#max_file_size`), "20 GB"),
		chromedp.SendKeys(chromedp.CSS(`#allowed_extensions`), "mov, mxf"),
		chromedp.Click(chromedp.CSS(`form.stack button`)),
		seeText("Portal saved."),
		seeText(srv.URL+"/p/dailies"),
	)
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#max_file_size`))); err != nil || v != "20 GB" {
		t.Fatalf("the size limit reads back as %q (%v)", v, err)
	}
	screenshot(t, ctx, "core-3-portal-saved.png")
	step("a bad recipient is refused inline", 30*time.Second,
		chromedp.SetValue(chromedp.CSS(`#recipients`), "producer@example.com, not-an-email"),
		chromedp.Click(chromedp.CSS(`form.stack button`)),
		seeText(`Recipient "not-an-email" is not an email address`),
	)
	screenshot(t, ctx, "core-3b-portal-refused.png")

	// A sender starts a package through the portal's API, as the page does.
	resp, err := http.Post(srv.URL+"/p/dailies/packages", "application/json",
		strings.NewReader(`{"name":"Day 1 rushes","sender_email":"dop@example.com","password":"letmein"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("starting a package: %v %v", err, resp)
	}
	resp.Body.Close()
	step("the portal page asks for the password", 30*time.Second,
		chromedp.Navigate(srv.URL+"/p/dailies"), seeText("Drop your rushes here."))

	step("dashboard lists the portal and the package", 30*time.Second, chromedp.Navigate(srv.URL+"/"), seeText(srv.URL+"/p/dailies"), seeText("Day 1 rushes"))
	screenshot(t, ctx, "core-4-dashboard.png")

	step("API token", 30*time.Second,
		chromedp.Navigate(srv.URL+"/admin/tokens"),
		chromedp.SendKeys(chromedp.CSS(`#token-name`), "ingest script"),
		chromedp.SendKeys(chromedp.CSS(`#expires_days`), "30"),
		chromedp.Click(chromedp.CSS(`form.stack button`)),
		seeText("shown only this once"),
	)
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#token-secret`)))
	if err != nil || len(strings.TrimSpace(secret)) < 20 {
		t.Fatalf("token secret %q (%v)", secret, err)
	}
	screenshot(t, ctx, "core-5-token-created.png")
	step("token list", 30*time.Second, chromedp.Navigate(srv.URL+"/admin/tokens"), seeText("ingest script"))
	screenshot(t, ctx, "core-6-tokens.png")

	step("second admin", 30*time.Second,
		chromedp.Navigate(srv.URL+"/admin/users"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "second@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "another long password"),
		chromedp.SendKeys(chromedp.CSS(`#password2`), "another long password"),
		chromedp.Click(chromedp.CSS(`form.stack button`)),
		seeText("Admin second@example.com added"),
	)
	screenshot(t, ctx, "core-7-admins.png")

	step("sign out, wrong password, back to the page asked for", 30*time.Second,
		chromedp.Click(chromedp.CSS(`.signout button`)),
		seeText("Signed out."),
		chromedp.Navigate(srv.URL+"/admin/portals"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "first@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "wrong password"),
		chromedp.Click(chromedp.CSS(`form button`)),
		seeText("The email or password is wrong."),
	)
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#email`))); v != "first@example.com" {
		t.Fatalf("the email was not kept: %q", v)
	}
	screenshot(t, ctx, "core-8-signin-refused.png")
	step("sign in", 30*time.Second,
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form button`)),
		seeText("Dailies"),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != srv.URL+"/admin/portals" {
		t.Fatalf("after signing in: %s, want the portal list asked for", loc)
	}
	screenshot(t, ctx, "core-9-portals.png")

	step("phone width", 30*time.Second,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/admin/portals"),
		chromedp.Click(chromedp.CSS(`td a`)),
		seeText("Deliver to Cloud"),
	)
	screenshot(t, ctx, "core-10-portal-phone.png")
}
