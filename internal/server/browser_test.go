package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// browser starts headless Chromium for one test. On failure, the page as it
// was is saved as a screenshot among the test's artifacts (go test
// -artifacts keeps them), so a broken step can be seen, not guessed.
func browser(t *testing.T) context.Context {
	t.Helper()
	chromium := testbed.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1200, 1000),
		// A UTF-8 locale whatever the environment: under C/POSIX Chromium
		// reads a file with a non-ASCII name as empty.
		chromedp.Env("LANG=C.UTF-8", "LC_ALL=C.UTF-8"))
	if os.Getuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser on the long-lived context: the first run owns it,
	// and a run with a deadline would close it when the deadline passed.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			screenshot(t, ctx, "failed.png")
		}
		cancel()
		cancelAlloc()
	})
	return ctx
}

// within runs steps with a deadline, leaving the page usable afterwards (for
// the failure screenshot).
func within(ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// pageOutcome waits until the portal page shows "received" or an error, and
// returns "received" or the error text.
func pageOutcome(ctx context.Context, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		if (!document.getElementById('received').hidden) return 'received';
		const s = document.getElementById('status');
		return s.className === 'err' && s.textContent;
	})()`))
}

// screenshot writes the whole page to the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err == nil {
		t.Logf("screenshot: %s", p)
	}
}

// TestPortalPageUploadsAFolderTreeWithUppy drives the portal page (/p/{slug},
// Uppy's dashboard) in Chromium: a nested folder with an empty subfolder, a
// 64 MiB file (sent as parallel partials) and a non-ASCII name goes up as
// one package, which is finalized with every file byte for byte and the
// sender sees "received".
func TestPortalPageUploadsAFolderTreeWithUppy(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein", "welcome_message": "Drop your rushes here."})
	root, files := shootFolder(t, rand.NewPCG(1, 2))

	ctx := browser(t)
	if err := within(ctx, time.Minute,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "dop@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Rushes day 1"),
		chromedp.SendKeys(chromedp.CSS(`#description`), "Camera A"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "letmein"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input[webkitdirectory]`), []string{root}),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	); err != nil {
		t.Fatalf("filling the portal form and dropping the folder: %v", err)
	}
	screenshot(t, ctx, "1-files-added.png")
	if err := within(ctx, 10*time.Second, chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`))); err != nil {
		t.Fatalf("pressing upload: %v", err)
	}
	if out, err := pageOutcome(ctx, 2*time.Minute); err != nil || out != "received" {
		t.Fatalf("the upload ended with %q (%v)", out, err)
	}
	screenshot(t, ctx, "2-received.png")
	// The sender's receipt lists what arrived.
	if err := within(ctx, 30*time.Second,
		chromedp.Click(chromedp.CSS(`[data-receipt]`)),
		chromedp.WaitVisible(chromedp.CSS(`table`)),
	); err != nil {
		t.Fatalf("opening the receipt: %v", err)
	}
	receipt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil || !strings.Contains(receipt, "Shoot/Day 1/clip A.mov") || !strings.Contains(receipt, "Rushes day 1") {
		t.Fatalf("the receipt page says %q (%v)", receipt, err)
	}
	screenshot(t, ctx, "3-receipt.png")

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
		t.Fatalf("files (the empty folder must not be sent): %s", body)
	}
	for _, f := range got.Package.Files {
		want, ok := files[f.Path]
		sum := sha256.Sum256(want)
		// A file sent as parallel partials gets its whole-file SHA-256 on
		// its first sequential read (delivery or download), not at arrival.
		if !ok || f.State != "complete" || f.Size != int64(len(want)) || f.SHA256 != "" && f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("file %+v does not match what the browser sent", f)
		}
	}
	for name, b := range h.downloadZip(got.Package.ID) {
		if !bytes.Equal(b, files[name]) {
			t.Errorf("%s: the stored bytes differ from what the browser sent", name)
		}
	}
}

// downloadZip reads a package back through a download link, as a recipient
// would: path -> bytes.
func (h *harness) downloadZip(pkgID string) map[string][]byte {
	h.t.Helper()
	var link struct{ Token, URL string }
	resp, body := h.req("POST", "/api/v1/packages/"+pkgID+"/links", map[string]any{"expires_in": "1h"}, h.admin()...)
	h.mustJSON(resp, body, 201, &link)
	resp, body = h.req("GET", link.URL+"/zip", nil)
	if resp.StatusCode != 200 {
		h.t.Fatalf("zip: %d %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			h.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			h.t.Fatal(err)
		}
		out[zf.Name] = b
	}
	return out
}

// restartOnSameAddress stops the server as a crash would (every connection
// cut mid-request) and starts it again on the same data directory and the
// same address, so that a page open in a browser can reconnect to it.
func (h *harness) restartOnSameAddress() {
	h.t.Helper()
	addr := h.srv.Listener.Addr().String()
	h.srv.CloseClientConnections()
	h.srv.Close()
	if err := h.app.Close(); err != nil {
		h.t.Fatal(err)
	}
	app, err := Open(h.t.Context(), h.cfg, Options{NoSync: true, Now: func() time.Time { return h.now }})
	if err != nil {
		h.t.Fatalf("the server does not start again on the same data directory: %v", err)
	}
	var ln net.Listener
	for range 50 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("listening again on %s: %v", addr, err)
	}
	h.app = app
	h.srv = httptest.NewUnstartedServer(app.Handler())
	h.srv.Listener.Close()
	h.srv.Listener = ln
	h.srv.Start()
	srv := h.srv
	h.t.Cleanup(func() {
		// A browser still open (its event streams never end) would keep
		// Close waiting: cut its connections first.
		srv.CloseClientConnections()
		srv.Close()
		app.Close()
	})
}

// TestPortalPageFinishesAnUploadAcrossAServerRestart restarts the server in
// the middle of an upload from the portal page; the page retries on its own
// and finishes the package without a click, byte for byte.
func TestPortalPageFinishesAnUploadAcrossAServerRestart(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies"})
	dir := t.TempDir()
	files := map[string][]byte{
		"big.mov":   randBytes(rand.New(rand.NewPCG(3, 4)), 160<<20), // parallel partials
		"small.mov": randBytes(rand.New(rand.NewPCG(5, 6)), 24<<20),  // one stream
	}
	var paths []string
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx := browser(t)
	// Slow the browser's uploads down so that the restart lands mid-upload.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Latency: 5, DownloadThroughput: -1, UploadThroughput: 12 << 20}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := within(ctx, time.Minute,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "dop@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Across a restart"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input:not([webkitdirectory])`), paths),
		chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	); err != nil {
		t.Fatalf("starting the upload: %v", err)
	}
	// Wait until a good part is up, then restart the server under it.
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	progress, err := chromedp.Run(pctx, chromedp.Poll[int](`(() => { const p = window.ferryUppy.getState().totalProgress; return p >= 25 && p; })()`))
	cancel()
	if err != nil {
		t.Fatalf("waiting for the upload to get going: %v", err)
	}
	screenshot(t, ctx, "1-before-restart.png")
	h.restartOnSameAddress()
	t.Logf("server restarted at %d%% of the upload", progress)
	if out, err := pageOutcome(ctx, 3*time.Minute); err != nil || out != "received" {
		t.Fatalf("after the restart the page ended with %q (%v)", out, err)
	}
	screenshot(t, ctx, "2-received.png")
	var list struct{ Packages []web.Package }
	resp, body := h.req("GET", "/api/v1/packages?state=finalized", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Packages) != 1 {
		t.Fatalf("finalized packages: %s", body)
	}
	got := h.downloadZip(list.Packages[0].ID)
	for name, want := range files {
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s: %d bytes stored, the browser sent %d (or they differ)", name, len(got[name]), len(want))
		}
	}
}

