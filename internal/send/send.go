package send

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptrace"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/send/tus"
	"golang.org/x/sync/errgroup"
)

// Defaults, documented in `ferry send --help`.
const (
	DefaultStreams   = 4
	DefaultLargeFile = 64 << 20  // files at least this big are split into partial uploads
	DefaultMaxPart   = 256 << 20 // no partial is bigger: a file splits into max(streams, size/256 MiB) parts
	MaxStreams       = 64
)

// Options configure one Send.
type Options struct {
	Target  Target
	Paths   []string
	Info    PackageInfo
	Streams int   // simultaneous upload connections (default 4)
	Large   int64 // split threshold (default 64 MiB)
	MaxPart int64 // largest partial (default 256 MiB)

	// Again sends a new package even when this target, these paths and this
	// name were sent before (otherwise Send answers with that package).
	Again bool

	StateDir string       // default DefaultStateDir()
	HTTP     *http.Client // default: NewHTTPClient (adjust its tus.NewTransport for TLS roots)
	Progress Progress     // default: none
	// Status receives plain sentences for the user before the progress
	// starts ("resuming: 12 of 40 files done, 1.2 GiB left"); nil: none.
	Status io.Writer
	Log    *slog.Logger

	// Retry tuning for the tus client (tests shorten the backoff).
	MaxRetries int
	Backoff    func(attempt int) time.Duration
}

// Result says what happened.
type Result struct {
	PackageID string
	Name      string // the package's name as the server has it (it may name an unnamed one)
	// UploadToken is the package's upload token (a secret: never print
	// it); Wait needs it to follow a portal package's deliveries. Empty
	// when the package was sent by an earlier run.
	UploadToken string
	Files       int   // files in the package
	Bytes       int64 // their total size
	Skipped     int   // files already complete on the server before this run
	Sent        int64 // bytes sent in this run (retransmissions included)
	// ReceiptURL is the sender's receipt page on a portal (files, and
	// whether they have been delivered); "" when the server made none.
	ReceiptURL string
	// AlreadySent is when an earlier run finished this same send; non-zero
	// means nothing was sent and PackageID is that earlier package.
	AlreadySent time.Time
}

// ErrInterrupted wraps a cancelled run: state is saved and a re-run resumes.
var ErrInterrupted = errors.New("interrupted: run the same command again to resume")

// NewHTTPClient returns the client Send uses by default: HTTP/1.1, one TCP
// connection per stream, bodies sent with sendfile (see tus.NewTransport).
func NewHTTPClient(streams int) *http.Client {
	return &http.Client{Transport: tus.NewTransport(streams)}
}

type job struct {
	file  *File
	fs    *FileState
	part  int // -1 = whole file
	off   int64
	size  int64
	group *partGroup // non-nil for partials
	fresh bool       // its upload was created by this run's package call, nothing sent yet
}

// partGroup tracks a split file's partials; the last one to finish
// concatenates. Each part's SHA-256 is computed while it is sent and
// declared after its last byte (see tus.Digest); nobody computes the whole
// file's: the server's first sequential read (delivery) does, and records it.
type partGroup struct {
	mu      sync.Mutex
	pending int
}

func newPartGroup() *partGroup { return &partGroup{} }

type sender struct {
	opts     Options
	zeroCopy bool // opts.HTTP uses tus.NewTransport: sendfile with progress counted on the connection
	st       *State
	api      *api
	tus      *tus.Client
	prog     Progress
	log      *slog.Logger
	sentM    sync.Mutex
	sent     int64

	startedM sync.Mutex
	started  map[string]bool

	record sentRecord // filled in and saved once the package is finalized

	resumed bool // the package was created by an earlier run and is still open

	// deferConcat: the server joins the last split file as part of the
	// finalize (a portal of a server that created uploads with the package).
	deferConcat bool
	deferredM   sync.Mutex
	deferred    []*job // split files whose concatenation rides on the finalize

	// The finalize can leave as soon as the last part's bytes are written
	// (see finalizeEarly); its outcome arrives on early.
	earlyCtx  context.Context
	earlyOnce sync.Once
	early     chan finalized
	// Under flightM, for finalizeEarly: jobs whose upload has not succeeded
	// yet, those being sent (only when deferConcat; true once their last
	// byte is written), and concatenations under way.
	flightM   sync.Mutex
	remaining int
	inFlight  map[*job]bool
	joining   int
}

