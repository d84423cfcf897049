package server

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/config"
)

// tlsProxy is a reverse proxy terminating TLS in front of target, the way
// nginx and Caddy sit in front of ferry: it appends the client's address to
// X-Forwarded-For, sets X-Forwarded-Proto and X-Forwarded-Host to what the
// client used, and sends ferry its own Host (so a Location built from the
// request alone names neither the scheme nor the host the client knows).
func tlsProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
	}})
	t.Cleanup(p.Close)
	return p
}

// clientFrom is an HTTP client whose connections come from the loopback
// address from (127.0.0.2, 127.0.0.3, ...): one sender each, as two
// people on two networks reach the same proxy.
func clientFrom(t *testing.T, from string, tlsConf *tls.Config) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: tlsConf}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func call(t *testing.T, c *http.Client, method, u string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func trusting(list string) func(*config.Config) {
	return func(c *config.Config) { c.TrustedProxies = list }
}

// TestTusLocationBehindATrustedTLSProxyLeadsBackThroughIt: a browser on
// https is given an https Location on the proxy's host, and the upload
// continues there (a PATCH and a HEAD through the proxy).
func TestTusLocationBehindATrustedTLSProxyLeadsBackThroughIt(t *testing.T) {
	h := newHarnessWith(t, trusting("127.0.0.1"))
	proxy := tlsProxy(t, h.srv.URL)
	c := clientFrom(t, "127.0.0.2", proxy.Client().Transport.(*http.Transport).TLSClientConfig)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies"})
	pkg := h.newPackage("dailies")

	data := []byte("twenty bytes of clip")
	meta := "package_token " + b64(pkg.UploadToken) + ",relativePath " + b64("day1/clip.mov") + ",filename " + b64("clip.mov")
	tus := []string{"Tus-Resumable", "1.0.0", "Authorization", "Bearer " + pkg.UploadToken}
	resp, body := call(t, c, "POST", proxy.URL+"/uploads/", nil,
		append(tus, "Upload-Length", strconv.Itoa(len(data)), "Upload-Metadata", meta)...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creation through the proxy: %s: %s", resp.Status, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, proxy.URL+"/uploads/") {
		t.Fatalf("Location %q does not lead back through the proxy at %s (a browser on https refuses an http:// PATCH)", loc, proxy.URL)
	}
	resp, body = call(t, c, "PATCH", loc, data[:8],
		append(tus, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")...)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH at the Location: %s: %s", resp.Status, body)
	}
	resp, _ = call(t, c, "HEAD", loc, nil, tus...)
	if got := resp.Header.Get("Upload-Offset"); resp.StatusCode != http.StatusOK || got != "8" {
		t.Fatalf("HEAD at the Location to resume: %s, offset %q, want 8", resp.Status, got)
	}
	resp, body = call(t, c, "PATCH", loc, data[8:],
		append(tus, "Upload-Offset", "8", "Content-Type", "application/offset+octet-stream")...)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("the rest at the Location: %s offset %s: %s", resp.Status, resp.Header.Get("Upload-Offset"), body)
	}
	// The console builds the portal's link the same way (no --public-url here).
	resp, body = call(t, c, "GET", proxy.URL+"/admin/portals", nil, h.admin()...)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), proxy.URL+"/p/dailies") {
		t.Fatalf("the console's portal list through the proxy (%s) does not link to %s/p/dailies:\n%s", resp.Status, proxy.URL, body)
	}
}

// TestSendersBehindATrustedProxyHaveTheirOwnPasswordBuckets: wrong portal
// passwords from one sender do not lock out another sender behind the same
// proxy, and the first cannot buy a fresh bucket by sending its own
// X-Forwarded-For (the proxy appends the real address after it).
func TestSendersBehindATrustedProxyHaveTheirOwnPasswordBuckets(t *testing.T) {
	h := newHarnessWith(t, trusting("127.0.0.1/32, ::1"))
	proxy := tlsProxy(t, h.srv.URL)
	tlsConf := proxy.Client().Transport.(*http.Transport).TLSClientConfig
	guesser, colleague := clientFrom(t, "127.0.0.2", tlsConf), clientFrom(t, "127.0.0.3", tlsConf)
	h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein"})

	create := func(c *http.Client, password string, hdr ...string) int {
		t.Helper()
		body := fmt.Sprintf(`{"name":"Shoot","sender_email":"s@example.com","password":%q}`, password)
		resp, _ := call(t, c, "POST", proxy.URL+"/p/dailies/packages", []byte(body), append(hdr, "Content-Type", "application/json")...)
		return resp.StatusCode
	}
	for i := range 5 {
		if got := create(guesser, "guess"+strconv.Itoa(i)); got != http.StatusUnauthorized {
			t.Fatalf("wrong guess %d: %d, want 401", i, got)
		}
	}
	if got := create(guesser, "guess5"); got != http.StatusTooManyRequests {
		t.Fatalf("sixth wrong guess from the same sender: %d, want 429", got)
	}
	if got := create(guesser, "guess6", "X-Forwarded-For", "198.51.100.7"); got != http.StatusTooManyRequests {
		t.Fatalf("the guesser naming another address in X-Forwarded-For got %d, want 429 (its own bucket)", got)
	}
	if got := create(colleague, "typo"); got != http.StatusUnauthorized {
		t.Fatalf("another sender behind the proxy, first wrong password: %d, want 401 (a bucket of its own)", got)
	}
	if got := create(colleague, "letmein"); got != http.StatusCreated {
		t.Fatalf("another sender behind the proxy, right password: %d, want 201", got)
	}
}

