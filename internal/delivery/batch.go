package delivery

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
)

// After its bytes are closed, a file needs keyframes and the description,
// which is the same for every file of a delivery. iconik has a call for
// each that serves many assets at once (CONTRACT.md §4 steps 11-12): the
// bulk keyframes call (one transcode job for up to 500 assets) and the
// batch metadata PUT (202, applied by iconik later). Files of one delivery
// that reach that step close together share one of each, so a package of
// many small files spends two iconik calls per batch instead of two per
// file on them: iconik's per-App-ID rate limit is what bounds such a
// package.
//
// When a batch goes: as soon as no other file of the delivery is running
// ahead of the step in this process (a lone file, or the last of a
// package, does not wait at all); or when half as many files wait as this
// process runs of one delivery at once (min(Workers, PerDelivery)/2: with
// 16, a batch carries 8 files, two calls shared by 8 files add a quarter
// of a call per file, while the other half of the workers keep iconik's
// rate limit busy); or when no file joined for BatchWindow (default 1 s:
// the files ahead are slow, e.g. large uploads, and nothing is gained by
// waiting for them). The rule counts files rather than time so that the
// calls per file do not depend on how fast files arrive. A batch
// of one file uses the per-file calls, which answer more precisely (the
// keyframe job or the storage's ignore pattern, and the values applied at
// once).
//
// Crash safety: before a file joins a batch it records Pending "batch"
// (durably). A batch answered is recorded by each file's step. A file
// whose run ended between the two finds Pending "batch" on its next run
// and looks before asking again: a TRANSCODE job of its asset means the
// keyframes were asked for; its description already in iconik means the
// metadata landed (a batch iconik accepted with 202 and had not applied
// yet is sent again: a PUT of the same values, so nothing is duplicated
// but the write).

// batchMax is the most files one batch holds.
const batchMax = iconik.KeyframesBulkMax

type batcher struct {
	s      *Service
	target int // files per batch: half of what runs of one delivery at once
	mu     sync.Mutex
	groups map[string]*batchGroup // by delivery id
}

// batchGroup is one delivery's files in this process.
type batchGroup struct {
	ahead   int // files running that have not reached the batch step
	waiting []*batchEntry
	timer   *time.Timer
}

// batchEntry is one file in a batch: what it wants and, once done, what
// iconik answered.
type batchEntry struct {
	cl        *iconik.Client
	assetID   string
	fileID    string // iconik's file id, for the per-file call
	keyframes bool
	// description: the view, field and text to write ("" view: none).
	viewID, field, text string
	ctx                 context.Context

	done                         chan struct{}
	keyframeJobID                string
	keyframesIgnored             bool
	keyframesErr, descriptionErr error
}

func newBatcher(s *Service) *batcher {
	return &batcher{s: s, target: max(1, min(s.o.Workers, s.o.PerDelivery, batchMax)/2), groups: map[string]*batchGroup{}}
}

// enter counts a file of delivery d as on its way to the batch step; it
// stops counting when the file joins a batch or leaves (*counted says
// whether it still counts).
func (b *batcher) enter(d string, counted *bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[d]
	if g == nil {
		g = &batchGroup{}
		b.groups[d] = g
	}
	g.ahead++
	*counted = true
}

// leave is enter's end for a file whose run ends: with no file left ahead
// of the step, the waiting batch goes at once.
func (b *batcher) leave(d string, counted *bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[d]
	if g == nil {
		return
	}
	if *counted {
		g.ahead--
		*counted = false
	}
	b.settleLocked(d, g)
}

// settleLocked sends the waiting batch when no file is ahead of it or it
// is full, and forgets an empty group (b.mu held).
func (b *batcher) settleLocked(d string, g *batchGroup) {
	if len(g.waiting) > 0 && (g.ahead <= 0 || len(g.waiting) >= b.target) {
		b.flushLocked(g)
	}
	if g.ahead <= 0 && len(g.waiting) == 0 && b.groups[d] == g {
		delete(b.groups, d)
	}
}

// join adds e to delivery d's batch and waits until the batch was sent.
func (b *batcher) join(ctx context.Context, d string, e *batchEntry, counted *bool) error {
	e.done = make(chan struct{})
	e.ctx = ctx
	b.mu.Lock()
	g := b.groups[d]
	if g == nil {
		g = &batchGroup{}
		b.groups[d] = g
	}
	if *counted {
		g.ahead--
		*counted = false
	}
	g.waiting = append(g.waiting, e)
	if g.ahead > 0 && len(g.waiting) < b.target {
		// Wait for the next file at most BatchWindow, from now.
		if g.timer != nil {
			g.timer.Stop()
		}
		var t *time.Timer
		t = time.AfterFunc(b.s.o.BatchWindow, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if g.timer != t {
				return // replaced by a later file's, or its batch went already
			}
			g.timer = nil
			if len(g.waiting) > 0 {
				b.flushLocked(g)
			}
		})
		g.timer = t
	}
	b.settleLocked(d, g)
	b.mu.Unlock()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		// Gone before the batch went: leave it. Gone after: the call may
		// take effect, which the recorded Pending "batch" covers.
		b.mu.Lock()
		g.waiting = slices.DeleteFunc(g.waiting, func(x *batchEntry) bool { return x == e })
		b.mu.Unlock()
		return ctx.Err()
	}
}

// flushLocked sends the group's waiting files as one batch (b.mu held).
func (b *batcher) flushLocked(g *batchGroup) {
	entries := g.waiting
	g.waiting = nil
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	go b.send(entries)
}

