package delivery_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

// lossy answers a share of iconik calls 429 (not executed), a share 500
// before executing them, and a share 500 after executing them (the answer
// of a create is lost: the crash window every step must survive without
// creating twice). It is armed after the test's own setup, whose creates
// are not retried (iconik's POSTs are not idempotent), and rolls a seeded
// die where the emulator's --fail-rate would roll an unseeded one.
type lossy struct {
	mu                             sync.Mutex
	rnd                            *rand.Rand
	tooMany, failBefore, lostReply float64
	armed                          atomic.Bool
	next                           http.Handler
	counts                         map[string]int
}

func (l *lossy) roll(p float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rnd.Float64() < p
}

func (l *lossy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/API/") || !l.armed.Load() {
		l.next.ServeHTTP(w, r)
		return
	}
	if l.roll(l.tooMany) {
		l.count("429")
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"errors": ["Too many requests"]}`, http.StatusTooManyRequests)
		return
	}
	if l.roll(l.failBefore) {
		l.count("500 before")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"errors": ["Internal server error (injected fault)"]}`))
		return
	}
	if l.roll(l.lostReply) {
		l.count("500 after")
		l.next.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"errors": ["Internal server error (reply lost after the change)"]}`))
		return
	}
	l.next.ServeHTTP(w, r)
}

func (l *lossy) count(status string) {
	l.mu.Lock()
	l.counts[status]++
	l.mu.Unlock()
}

// TestDeliverySurvivesFaultsWithoutDuplicates: 10% of iconik calls fail
// with 500 (half of them after iconik made the change), 5% answer 429, 10%
// of provider calls answer 503, and new objects show in listings only after
// 300ms: every file is delivered, no object exists twice anywhere in
// iconik, and all traffic iconik answered matches its spec.
func TestDeliverySurvivesFaultsWithoutDuplicates(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine.name, func(t *testing.T) { testSurvivesFaults(t, engine.dsn(t)) })
	}
}

func testSurvivesFaults(t *testing.T, dsn string) {
	l := &lossy{rnd: rand.New(rand.NewPCG(7, 11)), tooMany: 0.05, failBefore: 0.05, lostReply: 0.05, counts: map[string]int{}}
	e := newEnv(t, envOptions{
		dsn:    dsn,
		faults: emulator.Faults{ProviderFailRate: 0.10, IndexLag: 300 * time.Millisecond},
		// The faults sit in front of the spec check: what iconik itself
		// answers is checked, including the changes whose reply is lost.
		wrap: func(h http.Handler) http.Handler { l.next = emulatortest.Checked(t, h, 0); return l },
		services: func(o *delivery.Options) {
			o.Uploaders = map[string]transfer.Uploader{"S3": s3.New(transfer.Options{PartSize: 5 << 20, Backoff: func(int) time.Duration { return 0 }})}
			o.MaxAttempts = 25
		},
	})
	conn := e.connect("faulty", "s3")
	e.createPortal("Faulty", conn.ID)
	l.armed.Store(true)
	h := e.newPackage("faulty", "Under fire", "s@example.com")
	for i := range 24 {
		e.put(h, fmt.Sprintf("d%d/e%d/f%02d.txt", i%3, i%2, i), bytes.Repeat([]byte{byte(i)}, 100+i*37))
	}
	e.put(h, "big/multipart.bin", bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16))
	e.finalize(h)
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		for _, f := range st.Files {
			t.Logf("%s: %s %s", f.Path, f.State, f.Error)
		}
		t.Fatalf("delivery %s, want delivered", st.Delivery.State)
	}
	e.noDuplicates(h, st)
	// The whole tenant, not only the package's tree: a copy that never
	// reached a collection, or a second portal-level collection, counts too.
	if dups := e.emu.Duplicates(); len(dups) != 0 {
		t.Fatalf("iconik holds duplicates:\n%s", strings.Join(dups, "\n"))
	}
	t.Logf("faults injected in front of iconik: %v", l.counts)
	if l.counts["500 before"] == 0 || l.counts["500 after"] == 0 || l.counts["429"] == 0 {
		t.Fatalf("the test injected no faults (%v): it proves nothing", l.counts)
	}
}

// noDuplicates walks the package's collections: no title twice in one
// collection, one asset per file (by external_id), and per asset exactly
// one format, file set, file and transfer job.
func (e *env) noDuplicates(h *pkgHandle, st *delivery.Status) {
	e.t.Helper()
	var assets []string
	var walk func(id, at string)
	walk = func(id, at string) {
		var titles []string
		for it, err := range e.cl.CollectionContentsList(e.ctx, id, iconik.CollectionContentsListParams{}) {
			if err != nil {
				e.t.Fatal(err)
			}
			titles = append(titles, it.ObjectType+":"+it.Title)
			if it.ObjectType == "collections" {
				walk(it.ID, at+it.Title+"/")
			} else {
				assets = append(assets, it.ExternalID)
				e.onlyOne(at+it.Title, it.ID)
			}
		}
		slices.Sort(titles)
		if c := slices.Compact(slices.Clone(titles)); len(c) != len(titles) {
			e.t.Fatalf("collection %q holds duplicates: %q", at, titles)
		}
	}
	walk(st.Delivery.CollectionID, "")
	slices.Sort(assets)
	var want []string
	for _, id := range h.ids {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(assets, want) {
		e.t.Fatalf("assets by external id %q, want one per file %q", assets, want)
	}
}

func (e *env) onlyOne(what, assetID string) {
	e.t.Helper()
	count := func(seq func(func(any, error) bool)) int {
		n := 0
		for _, err := range seq {
			if err != nil {
				e.t.Fatal(err)
			}
			n++
		}
		return n
	}
	formats := count(func(y func(any, error) bool) {
		for f, err := range e.cl.FormatList(e.ctx, assetID) {
			if !y(f, err) {
				return
			}
		}
	})
	sets := count(func(y func(any, error) bool) {
		for f, err := range e.cl.FileSetList(e.ctx, assetID) {
			if !y(f, err) {
				return
			}
		}
	})
	files := count(func(y func(any, error) bool) {
		for f, err := range e.cl.FileList(e.ctx, assetID) {
			if err == nil && f.Status == "DELETED" {
				continue
			}
			if !y(f, err) {
				return
			}
		}
	})
	jobs := count(func(y func(any, error) bool) {
		for j, err := range e.cl.JobList(e.ctx, iconik.JobListParams{ObjectID: assetID, Type: "TRANSFER"}) {
			if !y(j, err) {
				return
			}
		}
	})
	if formats != 1 || sets != 1 || files != 1 || jobs != 1 {
		e.t.Fatalf("%s: %d formats, %d file sets, %d files, %d transfer jobs; want one of each", what, formats, sets, files, jobs)
	}
}