type finalized struct {
	pkg     Package
	receipt string
	err     error
}

// Send uploads opts.Paths as one package and finalizes it, resuming a previous
// interrupted run with the same target, paths and name.
func Send(ctx context.Context, opts Options) (Result, error) {
	if opts.Streams <= 0 {
		opts.Streams = DefaultStreams
	}
	if opts.Streams > MaxStreams {
		return Result{}, fmt.Errorf("send: %d streams is more than the maximum %d", opts.Streams, MaxStreams)
	}
	if opts.Large <= 0 {
		opts.Large = DefaultLargeFile
	}
	if opts.MaxPart <= 0 {
		opts.MaxPart = DefaultMaxPart
	}
	if opts.HTTP == nil {
		opts.HTTP = NewHTTPClient(opts.Streams)
	}
	zeroCopy := tus.Counts(opts.HTTP.Transport)
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.StateDir == "" {
		d, err := DefaultStateDir()
		if err != nil {
			return Result{}, err
		}
		opts.StateDir = d
	}
	files, err := Walk(opts.Paths)
	if err != nil {
		return Result{}, err
	}
	var abs []string
	for _, p := range opts.Paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return Result{}, fmt.Errorf("send: %w", err)
		}
		abs = append(abs, a)
	}
	target := opts.Target.String()
	statePath := filepath.Join(opts.StateDir, StateKey(target, abs, opts.Info.Name)+".json")
	st, err := loadState(statePath, target)
	if err != nil {
		return Result{}, err
	}
	// A send in progress (even one started with --again) is resumed; only
	// a finished one is answered from the record.
	if st.PackageID == "" && len(st.Files) == 0 && !opts.Again {
		rec, ok, err := readSentRecord(sentPath(statePath), target)
		if err != nil {
			return Result{}, err
		}
		if ok {
			res := Result{PackageID: rec.PackageID, AlreadySent: rec.SentAt, Files: len(files), UploadToken: rec.UploadToken}
			for _, f := range files {
				res.Bytes += f.Size
			}
			return res, nil
		}
	}
	s := &sender{opts: opts, zeroCopy: zeroCopy, st: st, api: &api{http: opts.HTTP, target: opts.Target, backoff: opts.Backoff}, prog: opts.Progress, log: opts.Log, started: map[string]bool{}, inFlight: map[*job]bool{},
		record: sentRecord{Target: target, Name: opts.Info.Name, Paths: abs}}
	res, err := s.run(ctx, files)
	if err != nil {
		if ferr := st.flush(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("%w (%v)", ErrInterrupted, err)
	}
	return res, err
}