// send makes the batch's calls and tells every file.
func (b *batcher) send(entries []*batchEntry) {
	defer func() {
		for _, e := range entries {
			close(e.done)
		}
	}()
	// The calls serve every file of the batch, so no one file's context
	// (which ends when that file's run does) may cancel them.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(entries[0].ctx), 10*time.Minute)
	defer cancel()
	var kf []*batchEntry
	descs := map[[3]string][]*batchEntry{}
	for _, e := range entries {
		if e.keyframes {
			kf = append(kf, e)
		}
		if e.viewID != "" {
			k := [3]string{e.viewID, e.field, e.text}
			descs[k] = append(descs[k], e)
		}
	}
	b.keyframes(ctx, kf)
	for _, es := range descs {
		b.descriptions(ctx, es)
	}
}

func (b *batcher) keyframes(ctx context.Context, es []*batchEntry) {
	if len(es) == 0 {
		return
	}
	if len(es) > 1 {
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.assetID
		}
		res, err := es[0].cl.KeyframesBulkCreate(ctx, iconik.KeyframesBulkCreateParams{ObjectIDs: ids})
		if err == nil {
			for _, e := range es {
				e.keyframeJobID = res.JobID
			}
			return
		}
		if !perFileAfter(err) {
			for _, e := range es {
				e.keyframesErr = err
			}
			return
		}
		b.s.log.Debug("delivery: bulk keyframes refused, asking per file", "files", len(es), "err", err)
	}
	for _, e := range es {
		res, err := e.cl.KeyframesCreate(ctx, e.assetID, e.fileID, iconik.KeyframesCreateParams{})
		if err != nil {
			e.keyframesErr = err
			continue
		}
		e.keyframeJobID, e.keyframesIgnored = res.JobID, res.Ignored
	}
}

func (b *batcher) descriptions(ctx context.Context, es []*batchEntry) {
	e0 := es[0]
	vals := map[string]string{e0.field: e0.text}
	if len(es) > 1 {
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.assetID
		}
		err := e0.cl.MetadataValuesBatchPut(ctx, e0.viewID, iconik.MetadataValuesBatchPutParams{ObjectIDs: ids, StringValues: vals})
		if err == nil || !perFileAfter(err) {
			for _, e := range es {
				e.descriptionErr = err
			}
			return
		}
		b.s.log.Debug("delivery: batch description refused, writing per file", "files", len(es), "err", err)
	}
	for _, e := range es {
		_, e.descriptionErr = e.cl.MetadataValuesPut(ctx, e.assetID, e.viewID, iconik.MetadataValuesPutParams{StringValues: vals})
	}
}

// perFileAfter reports whether a batch call's refusal may be one file's
// doing (an asset gone or not ready: 400, 404), so that the files are
// asked for one by one and the others are not held back by it. A refused
// token or role (401, 403), a rate limit or an outage would refuse every
// per-file call as well.
func perFileAfter(err error) bool {
	switch iconik.StatusOf(err) {
	case http.StatusBadRequest, http.StatusNotFound:
		return true
	}
	return false
}

// ---- the file's step ----

// afterClose is the file's step after the bytes are closed: keyframes and
// the description, batched with other files of the delivery (see above).
// It is recorded as the step "keyframes"; the step "metadata" after it
// only runs for a file whose run was recorded at that step by an earlier
// version of ferry.
func (r *fileRun) afterClose(ctx context.Context) error {
	f := r.f
	wantKeyframes := !r.keyframesDone
	view, field, text := r.description(ctx)
	wantDescription := view != "" && !r.descriptionDone
	if maybe, _ := r.lost("batch"); maybe && !r.lookedUp {
		// A batch with this file may have gone out before its answer was
		// recorded: look before asking again.
		r.lookedUp = true
		if wantKeyframes {
			for j, err := range r.cl.JobList(ctx, iconik.JobListParams{ObjectID: f.AssetID, Type: "TRANSCODE"}) {
				if err != nil {
					return err
				}
				f.KeyframeJobID, wantKeyframes, r.keyframesDone = j.ID, false, true
				break
			}
		}
		if wantDescription {
			v, err := r.cl.MetadataValuesGet(ctx, f.AssetID, view, iconik.MetadataValuesGetParams{})
			if err != nil {
				return err
			}
			if v.String(field) == text {
				wantDescription, r.descriptionDone = false, true
			}
		}
	}
	if !wantKeyframes && !wantDescription {
		return nil
	}
	if f.Pending != "batch" {
		if err := r.pending(ctx, "batch"); err != nil {
			return err
		}
	}
	e := &batchEntry{cl: r.cl, assetID: f.AssetID, fileID: f.IconikFileID, keyframes: wantKeyframes}
	if wantDescription {
		e.viewID, e.field, e.text = view, field, text
	}
	if err := r.s.batch.join(ctx, f.DeliveryID, e, r.counted); err != nil {
		return err
	}
	var errs []error
	if wantKeyframes {
		if e.keyframesErr != nil {
			errs = append(errs, e.keyframesErr)
		} else {
			f.KeyframeJobID, f.KeyframesSkipped, r.keyframesDone = e.keyframeJobID, e.keyframesIgnored, true
		}
	}
	if wantDescription {
		if e.descriptionErr != nil {
			errs = append(errs, e.descriptionErr)
		} else {
			r.descriptionDone = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		// What went through is kept in memory (a retry of this step asks
		// only for the rest); Pending "batch" stays recorded.
		return err
	}
	f.Pending, f.PendingAt = "", nil // saved with the step that follows
	return nil
}
