package crashtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	logPath := filepath.Join(dir, "demo.log")
	addr := freeAddr(t)
	p := start(t, logPath, "serve", "--demo", "--data", dir, "--addr", addr, "--log-level", "warn")
	waitHTTP(t, "http://"+addr+"/healthz", p)
	var info struct {
		FerryURL  string `json:"ferry_url"`
		APIToken  string `json:"api_token"`
		PortalURL string `json:"portal_url"`
		IconikURL string `json:"iconik_url"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		if err == nil && json.Unmarshal(b, &info) == nil && info.FerryURL != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo.json: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if info.APIToken == "" || info.PortalURL != info.FerryURL+"/p/demo" || info.IconikURL == "" {
		t.Fatalf("demo.json %+v", info)
	}
	// A restart reuses the seeded demo. (Graceful: SIGKILL would also kill
	// the in-process emulator, whose state is not crash-safe; the crash test
	// runs iconik in its own process for that reason.)
	p.stop(t)
	p = start(t, logPath, "serve", "--demo", "--data", dir, "--addr", addr, "--log-level", "warn")
	waitHTTP(t, "http://"+addr+"/healthz", p)
	waitHTTP(t, info.IconikURL+"/", p)

	a := &api{t: t, base: info.FerryURL, token: info.APIToken}
	var created struct {
		Package struct {
			ID string `json:"id"`
		} `json:"package"`
		UploadToken string `json:"upload_token"`
	}
	a.do("POST", "/p/demo/packages", "", map[string]any{"name": "First", "sender_email": "me@example.com"}, &created)
	tusUpload(t, a.base, created.UploadToken, "clips/a.txt", []byte("hello iconik\n"))
	a.do("POST", "/p/demo/packages/"+created.Package.ID+"/finalize", created.UploadToken, nil, nil)
	var list struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	a.do("GET", "/api/v1/packages/"+created.Package.ID+"/deliveries", "", nil, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("%d deliveries", len(list.Deliveries))
	}
	deadline = time.Now().Add(time.Minute)
	for {
		var d struct {
			Delivery deliveryJSON `json:"delivery"`
		}
		a.do("GET", "/api/v1/deliveries/"+list.Deliveries[0].ID, "", nil, &d)
		if d.Delivery.State == "delivered" {
			return
		}
		if d.Delivery.State != "queued" && d.Delivery.State != "running" || time.Now().After(deadline) {
			t.Fatalf("demo delivery %+v", d.Delivery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