func (s *sender) run(ctx context.Context, files []File) (Result, error) {
	res := Result{Files: len(files), Name: s.opts.Info.Name}
	for _, f := range files {
		res.Bytes += f.Size
	}
	// The uploads' connections open while the package call is answered.
	warmed := s.preconnect(ctx, s.streamsNeeded(files))
	defer warmed()
	complete, err := s.lookupPackage(ctx)
	if err != nil {
		return res, err
	}
	if complete == nil { // finalized by an earlier run killed before it could say so
		res.PackageID, res.UploadToken = s.st.PackageID, s.st.UploadToken
		return res, s.finished(res.PackageID)
	}
	s.tus = &tus.Client{
		HTTP:       s.opts.HTTP,
		Header:     http.Header{"Authorization": {"Bearer " + s.st.UploadToken}},
		MaxRetries: s.opts.MaxRetries,
		Backoff:    s.opts.Backoff,
		Log:        s.log,
		ZeroCopy:   s.zeroCopy,
	}

	// Plan: reconcile every file with the state and the server's view.
	var jobs []*job
	var already int64
	var concatNow []*job
	var planErr error
	if err := s.st.update(func() {
		for i := range files {
			f := &files[i]
			fs := s.st.Files[f.Rel]
			if fs != nil && (fs.Size != f.Size || fs.ModTime != f.ModTime.UnixNano()) {
				if complete[f.Rel] {
					planErr = fmt.Errorf("send %s: the file changed after the server received it complete; send the changed file in a new package (use another --name)", f.Rel)
					return
				}
				s.log.Info("file changed since the last run; sending it again", "path", f.Rel)
				s.dropStale(ctx, fs)
				fs = nil
			}
			if fs == nil {
				fs = &FileState{Size: f.Size, ModTime: f.ModTime.UnixNano()}
				s.st.Files[f.Rel] = fs
			}
			if complete[f.Rel] {
				fs.Done = true
			}
			if fs.Done {
				res.Skipped++
				already += f.Size
				continue
			}
			n := partCount(f.Size, s.opts.Streams, s.opts.Large, s.opts.MaxPart)
			if len(fs.Parts) == 0 && (n == 1 || fs.URL != "") {
				jobs = append(jobs, &job{file: f, fs: fs, part: -1, size: f.Size})
				continue
			}
			if len(fs.Parts) == 0 {
				fs.Parts = splitParts(f.Size, n)
			}
			g := newPartGroup()
			for pi, p := range fs.Parts {
				if p.Done && !s.partStillThere(ctx, p.URL, p.Size) {
					s.log.Info("a finished part of the previous run is gone from the server; sending it again", "path", f.Rel, "part", pi)
					fs.Parts[pi].Done, fs.Parts[pi].URL, fs.Parts[pi].Sent = false, "", 0
					p = fs.Parts[pi]
				}
				if p.Done {
					already += p.Size
					continue
				}
				g.pending++
				jobs = append(jobs, &job{file: f, fs: fs, part: pi, off: p.Offset, size: p.Size, group: g})
			}
			if g.pending == 0 {
				concatNow = append(concatNow, &job{file: f, fs: fs, part: -1, size: f.Size})
			}
		}
	}); err != nil {
		return res, err
	}
	if planErr != nil {
		return res, planErr
	}
	// The plan (which files, split into which parts) is on disk before the
	// first upload is created, so the journal's records of their URLs always
	// find the file and part they belong to.
	if err := s.st.save(); err != nil {
		return res, err
	}
	if s.st.PackageID == "" {
		if err := s.createPackage(ctx, jobs); err != nil {
			return res, err
		}
		s.tus.Header.Set("Authorization", "Bearer "+s.st.UploadToken)
	}
	res.PackageID, res.UploadToken = s.st.PackageID, s.st.UploadToken
	if s.resumed && s.opts.Status != nil {
		// "Left" counts every file and part not finished; bytes of an
		// unfinished upload already on the server are found (and skipped)
		// when its upload resumes.
		fmt.Fprintf(s.opts.Status, "resuming: %d of %d files done, %s left\n", res.Skipped, res.Files, human(res.Bytes-already))
	}
	s.prog.Total(res.Bytes, already)
	defer s.prog.Close()
	for _, j := range concatNow {
		if err := s.concat(ctx, j); err != nil {
			return res, err
		}
	}

	s.remaining = len(jobs)
	earlyCtx, cancelEarly := context.WithCancel(ctx)
	defer cancelEarly()
	s.earlyCtx = earlyCtx
	if err := s.pipeline(ctx, jobs); err != nil {
		s.sentM.Lock()
		res.Sent = s.sent
		s.sentM.Unlock()
		return res, err
	}
	res.Sent = s.sent
	pkg, receipt, err := s.finalize(ctx)
	if err != nil {
		return res, err
	}
	for _, j := range s.deferred {
		s.prog.FileDone(j.file.Rel)
	}
	if pkg.ID != "" {
		res.PackageID = pkg.ID
	}
	res.Name, res.ReceiptURL = pkg.Name, receipt
	return res, s.finished(res.PackageID)
}