// TestPortalPageResumesAfterAReload closes the page in the middle of an
// upload and opens it again: Golden Retriever gives the file back, the page
// continues into the same package, and the file arrives once, whole.
func TestPortalPageResumesAfterAReload(t *testing.T) {
	h := newHarness(t)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies"})
	data := randBytes(rand.New(rand.NewPCG(11, 12)), 8<<20) // small enough for the browser to keep (IndexedDB)
	p := filepath.Join(t.TempDir(), "take 3.wav")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: 1 << 20}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := within(ctx, time.Minute,
		chromedp.Navigate(h.srv.URL+"/p/dailies"),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
		chromedp.SendKeys(chromedp.CSS(`#sender_email`), "dop@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Across a reload"),
		chromedp.SetUploadFiles(chromedp.CSS(`input.uppy-Dashboard-input:not([webkitdirectory])`), []string{p}),
		chromedp.Click(chromedp.CSS(`.uppy-StatusBar-actionBtn--upload`)),
	); err != nil {
		t.Fatalf("starting the upload: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := chromedp.Run(pctx, chromedp.Poll[bool](`window.ferryUppy.getState().totalProgress >= 20`))
	cancel()
	if err != nil {
		t.Fatalf("waiting for the upload to get going: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := within(ctx, time.Minute,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`.uppy-Dashboard`)),
	); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	// The file comes back (Golden Retriever) and the upload goes on when
	// the sender presses upload (or resume) again.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = chromedp.Run(rctx, chromedp.Poll[bool](`window.ferryUppy.getFiles().length === 1 && !!document.querySelector('.uppy-StatusBar-actionBtn--upload, .uppy-StatusBar-actionBtn--retry, button[aria-label="Resume"]')`))
	cancel()
	screenshot(t, ctx, "reload-1-restored.png")
	if err != nil {
		t.Fatalf("the file did not come back after the reload: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = document.querySelector('.uppy-StatusBar-actionBtn--upload, .uppy-StatusBar-actionBtn--retry, button[aria-label="Resume"]'); b.click(); return true })()`)); err != nil {
		t.Fatal(err)
	}
	if out, err := pageOutcome(ctx, 2*time.Minute); err != nil || out != "received" {
		t.Fatalf("after the reload the page ended with %q (%v)", out, err)
	}
	var list struct{ Packages []web.Package }
	resp, body := h.req("GET", "/api/v1/packages", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Packages) != 1 || list.Packages[0].State != "finalized" || list.Packages[0].FileCount != 1 {
		t.Fatalf("packages after the reload (one, finalized, one file): %s", body)
	}
	if got := h.downloadZip(list.Packages[0].ID)["take 3.wav"]; !bytes.Equal(got, data) {
		t.Fatalf("the stored file differs (%d bytes, want %d)", len(got), len(data))
	}
}

// shootFolder writes the folder the portal tests drop: nested folders, an
// empty subfolder (never sent), a 64 MiB file (sent as parallel partials)
// and a non-ASCII name. It returns the folder and its files by the path
// they take in the package.
func shootFolder(t *testing.T, src rand.Source) (string, map[string][]byte) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Shoot")
	files := map[string][]byte{
		"Shoot/Day 1/clip A.mov":  randBytes(rand.New(src), 64<<20),
		"Shoot/Day 1/notes.txt":   []byte("call sheet\n"),
		"Shoot/Café – días ñ.txt": []byte("non-ASCII names survive\n"),
	}
	for rel, data := range files {
		p := filepath.Join(filepath.Dir(root), filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "Empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, files
}