// TestForwardedHeadersFromAnUntrustedPeerChangeNothing: a client talking to
// ferry directly (nobody trusted, or only other addresses) cannot move the
// Location elsewhere nor get a fresh password bucket per request with
// forged X-Forwarded-* or Forwarded headers.
func TestForwardedHeadersFromAnUntrustedPeerChangeNothing(t *testing.T) {
	for _, trusted := range []string{"", "10.0.0.0/8, 192.0.2.1"} {
		t.Run("trusted="+trusted, func(t *testing.T) {
			h := newHarnessWith(t, trusting(trusted))
			h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "password": "letmein"})
			pkg := h.newPackage("dailies")
			forged := func(i int) []string {
				return []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i), "X-Forwarded-Proto", "https",
					"X-Forwarded-Host", "evil.example", "Forwarded", fmt.Sprintf(`for="203.0.113.%d";proto=https;host=evil.example`, i)}
			}
			meta := "package_token " + b64(pkg.UploadToken) + ",relativePath " + b64("a.mov") + ",filename " + b64("a.mov")
			resp, body := h.req("POST", "/uploads/", nil, append(forged(1), "Tus-Resumable", "1.0.0",
				"Authorization", "Bearer "+pkg.UploadToken, "Upload-Length", "4", "Upload-Metadata", meta)...)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("creation: %s: %s", resp.Status, body)
			}
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, h.srv.URL+"/uploads/") {
				t.Fatalf("forged headers moved the Location to %q, want it under %s", loc, h.srv.URL)
			}
			for i := range 5 {
				resp, body := h.req("POST", "/p/dailies/packages", map[string]string{"name": "S", "sender_email": "s@example.com", "password": "nope"}, forged(10+i)...)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong guess %d: %s: %s", i, resp.Status, body)
				}
			}
			resp, body = h.req("POST", "/p/dailies/packages", map[string]string{"name": "S", "sender_email": "s@example.com", "password": "nope"}, forged(99)...)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("sixth wrong guess under yet another forged address: %s: %s, want 429", resp.Status, body)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestLinkPasswordGuessesBehindATrustedProxyAreCountedPerSender: download
// link passwords sent as X-Link-Password share the same limit; one
// sender's wrong guesses lock out that sender only.
func TestLinkPasswordGuessesBehindATrustedProxyAreCountedPerSender(t *testing.T) {
	h := newHarnessWith(t, trusting("127.0.0.1"))
	proxy := tlsProxy(t, h.srv.URL)
	tlsConf := proxy.Client().Transport.(*http.Transport).TLSClientConfig
	guesser, recipient := clientFrom(t, "127.0.0.2", tlsConf), clientFrom(t, "127.0.0.3", tlsConf)
	h.portal(map[string]any{"name": "P", "slug": "p", "password": "letmein"})
	pkg := h.newPackage("p")
	h.upload(pkg.UploadToken, "a.mov", []byte("0123456789"))
	resp, body := h.req("POST", "/p/p/packages/"+pkg.Package.ID+"/finalize", nil, "Authorization", "Bearer "+pkg.UploadToken)
	h.mustJSON(resp, body, 200, nil)
	var l struct{ URL string }
	resp, body = h.req("POST", "/api/v1/packages/"+pkg.Package.ID+"/links", map[string]any{"password": "open sesame"}, h.admin()...)
	h.mustJSON(resp, body, 201, &l)
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	zip := proxy.URL + u.Path + "/zip"
	get := func(c *http.Client, password string) int {
		t.Helper()
		resp, _ := call(t, c, "GET", zip, nil, "X-Link-Password", password)
		return resp.StatusCode
	}
	for i := range 5 {
		if got := get(guesser, "guess"+strconv.Itoa(i)); got != http.StatusUnauthorized {
			t.Fatalf("wrong guess %d: %d, want 401", i, got)
		}
	}
	if got := get(guesser, "open sesame"); got != http.StatusUnauthorized {
		t.Fatalf("the guesser, out of attempts, with the right password: %d, want 401 (still limited)", got)
	}
	if got := get(recipient, "open sesame"); got != http.StatusOK {
		t.Fatalf("another recipient behind the proxy with the right password: %d, want 200 (its own budget)", got)
	}
}