// finalize closes the package, joining the split files whose concatenation
// was deferred; an early finalize already on its way (finalizeEarly) is
// waited for, and done again the usual way if it failed.
func (s *sender) finalize(ctx context.Context) (Package, string, error) {
	if s.early != nil {
		r := <-s.early
		if r.err == nil {
			return r.pkg, r.receipt, nil
		}
		// A part sent again after its bytes arrived damaged has a new URL,
		// or its verification outlasted the server's wait: join it now.
		s.log.Debug("the early finalize failed; finalizing again", "err", r.err)
	}
	var concats []concatSpec
	for _, j := range s.deferred {
		concats = append(concats, s.concatSpec(j))
	}
	pkg, receipt, err := s.api.finalize(ctx, s.st.PackageID, s.st.UploadToken, concats)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		// A retried finalize whose first answer was lost: fine if it is finalized.
		if p, gerr := s.api.get(ctx, s.st.PackageID, s.st.UploadToken); gerr == nil && p.State == "finalized" {
			pkg, err = p, nil
		}
	}
	return pkg, receipt, err
}

// finalizeEarly sends the finalize, with the concatenation of j's file, the
// moment every byte of the package has been written to the connections,
// while the last parts' answers are still on their way: the server waits
// for the parts to be verified before it joins the file (tus's
// concatenation-unfinished, on the finalize only), and answers about half a
// round trip after the last part is in, instead of one and a half. It
// starts only when nothing is queued and everything still being sent is a
// part of j's file; whatever becomes of those parts, finalize reads the
// outcome, and finalizes the usual way if this one failed.
func (s *sender) finalizeEarly(j *job) {
	s.flightM.Lock()
	s.inFlight[j] = true
	ready := s.joining == 0 && s.remaining == len(s.inFlight)
	for k, written := range s.inFlight {
		ready = ready && written && k.group == j.group
	}
	s.flightM.Unlock()
	if !ready {
		return
	}
	s.earlyOnce.Do(func() {
		c := s.concatSpec(j)
		s.early = make(chan finalized, 1)
		go func() {
			pkg, receipt, err := s.api.finalize(s.earlyCtx, s.st.PackageID, s.st.UploadToken, []concatSpec{c})
			s.early <- finalized{pkg, receipt, err}
		}()
	})
}

// flying notes that j is being sent (on) or is done (off), for finalizeEarly.
func (s *sender) flying(j *job, on bool) {
	s.flightM.Lock()
	defer s.flightM.Unlock()
	if on {
		s.inFlight[j] = false
	} else {
		delete(s.inFlight, j)
	}
}

// finished remembers the sent package, then forgets the resume state. If the
// record cannot be written the resume state stays: a re-run then finds the
// package finalized and answers with it instead of sending it again.
func (s *sender) finished(id string) error {
	r := s.record
	r.PackageID, r.SentAt, r.UploadToken = id, time.Now().UTC(), s.st.UploadToken
	if err := writeSentRecord(sentPath(s.st.path), r); err != nil {
		return fmt.Errorf("package %s is sent, but %w", id, err)
	}
	return s.st.remove()
}

// lookupPackage asks the server, on a re-run, which files the package of the
// earlier run already holds complete. It returns nil when that package is
// finalized, and an empty map when there is no package yet (a new one, or
// the earlier one is gone: the state then forgets it).
func (s *sender) lookupPackage(ctx context.Context) (map[string]bool, error) {
	complete := map[string]bool{}
	if s.st.PackageID == "" {
		return complete, nil
	}
	pkg, err := s.api.get(ctx, s.st.PackageID, s.st.UploadToken)
	var ae *APIError
	switch {
	case err == nil:
		if pkg.State == "finalized" {
			return nil, nil
		}
		for _, f := range pkg.Files {
			if f.Complete() {
				complete[f.Path] = true
			}
		}
		s.resumed = true
		return complete, nil
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone || ae.Status == http.StatusUnauthorized):
		s.log.Info("the package of the previous run is gone; starting a new one", "package", s.st.PackageID, "status", ae.Status)
		s.st.PackageID, s.st.UploadToken, s.st.UploadURL = "", "", ""
		for _, fs := range s.st.Files { // keep only the hash cache
			fs.URL, fs.Done = "", false
			for i := range fs.Parts {
				fs.Parts[i].URL, fs.Parts[i].Done, fs.Parts[i].Sent = "", false, 0
			}
		}
		return complete, nil
	default:
		return nil, err
	}
}

