package delivery_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// person stands in front of iconik and, at a moment the test picks by
// looking at ferry's requests, deletes things the way a person in iconik's
// UI would, before iconik answers ferry's request.
type person struct {
	t    *testing.T
	next http.Handler
	mu   sync.Mutex
	cred emulator.Credential
	// before sees every API request with its JSON body (nil when none).
	before func(p *person, r *http.Request, body map[string]any)
}

func (p *person) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	before := p.before
	p.mu.Unlock()
	if before != nil && strings.HasPrefix(r.URL.Path, "/API/") {
		var body map[string]any
		if r.Body != nil {
			raw, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(raw))
			_ = json.Unmarshal(raw, &body)
		}
		before(p, r, body)
	}
	p.next.ServeHTTP(w, r)
}

// del deletes path in iconik as an admin (iconik's UI calls the same API).
func (p *person) del(path string) {
	req := httptest.NewRequest(http.MethodDelete, path, nil)
	req.Header.Set("App-ID", p.cred.AppID)
	req.Header.Set("Auth-Token", p.cred.Token)
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		p.t.Errorf("deleting %s in iconik: %d %s", path, rec.Code, rec.Body)
	}
}

// newPersonEnv is an env whose iconik has a person in front of it; one
// file at a time, so "the second file" is a moment the test can name.
func newPersonEnv(t *testing.T) (*env, *person) {
	p := &person{t: t}
	e := newEnv(t, envOptions{
		wrap: func(h http.Handler) http.Handler { p.next = emulatortest.Checked(t, h, 0); return p },
		services: func(o *delivery.Options) {
			o.Workers, o.PerDelivery = 1, 1
		},
	})
	p.cred = e.cred("admin")
	return e, p
}

func (p *person) when(f func(p *person, r *http.Request, body map[string]any)) {
	p.mu.Lock()
	p.before = f
	p.mu.Unlock()
}

// closing reports whether r is ferry closing the iconik file of name (the
// last step before the bytes count as delivered) and returns its asset id.
func closing(r *http.Request, body map[string]any, name string) (string, bool) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// API files v1 assets {a} files {f}
	if r.Method != http.MethodPatch || len(segs) != 7 || segs[1] != "files" || segs[3] != "assets" || segs[5] != "files" {
		return "", false
	}
	if body["status"] != "CLOSED" || body["original_name"] != name {
		return "", false
	}
	return segs[4], true
}

func (e *env) fileOf(st *delivery.Status, path string) *db.DeliveryFile {
	e.t.Helper()
	for _, f := range st.Files {
		if f.Path == path {
			return f
		}
	}
	e.t.Fatalf("delivery has no file %s", path)
	return nil
}

// TestDeliveryRecreatesAnAssetDeletedInIconikMidDelivery: a person deletes
// a file's asset in iconik while its bytes are being delivered. iconik
// answers 404 for the recorded asset; ferry sends the file back to the step
// that creates the asset (new asset, format, file set, file, job, bytes)
// and the delivery finishes in the same attempt, instead of retrying the
// dead id for minutes.
func TestDeliveryRecreatesAnAssetDeletedInIconikMidDelivery(t *testing.T) {
	e, p := newPersonEnv(t)
	conn := e.connect("c", "s3")
	e.createPortal("Gone", conn.ID)
	var deleted []string
	p.when(func(p *person, r *http.Request, body map[string]any) {
		if a, ok := closing(r, body, "victim.mov"); ok && len(deleted) == 0 {
			deleted = append(deleted, a)
			p.del("/API/assets/v1/assets/" + a + "/")
		}
	})
	h := e.newPackage("gone", "Shoot", "s@example.com")
	e.put(h, "before.txt", []byte("delivered before the deletion\n"))
	victim := bytes.Repeat([]byte("frame "), 2000)
	e.put(h, "clips/victim.mov", victim)
	e.put(h, "clips/after.txt", []byte("delivered after\n"))
	e.finalize(h)

	st := e.settled(h, conn.ID)
	if len(deleted) != 1 {
		t.Fatalf("the asset was deleted %d times, want once", len(deleted))
	}
	if st.Delivery.State != db.DeliveryDelivered {
		for _, f := range st.Files {
			t.Logf("%s: %s after %d attempts: %s", f.Path, f.State, f.Attempts, f.Error)
		}
		t.Fatalf("delivery %s, want delivered", st.Delivery.State)
	}
	f := e.fileOf(st, "clips/victim.mov")
	if f.AssetID == deleted[0] {
		t.Fatalf("the file was delivered into asset %s, which a person deleted", f.AssetID)
	}
	if f.Attempts != 1 {
		t.Fatalf("the file took %d attempts; want the recovery within the first", f.Attempts)
	}
	a, err := e.cl.AssetGet(e.ctx, f.AssetID)
	if err != nil || a.Status != "ACTIVE" {
		t.Fatalf("the file's asset %s: %+v, %v; want ACTIVE", f.AssetID, a, err)
	}
	if got := e.tree(st.Delivery.CollectionID, ""); !slices.Equal(got, []string{"before.txt", "clips/", "clips/after.txt", "clips/victim.mov"}) {
		t.Fatalf("package tree %q", got)
	}
	e.noDuplicates(h, st)
	if got := e.object(conn.StorageID, "ferry/Portal Downloads/Gone/Shoot/clips/victim.mov"); !bytes.Equal(got, victim) {
		t.Fatalf("storage holds %d bytes, want the %d sent", len(got), len(victim))
	}
}

