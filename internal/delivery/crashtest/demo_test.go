package crashtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
)

// TestServeDemoRunsTheWholeLoop starts `ferry serve --demo`, reads the
// credentials it wrote to demo.json, uploads a package to the demo portal
// and sees it delivered into the in-process iconik emulator; a restart keeps
// the same credentials and emulator.
func TestServeDemoRunsTheWholeLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	var info struct {
		FerryURL  string `json:"ferry_url"`
		APIToken  string `json:"api_token"`
		PortalURL string `json:"portal_url"`
		IconikURL string `json:"iconik_url"`
	}
	p := startDemo(t, dir, &info)
	if info.APIToken == "" || info.PortalURL != info.FerryURL+"/p/demo" || info.IconikURL == "" {
		t.Fatalf("demo.json %+v", info)
	}
	// A restart reuses the seeded demo. (Graceful here; that the emulator
	// also survives SIGKILL is TestServeDemoIconikKeepsWhatItAnsweredAcrossSIGKILL.)
	p.Stop(t)
	p = start(t, filepath.Join(dir, "demo.log"), "serve", "--demo", "--data", dir, "--addr", strings.TrimPrefix(info.FerryURL, "http://"), "--log-level", "warn")
	waitHTTP(t, info.FerryURL+"/healthz", p)
	waitHTTP(t, info.IconikURL+"/", p)

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
	var list struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	a.Do("GET", "/api/v1/packages/"+created.Package.ID+"/deliveries", "", nil, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("%d deliveries", len(list.Deliveries))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var d struct {
			Delivery deliveryJSON `json:"delivery"`
		}
		a.Do("GET", "/api/v1/deliveries/"+list.Deliveries[0].ID, "", nil, &d)
		if d.Delivery.State == "delivered" {
			return
		}
		if d.Delivery.State != "queued" && d.Delivery.State != "running" || time.Now().After(deadline) {
			t.Fatalf("demo delivery %+v", d.Delivery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeDemoIconikKeepsWhatItAnsweredAcrossSIGKILL: the demo's
// in-process iconik emulator is durable. Collections it answered 201 for,
// the last of them a moment before `ferry serve --demo` is killed with
// SIGKILL, are all there after the restart (ferry recorded their ids; a
// lost write would leave it holding ids iconik never heard of).
func TestServeDemoIconikKeepsWhatItAnsweredAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	var info struct {
		FerryURL    string `json:"ferry_url"`
		IconikURL   string `json:"iconik_url"`
		IconikAppID string `json:"iconik_app_id"`
		IconikToken string `json:"iconik_token"`
	}
	p := startDemo(t, dir, &info)
	cl, err := iconik.New(iconik.Options{BaseURL: info.IconikURL, AppID: info.IconikAppID, Token: info.IconikToken, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		c, err := cl.CollectionCreate(t.Context(), iconik.CollectionCreateParams{Title: fmt.Sprintf("answered %d", i), IsRoot: new(true)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	p.Kill() // right after the last answer
	p = start(t, filepath.Join(dir, "demo.log"), "serve", "--demo", "--data", dir, "--addr", strings.TrimPrefix(info.FerryURL, "http://"), "--log-level", "warn")
	waitHTTP(t, info.FerryURL+"/healthz", p)
	waitHTTP(t, info.IconikURL+"/", p)
	var lost []string
	for i, id := range ids {
		if _, err := cl.CollectionGet(t.Context(), id); err != nil {
			lost = append(lost, fmt.Sprintf("#%d %s: %v", i, id, err))
		}
	}
	if len(lost) > 0 {
		t.Fatalf("after SIGKILL the emulator lost %d of the %d collections it had answered for:\n%s", len(lost), len(ids), strings.Join(lost, "\n"))
	}
}
