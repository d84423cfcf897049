package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// TestPortalPageUploadsAFolderInARealBrowser drives the minimal portal page
// (/p/{slug}) in Chromium: fill the form, pick files, send, and the package
// arrives finalized with its files.
func TestPortalPageUploadsAFolderInARealBrowser(t *testing.T) {
	chromium := testbed.Chromium(t)
	h := newHarness(t)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein", "welcome_message": "Drop your rushes here."})
	dir := t.TempDir()
	files := map[string][]byte{"clip A.mov": make([]byte, 20<<20+5), "notes.txt": []byte("call sheet\n")}
	var paths []string
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium))
	if os.Getuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Rushes day 1"),
		chromedp.SendKeys(chromedp.ID("sender_email"), "dop@example.com"),
		chromedp.SendKeys(chromedp.ID("description"), "Camera A"),
		chromedp.SendKeys(chromedp.ID("password"), "letmein"),
		chromedp.SetUploadFiles(chromedp.ID("files"), paths),
		chromedp.Click(chromedp.CSS("button")),
	); err != nil {
		t.Fatalf("filling the portal form: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => { const s = document.getElementById('status'); return (s.textContent.startsWith('Sent') || s.className === 'err') && s.textContent; })()`))
	if err != nil {
		t.Fatalf("waiting for the upload to end: %v", err)
	}
	if status != "Sent. Thank you!" {
		t.Fatalf("the page says %q", status)
	}

	var list struct{ Packages []web.Package }
	resp, body := h.req("GET", "/api/v1/packages?state=finalized", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Packages) != 1 || list.Packages[0].Name != "Rushes day 1" || list.Packages[0].SenderEmail != "dop@example.com" {
		t.Fatalf("finalized packages: %s", body)
	}
	var got struct{ Package web.Package }
	resp, body = h.req("GET", "/api/v1/packages/"+list.Packages[0].ID, nil, h.admin()...)
	h.mustJSON(resp, body, 200, &got)
	if len(got.Package.Files) != len(files) {
		t.Fatalf("files: %s", body)
	}
	for _, f := range got.Package.Files {
		if f.State != "complete" || f.Size != int64(len(files[f.Path])) {
			t.Fatalf("file %+v does not match what the browser sent", f)
		}
	}
}
