package delivery_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// A folder of a new package lives under a collection this process created a
// moment before, which cannot hold anything ferry did not claim: its lookup
// is skipped (one iconik call per folder saved), and the tree is still exact.
func TestFoldersOfANewPackageCostNoLookups(t *testing.T) {
	var lookups atomic.Int64
	e := newEnv(t, envOptions{wrap: func(h http.Handler) http.Handler {
		checked := emulatortest.Checked(t, h, 0)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/contents") {
				lookups.Add(1)
			}
			checked.ServeHTTP(w, r)
		})
	}})
	conn := e.connect("lookups", "s3")
	e.createPortal("Lookups", conn.ID)
	h := e.newPackage("lookups", "Shoot", "s@example.com")
	for _, p := range []string{"a/b/c/x.txt", "a/b/y.txt", "a/z.txt", "d/e/f/g/h.txt", "w.txt"} {
		e.put(h, p, []byte(p))
	}
	e.finalize(h)
	if st := e.settled(h, conn.ID); st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s", st.Delivery.State)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d collection contents lookups under collections ferry had just created, want 0", n)
	}
	root := e.rootCollection("Portal Downloads")
	if len(root) != 1 {
		t.Fatalf("%d Portal Downloads roots", len(root))
	}
	got := e.tree(root[0].ID, "")
	want := []string{"Lookups/", "Lookups/Shoot/", "Lookups/Shoot/a/", "Lookups/Shoot/a/b/", "Lookups/Shoot/a/b/c/",
		"Lookups/Shoot/a/b/c/x.txt", "Lookups/Shoot/a/b/y.txt", "Lookups/Shoot/a/z.txt", "Lookups/Shoot/d/", "Lookups/Shoot/d/e/",
		"Lookups/Shoot/d/e/f/", "Lookups/Shoot/d/e/f/g/", "Lookups/Shoot/d/e/f/g/h.txt", "Lookups/Shoot/w.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("tree\n got %q\nwant %q", got, want)
	}
}
