package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
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

// RangeOpener is an optional Source capability: a source stored in files
// whose byte range can be opened on a descriptor of its own, so that each
// part goes out with sendfile(2), page cache to socket, without passing
// through user space.
type RangeOpener interface {
	// OpenRange returns a new descriptor (the caller closes it) of a file that
	// holds the source's bytes [off, off+n) at [pos, pos+n), positioned at
	// pos. The source may be several files (an upload made of parts): a range
	// no one file holds is an error, and then that part is read through
	// ReadAt instead, so callers must not rely on every part going zero-copy.
	OpenRange(off, n int64) (f *os.File, pos int64, err error)
}

// ZeroCopy reports whether parts of src may go out with sendfile (then
// senders cannot hash what they send: the Scanner hashes every part instead,
// also those that fall back to ReadAt).
func ZeroCopy(src Source) bool {
	_, ok := src.(RangeOpener)
	return ok
}

// Body returns part's bytes as a request body that counts progress. With h,
// it hashes what is sent (while the bytes go out: no second read). Without
// h, a RangeOpener source is sent with sendfile and progress is read from
// the descriptor's offset as the kernel advances it. Nothing is buffered.
// The HTTP transport closes the body; close it yourself if no request is made.
func (t *Tracker) Body(src Source, p Part, h hash.Hash) io.ReadCloser {
	if ro, ok := src.(RangeOpener); ok && h == nil && p.Size > 0 {
		if f, pos, err := ro.OpenRange(p.Off, p.Size); err == nil {
			b := &fileBody{f: f, t: t, part: p.Number, start: pos, end: pos + p.Size, stop: make(chan struct{})}
			go b.watch()
			return b
		}
	}
	return &countingReader{r: io.NewSectionReader(src, p.Off, p.Size), t: t, h: h, part: p.Number}
}

type countingReader struct {
	r    io.Reader
	t    *Tracker
	h    hash.Hash
	part int

	mu       sync.Mutex // one Read at a time against Detach
	detached bool
}

// errDetached is what a body gives a transport still sending it after its
// request returned.
var errDetached = errors.New("transfer: the request this body belonged to has returned")

func (c *countingReader) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detached {
		return 0, errDetached
	}
	n, err := c.r.Read(b)
	if n > 0 {
		if c.h != nil {
			c.h.Write(b[:n])
		}
		c.t.Sent(c.part, int64(n))
	}
	return n, err
}

func (c *countingReader) Close() error { return nil }

// Detach ends body's use of its hash before the hash is released (Release):
// an HTTP transport may still be sending a body after its request returned
// (a provider that answers 503 before reading it), and a released MD5 lane
// panics when written to. Call it before Release, after the request.
func Detach(body io.ReadCloser) {
	if c, ok := body.(*countingReader); ok {
		c.mu.Lock()
		c.detached = true
		c.mu.Unlock()
	}
}

// fileBody is a part on its own descriptor. net/http hands a body that
// implements syscall.Conn to sendfile (net.sendFile accepts any syscall.Conn
// behind the transport's io.LimitedReader); Read serves the few bytes the
// transport reads itself and stops at the part's end.
type fileBody struct {
	f          *os.File
	t          *Tracker
	part       int
	start, end int64
	mu         sync.Mutex
	reported   int64
	stop       chan struct{}
	once       sync.Once
}

func (b *fileBody) SyscallConn() (syscall.RawConn, error) { return b.f.SyscallConn() }

func (b *fileBody) Read(p []byte) (int, error) {
	off, err := b.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	left := b.end - off
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.f.Read(p)
	b.poll()
	return n, err
}

// poll reports the bytes the kernel has sent so far (the descriptor's offset).
func (b *fileBody) poll() {
	off, err := b.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return
	}
	b.mu.Lock()
	if d := min(off, b.end) - b.start - b.reported; d > 0 {
		b.reported += d
		b.t.Sent(b.part, d)
	}
	b.mu.Unlock()
}

func (b *fileBody) watch() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			b.poll()
		}
	}
}

func (b *fileBody) Close() error {
	b.once.Do(func() {
		close(b.stop)
		b.poll()
		b.f.Close()
	})
	return nil
}

