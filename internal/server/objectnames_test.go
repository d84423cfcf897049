package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/web"
)

// segmentedPath returns a path of exactly n bytes whose segments are all
// far below 255 bytes (what pathsafe and file systems allow), ending in a
// file name: the shape of issue 9 item 5's 1,263-byte path.
func segmentedPath(n int) string {
	const file = "clip.mov"
	var b strings.Builder
	for b.Len()+len(file) < n {
		seg := min(120, n-len(file)-b.Len()-1)
		if seg < 1 {
			b.WriteString("x") // lengthen the last folder by the missing byte
			continue
		}
		b.WriteString(strings.Repeat(string(rune('a'+b.Len()%26)), seg))
		b.WriteByte('/')
	}
	return b.String() + file
}

type apiError struct {
	Error struct{ Code, Message string }
}

// TestUploadNoStorageCouldTakeIsRefusedBeforeAnyByteIsStored is issue 9
// item 5: a 1,263-byte path (every segment well under 255 bytes) on a portal
// delivering to an S3 storage used to be accepted, and delivery then failed
// on S3's 1,024-byte key limit after minutes of retries. The full object
// name (storage path + collection root + portal + package + path) is now
// checked when the upload is created, for whole files and for the first
// partial of a parallel upload, and the refusal names the limit.
func TestUploadNoStorageCouldTakeIsRefusedBeforeAnyByteIsStored(t *testing.T) {
	e := newE2E(t, "s3")
	e.portal(map[string]any{"name": "Names", "slug": "names", "active": true, "connection_ids": []string{e.conn.ID}})
	c := e.createPortalPackage("names", "Shoot", "s@example.com")
	payload := []byte("LONG-NAME-PAYLOAD-must-never-be-stored")

	// The emulator's S3 storage keeps objects under "ferry"; the package
	// collection may become "Shoot (n)" when the name is taken, so admission
	// keeps room for the longest suffix delivery can add (see
	// delivery.TitleSuffixReserve): what is left for the path is
	// 1,024 - len("ferry/Portal Downloads/Names/Shoot (9999999)/").
	room := 1024 - len("ferry/Portal Downloads/Names/Shoot (9999999)/")
	before := snapshot(t, e.data)
	for _, tc := range []struct {
		name string
		rel  string
		want int
	}{
		{"the issue's 1,263-byte path", segmentedPath(1263), http.StatusUnprocessableEntity},
		{"one byte more than the storage takes", segmentedPath(room + 1), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.tusUpload(c.UploadToken, map[string]string{"package_token": c.UploadToken, "relativePath": tc.rel}, payload)
			var ae apiError
			if resp.StatusCode != tc.want || json.Unmarshal(body, &ae) != nil {
				t.Fatalf("create with a %d-byte path: %d %s, want %d with a JSON error", len(tc.rel), resp.StatusCode, body, tc.want)
			}
			if ae.Error.Code != "object_name_too_long" || !strings.Contains(ae.Error.Message, "1,024 bytes") || !strings.Contains(ae.Error.Message, "S3") {
				t.Fatalf("refusal %+v does not name S3's 1,024-byte key limit", ae.Error)
			}
			// A parallel upload is refused at its first partial, before its bytes.
			meta := e2eTusMeta(map[string]string{"package_token": c.UploadToken, "relativePath": tc.rel, "file_size": fmt.Sprint(2 * len(payload))})
			resp, body, err := e2eTusPost(e.srv.URL, payload, meta, "Upload-Concat", "partial", "Upload-Length", fmt.Sprint(len(payload)),
				"Authorization", "Bearer "+c.UploadToken, "Content-Type", "application/offset+octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || !bytes.Contains(body, []byte("object_name_too_long")) {
				t.Fatalf("partial with a %d-byte path: %d %s, want %d object_name_too_long", len(tc.rel), resp.StatusCode, body, tc.want)
			}
		})
	}
	for p, size := range snapshot(t, e.data) {
		if _, ok := before[p]; !ok && !strings.HasSuffix(p, ".db-wal") && !strings.HasSuffix(p, ".db-shm") {
			t.Errorf("a refused upload left a file: %s (%d bytes)", p, size)
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, payload) {
			t.Errorf("the refused payload was stored in %s", p)
		}
	}

	// The longest path that fits is accepted and delivered, at the key
	// admission computed.
	fits := segmentedPath(room)
	e.upload(c.UploadToken, fits, []byte("fits"))
	resp, body := e.req("POST", "/p/names/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	e.mustJSON(resp, body, 200, nil)
	d := e.waitSettled(e.onlyDelivery(c.Package.ID, "portal").ID)
	e.checkDelivered(d, map[string][]byte{fits: []byte("fits")}, "Portal Downloads/Names/Shoot", "Package: Shoot\nUploader: s@example.com\nPortal: Names")
	// The name admission computed is the key the storage holds.
	key := delivery.NameParts{StoragePath: "ferry", Root: "Portal Downloads", Portal: "Names", PackageTitle: d.Title}.ObjectName(fits)
	if got := e.object(key); string(got) != "fits" || len(key) > 1024 {
		t.Fatalf("object %q (%d bytes) holds %q, want the delivered file within 1,024 bytes", key, len(key), got)
	}

	// After the refusals the server starts again on the same data
	// directory and serves the package with its one file.
	e.app.stopDelivery()
	e.srv.Close()
	e.app.Close()
	app, err := Open(t.Context(), e.cfg, Options{NoSync: true})
	if err != nil {
		t.Fatalf("restart after the refused uploads: %v", err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/packages/"+c.Package.ID, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct{ Package web.Package }
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 || got.Package.FileCount != 1 {
		t.Fatalf("after a restart: %d %+v (%v), want the package with its one file", res.StatusCode, got.Package, err)
	}
}

// TestSendToCloudRefusesAPackageTheStorageCouldNotTake: Send to Cloud checks
// every file's object name on the chosen connection's storage before it
// accepts (issue 9 item 5), and records no delivery when one cannot fit.
func TestSendToCloudRefusesAPackageTheStorageCouldNotTake(t *testing.T) {
	e := newE2E(t, "s3")
	// A package of the admin's own (no portal, so no storage was known when
	// its files were admitted).
	var own created
	resp, body := e.req("POST", "/api/v1/packages", map[string]string{"name": "Long"}, e.admin()...)
	e.mustJSON(resp, body, 201, &own)
	long := segmentedPath(1263)
	e.upload(own.UploadToken, long, []byte("too long for S3"))
	e.upload(own.UploadToken, "short.txt", []byte("fine"))
	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/finalize", nil, e.admin()...)
	e.mustJSON(resp, body, 200, nil)

	resp, body = e.req("POST", "/api/v1/packages/"+own.Package.ID+"/deliveries", map[string]string{"connection_id": e.conn.ID}, e.admin()...)
	var ae apiError
	if resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &ae) != nil {
		t.Fatalf("Send to Cloud of a package with a %d-byte path: %d %s, want 422", len(long), resp.StatusCode, body)
	}
	if ae.Error.Code != "object_name_too_long" || !strings.Contains(ae.Error.Message, "1,024 bytes") || !strings.Contains(ae.Error.Message, path.Base(long)) {
		t.Fatalf("refusal %+v does not name the file and S3's 1,024-byte key limit", ae.Error)
	}
	var list struct{ Deliveries []web.Delivery }
	resp, body = e.req("GET", "/api/v1/packages/"+own.Package.ID+"/deliveries", nil, e.admin()...)
	e.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 0 {
		t.Fatalf("a refused Send to Cloud recorded deliveries: %+v", list.Deliveries)
	}
}
