package crashtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/testbed/child"
)

func uniq(local string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return local + "-" + hex.EncodeToString(b) + "@example.com"
}

func mailpitCount(t *testing.T, mp *testbed.MailServer, to string) int {
	t.Helper()
	resp, err := http.Get(mp.APIURL + "/api/v1/search?query=" + url.QueryEscape("to:"+to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []struct{ Subject string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return len(out.Messages)
}

// stallingSMTP accepts connections and never answers: a send that reached
// it is in flight, and nothing was delivered.
func stallingSMTP(t *testing.T) (addr string, accepted <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 64)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

// TestMessagesArriveExactlyOnceAfterSIGKILLBetweenEventAndSend: a package
// is finalized and then delivered into iconik (each event commits its
// messages) while the SMTP server stalls every send; ferry is killed with
// SIGKILL with all four sends in flight and restarted against a real SMTP
// server (Mailpit): every message arrives, exactly once.
func TestMessagesArriveExactlyOnceAfterSIGKILLBetweenEventAndSend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	mp := testbed.Mailpit(t)
	stall, accepted := stallingSMTP(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "ferry.log")
	data := filepath.Join(dir, "ferry")
	tok := child.AdminToken(t, ferryBin, "admin@crash.test", "--data", data)
	addr := freeAddr(t)
	serve := func(smtpAddr string) *proc {
		p := start(t, logPath, "serve", "--data", data, "--addr", addr, "--log-level", "warn",
			"--smtp-url", "smtp://ferry:pw@"+smtpAddr+"?tls=none", "--mail-from", "ferry <ferry@crash.test>")
		waitHTTP(t, "http://"+addr+"/healthz", p)
		return p
	}
	p := serve(stall)
	a := &api{T: t, Base: "http://" + addr, Token: tok}
	connID := emulatorConnection(t, a, dir, logPath)

	r1, r2, sender := uniq("producer"), uniq("editor"), uniq("sender")
	a.Do("POST", "/api/v1/portals", "", map[string]any{"name": "Crash", "slug": "crash", "active": true, "recipients": []string{r1, r2},
		"connection_ids": []string{connID}}, nil)
	var created struct {
		Package struct {
			ID string `json:"id"`
		} `json:"package"`
		UploadToken string `json:"upload_token"`
	}
	a.Do("POST", "/p/crash/packages", "", map[string]any{"name": "Rushes", "sender_email": sender}, &created)
	tusUpload(t, a.Base, created.UploadToken, "day 1/a.txt", []byte("hello\n"))
	a.Do("POST", "/p/crash/packages/"+created.Package.ID+"/finalize", created.UploadToken, nil, nil)

	// Three sends of the finalize event and the first "Transfer to iconik"
	// of the settled one (four workers) are in flight.
	for i := range 4 {
		select {
		case <-accepted:
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d sends reached the SMTP server", i)
		}
	}
	var before struct {
		Notifications []notification `json:"notifications"`
	}
	a.Do("GET", "/api/v1/packages/"+created.Package.ID+"/notifications", "", nil, &before)
	kinds := map[string]int{}
	for _, n := range before.Notifications {
		kinds[n.Kind]++
		if n.State != "queued" {
			t.Fatalf("before the kill: %+v", n)
		}
	}
	if kinds["new_package"] != 2 || kinds["receipt"] != 1 || kinds["transfer"] != 2 {
		t.Fatalf("before the kill the events recorded %v, want both events' messages", kinds)
	}
	p.Kill()
	for _, to := range []string{r1, r2, sender} {
		if n := mailpitCount(t, mp, to); n != 0 {
			t.Fatalf("%s got %d messages before the restart", to, n)
		}
	}

	p = serve(fmt.Sprintf("%s:%d", mp.SMTPHost, mp.SMTPPort))
	list := waitNotifications(a, created.Package.ID, 5)
	for _, n := range list {
		if n.State != "sent" || n.Transport != "smtp" {
			t.Fatalf("after the restart: %+v", n)
		}
	}
	// Killed again once all was sent, and restarted: nothing is sent again.
	p.Kill()
	serve(fmt.Sprintf("%s:%d", mp.SMTPHost, mp.SMTPPort))
	waitNotifications(a, created.Package.ID, 5)
	for to, want := range map[string]int{r1: 2, r2: 2, sender: 1} {
		if n := mailpitCount(t, mp, to); n != want {
			t.Fatalf("%s received %d messages, want exactly %d (New package and Transfer to iconik once each; one receipt)", to, n, want)
		}
	}
}

// TestDemoOutboxFillsOnTheFirstPackage: `ferry serve --demo` has no SMTP
// server; the demo portal's recipient (the admin) gets "New package", the
// sender a receipt, and the delivery "Transfer to iconik", all in the outbox
// that /admin/outbox shows.
func TestDemoOutboxFillsOnTheFirstPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	var info struct {
		FerryURL   string `json:"ferry_url"`
		APIToken   string `json:"api_token"`
		AdminEmail string `json:"admin_email"`
	}
	startDemo(t, dir, &info)
	a := &api{T: t, Base: info.FerryURL, Token: info.APIToken}
	var created struct {
		Package struct {
			ID string `json:"id"`
		} `json:"package"`
		UploadToken string `json:"upload_token"`
	}
	a.Do("POST", "/p/demo/packages", "", map[string]any{"name": "First", "sender_email": "me@example.com"}, &created)
	tusUpload(t, a.Base, created.UploadToken, "clips/a.txt", []byte("hello iconik\n"))
	a.Do("POST", "/p/demo/packages/"+created.Package.ID+"/finalize", created.UploadToken, nil, nil)
	list := waitNotifications(a, created.Package.ID, 3)
	kinds := map[string]string{}
	for _, n := range list {
		if n.State != "sent" || n.Transport != "outbox" {
			t.Fatalf("demo message %+v: want kept in the outbox", n)
		}
		kinds[n.Kind] = n.Recipient
	}
	if kinds["new_package"] != info.AdminEmail || kinds["receipt"] != "me@example.com" || kinds["transfer"] != info.AdminEmail {
		t.Fatalf("demo messages %+v", kinds)
	}
	page := string(a.Get("/admin/outbox"))
	for _, s := range []string{"New package &#34;First&#34; from me@example.com on Demo", "Transfer to iconik: &#34;First&#34; delivered", "<iframe sandbox"} {
		if !strings.Contains(page, s) {
			t.Fatalf("the outbox page lacks %q", s)
		}
	}
}

// emulatorConnection starts an iconik emulator process and connects ferry
// to its S3 storage; it returns the connection's id.
func emulatorConnection(t *testing.T, a *api, dir, logPath string) string {
	t.Helper()
	e := child.StartEmulator(t, ferryBin, logPath, filepath.Join(dir, "iconik"))
	body := map[string]any{"base_url": e.URL, "app_id": e.AppID, "token": e.Token}
	var v struct {
		Verification struct {
			Storages []struct {
				ID         string `json:"id"`
				Name       string `json:"name"`
				Selectable bool   `json:"selectable"`
			} `json:"storages"`
		} `json:"verification"`
	}
	a.Do("POST", "/api/v1/connections/verify", "", body, &v)
	for _, st := range v.Verification.Storages {
		if st.Name == "s3" && st.Selectable {
			body["storage_id"] = st.ID
		}
	}
	body["name"] = "emulator"
	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	a.Do("POST", "/api/v1/connections", "", body, &conn)
	return conn.Connection.ID
}
