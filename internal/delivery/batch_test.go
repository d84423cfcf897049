package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
)

// callCounter counts the iconik API calls that pass through it, by kind.
type callCounter struct {
	mu    sync.Mutex
	total int
	kinds map[string]int
}

func (c *callCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/API/") {
			c.mu.Lock()
			c.total++
			switch {
			case strings.HasSuffix(r.URL.Path, "/keyframes/") && r.Method == http.MethodPost:
				c.kinds["keyframes"]++
			case strings.HasPrefix(r.URL.Path, "/API/metadata/v1/assets/") && r.Method == http.MethodPut:
				c.kinds["description"]++
			}
			c.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// waitDescriptions waits (bounded) until every delivered asset carries the
// package's description: a batch is applied by iconik after its 202.
func (e *env) waitDescriptions(files []*db.DeliveryFile, view string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range files {
		for {
			v, err := e.cl.MetadataValuesGet(e.ctx, f.AssetID, view, iconik.MetadataValuesGetParams{})
			if err != nil {
				e.t.Fatal(err)
			}
			if strings.HasPrefix(v.String("description"), "Package: ") {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%s: no description in iconik", f.Path)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestManyFilesOfAPackageShareTheKeyframesAndDescriptionCalls: a package
// of many small files spends at most 7.5 iconik calls per file, because
// files that reach keyframes and description together share one bulk
// keyframes call and one batch metadata call; every asset still gets its
// description and a keyframes request, once.
func TestManyFilesOfAPackageShareTheKeyframesAndDescriptionCalls(t *testing.T) {
	cnt := &callCounter{kinds: map[string]int{}}
	e := newEnv(t, envOptions{wrap: cnt.wrap, services: func(o *delivery.Options) { o.Workers, o.PerDelivery = 16, 16 }})
	conn := e.connect("c", "s3")
	e.createPortal("Many", conn.ID)
	h := e.newPackage("many", "Many", "m@example.com")
	cnt.mu.Lock()
	cnt.total, cnt.kinds = 0, map[string]int{}
	cnt.mu.Unlock()
	// The files complete while the service is stopped and start together
	// when it starts: which files reach the step together then depends on
	// the worker count, not on how fast this machine runs the test.
	if err := e.svc.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 64
	for i := range n {
		e.put(h, fmt.Sprintf("shots/f%02d.bin", i), []byte(fmt.Sprintf("file %d", i)))
	}
	e.finalize(h)
	e.restart()
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	cnt.mu.Lock()
	total, kf, desc := cnt.total, cnt.kinds["keyframes"], cnt.kinds["description"]
	cnt.mu.Unlock()
	perFile := float64(total) / n
	t.Logf("%d iconik calls for %d files (%.2f per file): %d keyframes calls, %d description calls", total, n, perFile, kf, desc)
	if kf+desc > n/2 {
		t.Errorf("%d keyframes and %d description calls for %d files: not shared", kf, desc, n)
	}
	if perFile > 7.5 {
		t.Errorf("%.2f iconik calls per file, want <= 7.5", perFile)
	}
	e.waitDescriptions(st.Files, conn.MetadataViewID)
	for _, f := range st.Files {
		jobs, err := iconik.Collect(e.cl.JobList(e.ctx, iconik.JobListParams{ObjectID: f.AssetID, Type: "TRANSCODE"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || f.KeyframeJobID != jobs[0].ID {
			t.Errorf("%s: keyframe job %q recorded, iconik has %d transcode jobs for its asset", f.Path, f.KeyframeJobID, len(jobs))
		}
	}
	if d := e.emu.Duplicates(); len(d) != 0 {
		t.Fatalf("duplicates in iconik: %v", d)
	}
}

// TestABatchWhoseAnswerWasLostIsNotSentAgain: the process stops after
// iconik took a batch (keyframes asked for, description accepted with 202)
// but before ferry recorded it; the files resume, find both in iconik and
// ask for neither again: one keyframe per file, one description write per
// asset.
func TestABatchWhoseAnswerWasLostIsNotSentAgain(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Int32
	taken := make(chan struct{}, 1)
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			batch := r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/API/metadata/v1/assets/views/")
			if !batch || held.Add(1) > 1 {
				next.ServeHTTP(w, r)
				return
			}
			// iconik takes the batch; its answer never reaches ferry.
			next.ServeHTTP(&discard{h: http.Header{}}, r)
			taken <- struct{}{}
			<-release
			http.Error(w, "gone", http.StatusBadGateway)
		})
	}
	e := newEnv(t, envOptions{wrap: hold, noSpec: true, services: func(o *delivery.Options) {
		o.Workers, o.PerDelivery, o.BatchWindow = 16, 16, 5*time.Second
	}})
	t.Cleanup(func() { close(release) }) // before the servers close: they wait for the held call
	conn := e.connect("c", "s3")
	e.createPortal("Lost", conn.ID)
	h := e.newPackage("lost", "Lost", "l@example.com")
	for i := range 6 {
		e.put(h, fmt.Sprintf("f%d.png", i), pngBytes())
	}
	e.finalize(h)
	select {
	case <-taken:
	case <-time.After(time.Minute):
		t.Fatal("no batch description call was made")
	}
	// iconik applies what it accepted; then ferry's process ends.
	d := e.deliveryOf(h, conn.ID)
	files, err := e.store.DeliveryFileList(e.ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDescriptions(files, conn.MetadataViewID)
	e.restart()
	st := e.settled(h, conn.ID)
	if st.Delivery.State != db.DeliveryDelivered {
		t.Fatalf("delivery %s: %s", st.Delivery.State, st.Delivery.Error)
	}
	e.waitDescriptions(st.Files, conn.MetadataViewID)
	for _, f := range st.Files {
		if f.KeyframeJobID == "" {
			t.Errorf("%s: no keyframe job recorded", f.Path)
		}
	}
	// Keyframe jobs run in the background: wait for them before counting.
	deadline := time.Now().Add(time.Minute)
	for _, f := range st.Files {
		for {
			j, err := e.cl.JobGet(e.ctx, f.KeyframeJobID)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != "READY" && j.Status != "STARTED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("keyframe job of %s still %s", f.Path, j.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if d := e.emu.Duplicates(); len(d) != 0 {
		t.Fatalf("duplicates in iconik after the lost answer: %v", d)
	}
	for _, f := range st.Files {
		if n := e.emu.MetadataWrites("assets", f.AssetID); n != 1 {
			t.Errorf("%s: description written %d times", f.Path, n)
		}
	}
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