// TestDeliveryGivesUpOnAnAssetDeletedAgainAfterItWasRecreated: "once per
// cause". When the asset ferry recreated is deleted again, the file fails
// at once with a reason that says so, and the other files are delivered.
func TestDeliveryGivesUpOnAnAssetDeletedAgainAfterItWasRecreated(t *testing.T) {
	e, p := newPersonEnv(t)
	conn := e.connect("c", "s3")
	e.createPortal("Again", conn.ID)
	var deleted []string
	p.when(func(p *person, r *http.Request, body map[string]any) {
		if a, ok := closing(r, body, "victim.mov"); ok {
			deleted = append(deleted, a)
			p.del("/API/assets/v1/assets/" + a + "/")
		}
	})
	h := e.newPackage("again", "Shoot", "s@example.com")
	e.put(h, "victim.mov", []byte("deleted twice\n"))
	e.put(h, "other.txt", []byte("fine\n"))
	e.finalize(h)

	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryPartiallyFailed {
		t.Fatalf("delivery %s, want partially failed", st.Delivery.State)
	}
	f := e.fileOf(st, "victim.mov")
	if f.State != db.DeliveryFileFailed || f.Attempts != 1 || !strings.Contains(f.Error, "deleted in iconik again") {
		t.Fatalf("victim: %s after %d attempts: %q; want failed at once, saying the asset was deleted again", f.State, f.Attempts, f.Error)
	}
	if len(deleted) != 2 {
		t.Fatalf("assets deleted %q; want the first and the recreated one", deleted)
	}
	if o := e.fileOf(st, "other.txt"); o.State != db.DeliveryFileDelivered {
		t.Fatalf("other.txt: %s %s", o.State, o.Error)
	}
}

// TestDeliveryRecreatesThePackageCollectionDeletedInIconikMidDelivery: a
// person deletes the package's collection (and so its sub-collections)
// after the first file was delivered. The next file's asset create names a
// collection iconik no longer has; ferry looks the collection path up
// again, creates the package collection and the folder anew, and delivers
// the remaining files there. The file delivered before stays as it was.
func TestDeliveryRecreatesThePackageCollectionDeletedInIconikMidDelivery(t *testing.T) {
	e, p := newPersonEnv(t)
	conn := e.connect("c", "s3")
	e.createPortal("Lost", conn.ID)
	h := e.newPackage("lost", "Package", "s@example.com")
	var creates int
	var deleted string
	p.when(func(p *person, r *http.Request, body map[string]any) {
		if r.Method != http.MethodPost || strings.TrimSuffix(r.URL.Path, "/") != "/API/assets/v1/assets" {
			return
		}
		if creates++; creates != 2 {
			return
		}
		d, err := e.store.DeliveryGetByPackageConnection(e.ctx, &db.DeliveryGetByPackageConnectionParams{PackageID: h.pkg.ID, ConnectionID: conn.ID})
		if err != nil || d.CollectionID == "" {
			t.Errorf("no package collection recorded before the second asset: %+v %v", d, err)
			return
		}
		deleted = d.CollectionID
		p.del("/API/assets/v1/collections/" + deleted + "/")
	})
	e.put(h, "first.txt", []byte("delivered before the deletion\n"))
	e.put(h, "sub/second.txt", []byte("second\n"))
	e.put(h, "third.txt", []byte("third\n"))
	e.finalize(h)

	st := e.settled(h, conn.ID)
	if deleted == "" {
		t.Fatal("the package collection was never deleted")
	}
	if st.Delivery.State != db.DeliveryDelivered {
		for _, f := range st.Files {
			t.Logf("%s: %s after %d attempts: %s", f.Path, f.State, f.Attempts, f.Error)
		}
		t.Fatalf("delivery %s, want delivered", st.Delivery.State)
	}
	if st.Delivery.CollectionID == deleted {
		t.Fatalf("the delivery still names the deleted collection %s", deleted)
	}
	c, err := e.cl.CollectionGet(e.ctx, st.Delivery.CollectionID)
	if err != nil || c.Status == "DELETED" || c.Title != "Package" {
		t.Fatalf("the package collection now: %+v, %v; want a live one titled Package", c, err)
	}
	portalColl := e.child(e.rootCollection("Portal Downloads")[0].ID, "Lost")
	if c.ParentID != portalColl {
		t.Fatalf("the new package collection's parent is %q, want the portal's %s", c.ParentID, portalColl)
	}
	if got := e.tree(st.Delivery.CollectionID, ""); !slices.Equal(got, []string{"sub/", "sub/second.txt", "third.txt"}) {
		t.Fatalf("the recreated package tree holds %q", got)
	}
	first := e.fileOf(st, "first.txt")
	if first.State != db.DeliveryFileDelivered || first.CollectionID != deleted {
		t.Fatalf("first.txt was touched: %+v", first)
	}
	for _, f := range st.Files {
		if f.Attempts != 1 {
			t.Errorf("%s took %d attempts; want the recovery within the first", f.Path, f.Attempts)
		}
	}
	old, err := e.cl.CollectionGet(e.ctx, deleted)
	if err == nil && old.Status != "DELETED" {
		t.Fatalf("the deleted collection came back: %+v", old)
	}
	if dups := e.emu.Duplicates(); len(dups) != 0 {
		t.Fatalf("iconik holds duplicates:\n%s", strings.Join(dups, "\n"))
	}
}