// createPackage creates the package, and with it the uploads of the first
// jobs, one per stream (those start first): on a long link that saves each
// stream the round trip of its first creation. A server that does not
// create uploads this way answers without them, and each job then creates
// its own; so does any job whose creation the server refused (its own
// creation then meets the refusal, and reports it as usual).
func (s *sender) createPackage(ctx context.Context, jobs []*job) error {
	first := jobs[:min(len(jobs), s.opts.Streams)]
	specs := make([]uploadSpec, len(first))
	s.st.mu.Lock()
	for i, j := range first {
		o := s.createOpts(j)
		delete(o.Metadata, "package_token") // not known yet: the server uses the new token
		specs[i] = uploadSpec{Length: j.size, Metadata: o.Metadata, Partial: o.Partial}
	}
	s.st.mu.Unlock()
	cr, err := s.api.create(ctx, s.opts.Info, specs)
	if err != nil {
		return err
	}
	endpoint := cr.UploadURL
	if endpoint == "" {
		endpoint = "/uploads/"
	}
	eu, err := s.opts.Target.Base.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("create package: bad upload_url %q: %w", endpoint, err)
	}
	batched := len(specs) > 0 && len(cr.Uploads) == len(specs)
	// On disk, with the uploads' URLs, before any byte is sent: a re-run
	// that did not know the package would start a second one, and one that
	// did not know an upload would send its bytes again.
	s.st.mu.Lock()
	s.st.PackageID, s.st.UploadToken, s.st.UploadURL = cr.Package.ID, cr.UploadToken, eu.String()
	if batched {
		for i, j := range first {
			cu := cr.Uploads[i]
			if cu.Error != nil || cu.URL == "" {
				continue
			}
			ref, err := eu.Parse(cu.URL)
			if err != nil {
				continue
			}
			u := ref.String()
			if j.part >= 0 {
				j.fs.Parts[j.part].URL = u
			} else {
				j.fs.URL = u
			}
			j.fresh = true
		}
	}
	err = s.st.saveLocked()
	s.st.mu.Unlock()
	s.deferConcat = batched && s.opts.Target.Slug != ""
	return err
}

// partStillThere checks, on a re-run, that a part recorded as finished is
// still whole on the server: the concatenation would fail on every re-run
// otherwise. Only a clear "gone" answer counts; other errors surface later.
func (s *sender) partStillThere(ctx context.Context, u string, size int64) bool {
	off, _, err := s.tus.Offset(ctx, u)
	if errors.Is(err, tus.ErrNotFound) {
		return false
	}
	return err != nil || off == size
}

// dropStale forgets uploads of a file that changed, terminating them best-effort
// (the caller holds the state lock).
func (s *sender) dropStale(ctx context.Context, fs *FileState) {
	c := &tus.Client{HTTP: s.opts.HTTP, Header: http.Header{"Authorization": {"Bearer " + s.st.UploadToken}}, MaxRetries: 1}
	urls := []string{fs.URL}
	for _, p := range fs.Parts {
		urls = append(urls, p.URL)
	}
	for _, u := range urls {
		if u != "" {
			if err := c.Terminate(ctx, u); err != nil {
				s.log.Warn("could not terminate a stale upload", "err", err)
			}
		}
	}
}

// streamsNeeded is how many connections the uploads of files can use at once:
// opts.Streams, or fewer when there are fewer uploads (files and parts) than that.
func (s *sender) streamsNeeded(files []File) int {
	n := 0
	for _, f := range files {
		n += partCount(f.Size, s.opts.Streams, s.opts.Large, s.opts.MaxPart)
		if n >= s.opts.Streams {
			return s.opts.Streams
		}
	}
	return n
}

