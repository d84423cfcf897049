package transfer

import (
	"context"
	"errors"
	"hash"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Retry runs op until it succeeds, fails for good or the attempts run out.
// After a provider refused a URL as expired (403/401) op is called with
// refresh=true so that it fetches a fresh URL, at once; a URL refused three
// times in a row, fresh ones included, is a permission problem and ends it.
func (o Options) Retry(ctx context.Context, op func(attempt int, refresh bool) error) error {
	refresh := false
	refused := 0
	var err error
	for attempt := 1; attempt <= o.MaxAttempts; attempt++ {
		err = op(attempt, refresh)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		var te *Error
		if !errors.As(err, &te) {
			return err
		}
		refresh = false
		if te.Expired() {
			refused++
			if refused >= 3 {
				return err
			}
			refresh = true
			continue // a fresh URL needs no pause
		}
		refused = 0
		if !te.Retryable() {
			return err
		}
		o.Logger.Debug("transfer: retrying", "provider", te.Provider, "step", te.Step, "part", te.Part, "attempt", attempt, "err", te.Error())
		if attempt == o.MaxAttempts {
			break
		}
		t := time.NewTimer(o.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// Tracker reports progress (bytes sent, never decreasing) and checkpoints
// (the State after each durable step), both serialised.
type Tracker struct {
	mu       sync.Mutex
	fn       func(int64)
	ckpt     func(State) error
	state    State
	total    int64
	reported int64
	inflight map[int]int64
}

// NewTracker starts from state (its Parts count as already sent).
func NewTracker(p Params, state State) *Tracker {
	t := &Tracker{fn: p.Progress, ckpt: p.Checkpoint, state: state, inflight: map[int]int64{}}
	for _, ps := range state.Parts {
		t.total += ps.Size
	}
	t.report()
	return t
}

func (t *Tracker) report() {
	if t.fn != nil && t.total > t.reported {
		t.reported = t.total
		t.fn(t.total)
	}
}

// Sent counts n bytes of part handed to the connection.
func (t *Tracker) Sent(part int, n int64) {
	t.mu.Lock()
	t.inflight[part] += n
	t.total += n
	t.report()
	t.mu.Unlock()
}

// Retrying forgets what an attempt of part had sent.
func (t *Tracker) Retrying(part int) {
	t.mu.Lock()
	t.total -= t.inflight[part]
	delete(t.inflight, part)
	t.mu.Unlock()
}

// Update changes the state with fn and checkpoints it.
func (t *Tracker) Update(fn func(*State)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&t.state)
	if t.ckpt == nil {
		return nil
	}
	s := t.state
	s.Parts = slices.Clone(s.Parts)
	return t.ckpt(s)
}

// Acked records an acknowledged part and checkpoints.
func (t *Tracker) Acked(ps PartState) error {
	t.mu.Lock()
	delete(t.inflight, ps.Number)
	t.mu.Unlock()
	return t.Update(func(s *State) { s.Parts = append(s.Parts, ps) })
}

// State returns a copy of the current state, parts sorted by number.
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state
	s.Parts = slices.Clone(s.Parts)
	slices.SortFunc(s.Parts, func(a, b PartState) int { return a.Number - b.Number })
	return s
}

// Body returns part's bytes as a request body that counts progress.
// The range is read straight from the source: nothing is buffered.
func (t *Tracker) Body(src Source, p Part) io.Reader {
	return &countingReader{r: io.NewSectionReader(src, p.Off, p.Size), t: t, part: p.Number}
}

type countingReader struct {
	r    io.Reader
	t    *Tracker
	part int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.t.Sent(c.part, int64(n))
	}
	return n, err
}

// RunParts sends parts with at most parallelism in flight, in order of
// starting, skipping those done says the provider already holds. start is
// called (in order, for every part, skipped ones too) before a part is
// started, so an in-order Scanner can be let ahead. The first error cancels
// the rest.
func RunParts(ctx context.Context, parallelism int, parts []Part, done func(Part) bool, start func(i int), send func(ctx context.Context, p Part) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for i, p := range parts {
		if start != nil {
			start(i)
		}
		if done != nil && done(p) {
			continue
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return send(gctx, p) })
	}
	err := g.Wait()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return err
}

// Scanner reads the source once, in order, computing the whole-file SHA-256
// (plus any other whole-file hashes) and, per part, a digest the provider
// wants (MD5 for Content-MD5 or the S3 ETag, SHA-1 for B2). Parts go out in
// parallel, so hashing them in the senders would see the bytes out of order;
// the scanner instead runs just ahead of the senders and, with a file source,
// the senders read the same ranges from the page cache right after it: each
// byte comes from disk once. It is let at most a window of parts ahead so
// that it never outruns the page cache on huge files.
type Scanner struct {
	src     Source
	parts   []Part
	newPart func() hash.Hash
	whole   []hash.Hash

	mu      sync.Mutex
	allowed int
	wake    chan struct{}
	digests [][]byte
	ready   []chan struct{}
	done    chan struct{}
	err     error
}

// NewScanner prepares a scan of parts (which must cover src in order).
// newPart may be nil (no per-part digest). whole[0] should be SHA-256.
func NewScanner(src Source, parts []Part, newPart func() hash.Hash, whole ...hash.Hash) *Scanner {
	s := &Scanner{src: src, parts: parts, newPart: newPart, whole: whole,
		wake: make(chan struct{}, 1), digests: make([][]byte, len(parts)),
		ready: make([]chan struct{}, len(parts)), done: make(chan struct{})}
	for i := range s.ready {
		s.ready[i] = make(chan struct{})
	}
	return s
}

// Allow lets the scanner read parts with index below n.
func (s *Scanner) Allow(n int) {
	s.mu.Lock()
	if n > s.allowed {
		s.allowed = n
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// Run scans until the end, an error or ctx is done. Run it in a goroutine.
func (s *Scanner) Run(ctx context.Context) {
	err := s.run(ctx)
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.done)
}

func (s *Scanner) run(ctx context.Context) error {
	buf := make([]byte, 1<<20)
	ws := make([]io.Writer, len(s.whole))
	for i, h := range s.whole {
		ws[i] = h
	}
	for i, p := range s.parts {
		for {
			s.mu.Lock()
			ok := i < s.allowed
			s.mu.Unlock()
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-s.wake:
			}
		}
		var ph hash.Hash
		w := ws
		if s.newPart != nil {
			ph = s.newPart()
			w = append(slices.Clip(ws), ph)
		}
		mw := io.MultiWriter(w...)
		if _, err := io.CopyBuffer(mw, io.NewSectionReader(s.src, p.Off, p.Size), buf); err != nil {
			return err
		}
		if ph != nil {
			s.digests[i] = ph.Sum(nil)
		}
		close(s.ready[i])
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// PartDigest waits for part index i's digest.
func (s *Scanner) PartDigest(ctx context.Context, i int) ([]byte, error) {
	select {
	case <-s.ready[i]:
		return s.digests[i], nil
	case <-s.done:
		select {
		case <-s.ready[i]:
			return s.digests[i], nil
		default:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return nil, s.err
		}
		return nil, errors.New("scanner finished without part")
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Wait waits for the end of the scan and returns the whole-file digests.
func (s *Scanner) Wait(ctx context.Context) ([][]byte, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([][]byte, len(s.whole))
	for i, h := range s.whole {
		out[i] = h.Sum(nil)
	}
	return out, nil
}