// Each adapts a hash constructor to NewScanner's per-part form.
func Each(newHash func() hash.Hash) func(int) hash.Hash {
	return func(int) hash.Hash { return newHash() }
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
	newPart func(i int) hash.Hash
	whole   []hash.Hash
	workers int
	batch   int

	mu      sync.Mutex
	allowed int
	wake    chan struct{}
	digests [][]byte
	ready   []chan struct{}
	done    chan struct{}
	err     error
}

// NewScanner prepares a scan of parts (which must cover src in order).
// newPart gives the hash for part index i, or nil for none (newPart itself
// may be nil). whole[0] should be SHA-256.
func NewScanner(src Source, parts []Part, newPart func(i int) hash.Hash, whole ...hash.Hash) *Scanner {
	s := &Scanner{src: src, parts: parts, newPart: newPart, whole: whole,
		wake: make(chan struct{}, 1), digests: make([][]byte, len(parts)),
		ready: make([]chan struct{}, len(parts)), done: make(chan struct{}),
		workers: runtime.GOMAXPROCS(0), batch: 1}
	for i := range s.ready {
		s.ready[i] = make(chan struct{})
	}
	return s
}

// Lanes makes the scanner hash n parts at once, starting them together:
// SIMD hashes (NewMD5) only reach full speed when that many parts share the
// server's lanes. The scanner then waits until it is allowed n parts further
// (or to the end) before it moves on, so the caller must let it at least n
// parts ahead of any part whose digest it waits for. Call it before Run.
func (s *Scanner) Lanes(n int) { s.workers, s.batch = max(1, n), max(1, n) }

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
	// The whole-file hashes are sequential by nature; per-part digests are
	// independent, so they run alongside, up to s.workers at once (each
	// re-reads its part from the page cache the sequential pass just
	// filled). Parts are taken a batch at a time so SIMD lanes start full.
	workers := make(chan struct{}, s.workers)
	var wg sync.WaitGroup
	var partErr error
	var errOnce sync.Once
	defer wg.Wait()
	buf := make([]byte, 1<<20)
	mw := io.MultiWriter(hashWriters(s.whole)...)
	for i := 0; i < len(s.parts); {
		end, err := s.next(ctx, i)
		if err != nil {
			return err
		}
		for j := i; j < end; j++ {
			if err := s.startPart(ctx, j, workers, &wg, func(err error) { errOnce.Do(func() { partErr = err }) }); err != nil {
				return err
			}
		}
		for j := i; j < end && len(s.whole) > 0; j++ {
			p := s.parts[j]
			if _, err := io.CopyBuffer(mw, io.NewSectionReader(s.src, p.Off, p.Size), buf); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		i = end
	}
	wg.Wait()
	return partErr
}

// next waits until the scanner may read from part i on, and says up to
// which part: a whole batch, or what is left.
func (s *Scanner) next(ctx context.Context, i int) (int, error) {
	want := min(len(s.parts), i+s.batch)
	for {
		s.mu.Lock()
		allowed := s.allowed
		s.mu.Unlock()
		if allowed >= want {
			return want, nil
		}
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-s.wake:
		}
	}
}

// startPart starts hashing part index i, when it has a per-part hash.
func (s *Scanner) startPart(ctx context.Context, i int, workers chan struct{}, wg *sync.WaitGroup, fail func(error)) error {
	var ph hash.Hash
	if s.newPart != nil {
		ph = s.newPart(i)
	}
	if ph == nil {
		close(s.ready[i])
		return nil
	}
	select {
	case workers <- struct{}{}:
	case <-ctx.Done():
		Release(ph)
		return context.Cause(ctx)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-workers }()
		defer Release(ph)
		p := s.parts[i]
		if _, err := io.CopyBuffer(ph, io.NewSectionReader(s.src, p.Off, p.Size), make([]byte, 256<<10)); err != nil {
			fail(fmt.Errorf("hash part %d: %w", p.Number, err))
			return
		}
		s.digests[i] = ph.Sum(nil)
		close(s.ready[i])
	}()
	return nil
}

func hashWriters(hs []hash.Hash) []io.Writer {
	ws := make([]io.Writer, len(hs))
	for i, h := range hs {
		ws[i] = h
	}
	return ws
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