// preconnect opens the connections n uploads will use while the package call
// (create, or look up on a re-run) is on its way. On a long link a new
// connection costs a round trip, three with TLS, before its first request;
// without this every stream would pay it after the package call, in series
// with it. It sends tus's discovery request (OPTIONS on the upload endpoint:
// no credentials, no side effects, an empty answer) on n connections at once,
// and the transport keeps them idle for the uploads. (Not n-1 counting the
// package call's own: that one goes back to the pool only once its answer is
// read, which can be after the first uploads asked for a connection.)
// Failures are ignored: an upload then dials as it would have. The returned
// func waits for the requests to end.
func (s *sender) preconnect(ctx context.Context, n int) (wait func()) {
	endpoint := s.st.UploadURL // a re-run knows it; a new package is told it, usually this:
	if endpoint == "" {
		u, err := s.opts.Target.Base.Parse("/uploads/")
		if err != nil {
			return func() {}
		}
		endpoint = u.String()
	}
	if n <= 1 {
		return func() {} // one stream: the package call's connection serves it
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	// Each request keeps its connection until every one has a connection of
	// its own: on a fast link the first answer would otherwise come back before
	// the next request starts, and all n would share one connection.
	var mu sync.Mutex
	pending, all := n, make(chan struct{})
	arrive := func() {
		mu.Lock()
		defer mu.Unlock()
		if pending--; pending == 0 {
			close(all)
		}
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var once sync.Once
			trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
				once.Do(arrive)
				select {
				case <-all:
				case <-ctx.Done():
				}
			}}
			defer once.Do(arrive) // failed before it had a connection: nobody waits for it
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodOptions, endpoint, nil)
			if err != nil {
				return
			}
			resp, err := s.opts.HTTP.Do(req)
			if err != nil {
				s.log.Debug("opening an upload connection ahead", "err", err)
				return
			}
			// Read to the end, so the connection goes back to the pool.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		})
	}
	return func() { wg.Wait(); cancel() }
}

// partCount decides how many partial uploads a file becomes. Small files go
// whole, and so does every file sent over one stream: it then gets its
// whole-file SHA-256 verified on arrival (a split file gets its parts', and
// its whole digest from the server's first sequential read). A large file
// over several streams is split into at least one part per stream (so one
// file fills every connection) and into parts of at most maxPart (so a part
// lost to a crash or a mismatch costs at most that). The server joins the
// parts without copying (tus concatenation).
func partCount(size int64, streams int, large, maxPart int64) int {
	if size < large || streams <= 1 {
		return 1
	}
	return max(streams, int((size+maxPart-1)/maxPart))
}

// splitParts cuts size into n nearly equal ranges.
func splitParts(size int64, n int) []Part {
	parts := make([]Part, 0, n)
	per := (size + int64(n) - 1) / int64(n)
	for off := int64(0); off < size; off += per {
		parts = append(parts, Part{Offset: off, Size: min(per, size-off)})
	}
	return parts
}

// pipeline uploads jobs with opts.Streams workers. There is no hashing
// stage: each upload hashes the bytes it sends.
func (s *sender) pipeline(ctx context.Context, jobs []*job) error {
	g, ctx := errgroup.WithContext(ctx)
	todo := make(chan *job)
	g.Go(func() error {
		defer close(todo)
		for _, j := range jobs {
			select {
			case todo <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range s.opts.Streams {
		g.Go(func() error {
			for j := range todo {
				if err := s.upload(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *sender) meta(f *File) tus.Metadata {
	typ := mime.TypeByExtension(path.Ext(f.Rel))
	if typ == "" {
		typ = "application/octet-stream"
	}
	return tus.Metadata{
		"package_token": s.st.UploadToken,
		"filename":      path.Base(f.Rel),
		"relativePath":  f.Rel,
		"filetype":      typ,
	}
}

func (s *sender) addSent(n int64) {
	s.sentM.Lock()
	s.sent += n
	s.sentM.Unlock()
}

// emptySHA256 is the SHA-256 of zero bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxResends bounds how often one upload is sent again after the server
// found its bytes did not match their digest (damaged on the way).
const maxResends = 3

// upload sends one job: creates its upload unless the state holds one, resumes
// from the server's offset, and records completion. An upload whose bytes
// arrived damaged (460) is created again and sent again.
func (s *sender) upload(ctx context.Context, j *job) error {
	s.startedM.Lock()
	if !s.started[j.file.Rel] {
		s.started[j.file.Rel] = true
		s.prog.FileStart(j.file.Rel, j.file.Size)
	}
	s.startedM.Unlock()

	f, err := os.Open(j.file.Abs)
	if err != nil {
		return fmt.Errorf("send %s: %w", j.file.Rel, err)
	}
	defer f.Close()
	d := s.digest(j)
	if s.deferConcat {
		s.flying(j, true)
		defer s.flying(j, false)
		if j.part >= 0 {
			ctx = tus.OnBodySent(ctx, func() { s.finalizeEarly(j) })
		}
	}
	for attempt := 0; ; attempt++ {
		err = s.uploadOnce(ctx, j, f, d)
		if !errors.Is(err, tus.ErrMismatch) || attempt >= maxResends || ctx.Err() != nil {
			break
		}
		s.log.Warn("the server received damaged bytes; sending the upload again", "path", j.file.Rel, "part", j.part, "err", err)
		d.reset()
		if err := s.st.recordURL(j.file.Rel, j.fs, j.part, ""); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", j.file.Rel, err)
	}
	last := true // of its file's uploads
	if j.part >= 0 {
		j.group.mu.Lock()
		j.group.pending--
		last = j.group.pending == 0
		j.group.mu.Unlock()
	}
	// Out of flight and off the count in one step, as finalizeEarly reads
	// them; a concatenation about to start is counted before that, so an
	// early finalize never overtakes it and closes the package without it.
	s.flightM.Lock()
	delete(s.inFlight, j)
	s.remaining--
	lastJob := s.remaining == 0 // nothing else queued or being sent
	join := j.part >= 0 && last && !(s.deferConcat && lastJob)
	if join {
		s.joining++
	}
	s.flightM.Unlock()
	if join {
		defer func() {
			s.flightM.Lock()
			s.joining--
			s.flightM.Unlock()
		}()
	}
	if j.part < 0 {
		if err := s.st.update(func() { j.fs.Done, j.fs.Hash = true, nil }); err != nil {
			return err
		}
		s.prog.FileDone(j.file.Rel)
		return nil
	}
	if err := s.st.update(func() {
		p := &j.fs.Parts[j.part]
		p.Done, p.Sent, p.Hash = true, j.size, nil
	}); err != nil {
		return err
	}
	if !join {
		if last {
			// Nothing else is queued or being sent: the finalize that
			// follows at once joins this file (one round trip instead of two).
			s.deferredM.Lock()
			s.deferred = append(s.deferred, j)
			s.deferredM.Unlock()
		}
		return nil
	}
	return s.concat(ctx, j)
}

// uploadOnce sends the job's upload (the one the state records, or a new one).
func (s *sender) uploadOnce(ctx context.Context, j *job, f *os.File, d *digest) error {
	s.st.mu.Lock()
	u := j.fs.URL
	if j.part >= 0 {
		u = j.fs.Parts[j.part].URL
	}
	s.st.mu.Unlock()

	from := int64(0)
	fresh := j.fresh // created by the package call: at offset 0, no HEAD needed
	j.fresh = false
	if u != "" && !fresh {
		off, length, err := s.tus.Offset(ctx, u)
		switch {
		case errors.Is(err, tus.ErrNotFound):
			s.log.Info("upload from the previous run is gone; starting it again", "path", j.file.Rel)
			u = ""
		case err != nil:
			return err
		case length >= 0 && length != j.size:
			return fmt.Errorf("the server's upload %s has length %d, want %d", u, length, j.size)
		default:
			from = off
			s.prog.Resumed(j.file.Rel, off)
		}
	}
	if u == "" {
		var err error
		if u, err = s.create(ctx, j); err != nil {
			return err
		}
	}
	err := s.tus.UploadHashed(ctx, u, f, j.off, j.size, from, d, func(n int64) {
		if n > 0 {
			s.addSent(n)
		}
		s.prog.Add(j.file.Rel, n)
	})
	if err != nil && j.part >= 0 && !errors.Is(err, tus.ErrMismatch) {
		s.saveSent(ctx, j, u)
	}
	return err
}

// saveSent records how far an interrupted partial got (informative; HEAD rules).
func (s *sender) saveSent(ctx context.Context, j *job, u string) {
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := *s.tus
	c.MaxRetries = 1
	if off, _, err := c.Offset(ctx, u); err == nil {
		_ = s.st.update(func() { j.fs.Parts[j.part].Sent = off })
	}
}

// create makes the job's upload, announcing that its SHA-256 follows its
// bytes (sha256_trailer): the server then never completes it unverified.
func (s *sender) create(ctx context.Context, j *job) (string, error) {
	s.st.mu.Lock()
	opts := s.createOpts(j)
	endpoint := s.st.UploadURL
	s.st.mu.Unlock()
	u, err := s.tus.Create(ctx, endpoint, j.size, opts)
	if err != nil {
		return "", err
	}
	// Durable before the first byte: a sender killed mid-file finds this
	// upload again and continues it from the server's offset.
	return u, s.st.recordURL(j.file.Rel, j.fs, j.part, u)
}

// createOpts is the tus creation of j's upload (the caller holds the state lock).
func (s *sender) createOpts(j *job) tus.CreateOpts {
	var opts tus.CreateOpts
	opts.Metadata = s.meta(j.file)
	if j.size == 0 {
		// Complete at creation, before any PATCH could carry a trailer;
		// the digest of nothing needs no read.
		opts.Metadata["sha256"] = emptySHA256
	} else {
		opts.Metadata["sha256_trailer"] = "1"
	}
	if j.part >= 0 {
		// A partial names its file and the whole file's size, so the
		// server checks path, extension and limits before storing a byte.
		opts.Partial = true
		opts.Metadata["partial_index"] = strconv.Itoa(j.part)
		opts.Metadata["file_size"] = strconv.FormatInt(j.file.Size, 10)
	}
	return opts
}

// concat joins a split file's partials into the final upload. It declares
// no whole-file digest: every partial was verified on arrival, and the
// server's first sequential read of the file computes and records it.
func (s *sender) concat(ctx context.Context, j *job) error {
	s.st.mu.Lock()
	urls := make([]string, len(j.fs.Parts))
	for i, p := range j.fs.Parts {
		urls[i] = p.URL
	}
	endpoint := s.st.UploadURL
	final := j.fs.URL
	s.st.mu.Unlock()
	if s.finalExists(ctx, final, j.file.Size) {
		// A run killed after the concatenation but before its state was
		// saved: a second final would be a second copy of the file.
		if err := s.st.update(func() { j.fs.Done = true }); err != nil {
			return err
		}
		s.prog.FileDone(j.file.Rel)
		return nil
	}
	u, err := s.tus.Concat(ctx, endpoint, urls, s.meta(j.file))
	if err != nil {
		return fmt.Errorf("send %s: %w", j.file.Rel, err)
	}
	if err := s.st.recordURL(j.file.Rel, j.fs, -1, u); err != nil {
		return err
	}
	if err := s.st.update(func() { j.fs.Done = true }); err != nil {
		return err
	}
	s.prog.FileDone(j.file.Rel)
	return nil
}

// concatSpec is j's concatenation for the finalize to run.
func (s *sender) concatSpec(j *job) concatSpec {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	c := concatSpec{Metadata: s.meta(j.file)}
	for _, p := range j.fs.Parts {
		c.Partials = append(c.Partials, p.URL)
	}
	return c
}

// finalExists reports whether a final upload recorded by an earlier run is
// complete on the server, with the file's size.
func (s *sender) finalExists(ctx context.Context, u string, size int64) bool {
	if u == "" {
		return false
	}
	off, length, err := s.tus.Offset(ctx, u)
	return err == nil && length == size && off == size
}
