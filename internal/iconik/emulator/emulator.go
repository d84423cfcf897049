package emulator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/iconik/ispec" // the spec, not ferry's domain: see speccheck.go
)

// Options configures an emulator. Zero values run out of the box except
// DataDir, which is required.
type Options struct {
	DataDir string // state.json, credentials.json, storages/<id>/ (bytes), keyframes/; survives restarts
	BaseURL string // public base URL (http://127.0.0.1:PORT) used in next_url and upload URLs; or SetBaseURL later
	Seed    *Seed  // nil = DefaultSeed()
	Faults  Faults // all off by default
	// BatchDelay is how long a batch metadata update answered 202 waits
	// before it is applied (iconik queues it); 0 = 100ms, negative = at once.
	BatchDelay time.Duration
	Logger     *slog.Logger // nil = discard
	// Volatile keeps changes in memory until Close writes them: an answer
	// no longer waits for a snapshot of the whole tenant, so a kill loses
	// what changed since the start. For benchmarks: each snapshot encodes the
	// whole state under the emulator's lock, which with thousands of objects
	// made the emulator itself, not iconik's modelled rate limit and latency
	// (Faults), what bounded a run. Crash tests must leave it off.
	Volatile bool
	// CheckSpec, when set, checks every /API/ request and answer against
	// iconik's official specs (internal/iconik/ispec) and is called once per
	// mismatch; nil = unchecked. Tests and the crash test's child process set
	// it so no iconik traffic of the suite goes unchecked.
	CheckSpec func(mismatch error)
}

// Faults are injected failures, each off at its zero value.
type Faults struct {
	Latency           time.Duration // added to every /API call
	RateLimit         float64       // requests per second per App-ID; 0 = off; over it: 429 + Retry-After
	FailRate          float64       // 0..1 share of /API calls answered 500
	ProviderFailRate  float64       // 0..1 share of data-plane calls answered 503
	IndexLag          time.Duration // new collections/assets appear in contents and search only after this
	URLTTL            time.Duration // lifetime of signed URLs (default 1h)
	MissingRoleStatus int           // status when a token lacks a role; default 403
}

// Credential is one application token and the user it acts as.
type Credential struct {
	Name    string   `json:"name"`
	AppID   string   `json:"app_id"`
	Token   string   `json:"token"`
	UserID  string   `json:"user_id"`
	Email   string   `json:"email"`
	Type    string   `json:"type"`
	IsAdmin bool     `json:"is_admin"`
	Roles   []string `json:"roles"`
}

// Server is one emulated iconik tenant.
type Server struct {
	opts   Options
	log    *slog.Logger
	plane  *dataplane.Plane
	routes []*route
	limits *limiter
	faults *faultDice

	mu      sync.Mutex // guards st and baseURL
	st      *state
	baseURL string

	handler http.Handler
	ctx     context.Context // cancelled by Close: stops transcode jobs
	cancel  context.CancelFunc
	jobs    sync.WaitGroup
	// transcodeSlots bounds concurrent keyframe jobs: ffmpeg on a shared
	// 2-core machine must not run once per file at the same time.
	transcodeSlots chan struct{}
	dirty          chan struct{} // a mutation awaits the snapshot writer
	writerDone     chan struct{}
	closed         bool
	gen            int64 // guarded by mu: changes committed by calls so far

	// The snapshot writer's progress, for calls waiting to answer until
	// their change is on disk (see waitSaved).
	savedMu   sync.Mutex
	savedCond *sync.Cond
	saved     int64 // the generation the newest snapshot on disk holds
	failed    int64 // the generation of the newest snapshot that failed to write
	saveErr   error
	stopped   bool // the writer has exited; Close wrote the last snapshot
}

// New loads (or creates) the state under opts.DataDir, applies the seed and
// returns a ready server.
func New(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("iconik emulator: Options.DataDir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating emulator data directory %s: %w", opts.DataDir, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Faults.MissingRoleStatus == 0 {
		opts.Faults.MissingRoleStatus = http.StatusForbidden
	}
	var spec *ispec.Spec
	if opts.CheckSpec != nil {
		var err error
		if spec, err = ispec.Load(); err != nil { // before any goroutine starts: nothing to stop on failure
			return nil, fmt.Errorf("iconik emulator: loading the specs to check traffic against: %w", err)
		}
	}
	seed := opts.Seed
	if seed == nil {
		seed = DefaultSeed()
	}
	if err := seed.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, baseURL: strings.TrimRight(opts.BaseURL, "/")}
	s.savedCond = sync.NewCond(&s.savedMu)
	st, err := loadState(s.statePath())
	if err != nil {
		return nil, err
	}
	if len(st.Secret) == 0 {
		st.Secret = make([]byte, 32)
		if _, err := rand.Read(st.Secret); err != nil {
			return nil, fmt.Errorf("making the emulator's signing secret: %w", err)
		}
	}
	s.st = st
	if err := s.applySeed(seed); err != nil {
		return nil, err
	}
	s.plane = dataplane.New(dataplane.Options{
		BaseURL:          s.baseURL,
		URLTTL:           opts.Faults.URLTTL,
		ProviderFailRate: opts.Faults.ProviderFailRate,
		Secret:           st.Secret,
	})
	for _, d := range st.list(kStorages, nil) {
		// URLs handed out before a restart name storages the plane must know.
		s.plane.Register(s.planeStorage(d))
	}
	s.routes = s.buildRoutes()
	for _, rt := range s.routes {
		if _, ok := specOps[rt.key()]; !ok {
			return nil, fmt.Errorf("iconik emulator: route %s is not an operation of iconik's spec", rt.key())
		}
	}
	s.limits = newLimiter(opts.Faults.RateLimit)
	s.faults = newFaultDice()
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	if err := s.writeCredentials(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.transcodeSlots = make(chan struct{}, 2)
	s.dirty, s.writerDone = make(chan struct{}, 1), make(chan struct{})
	s.handler = s.newHandler()
	if spec != nil {
		s.handler = checkSpec(s.handler, spec, opts.Faults.MissingRoleStatus, opts.CheckSpec)
	}
	s.resumeJobs()
	s.resumeBatches()
	go s.snapshotWriter(s.ctx, s.writerDone)
	return s, nil
}

func (s *Server) statePath() string { return filepath.Join(s.opts.DataDir, "state.json") }

// storageDir is where the data plane keeps one storage's objects.
func (s *Server) storageDir(id string) string {
	return filepath.Join(s.opts.DataDir, "storages", id)
}

func (s *Server) keyframeDir() string { return filepath.Join(s.opts.DataDir, "keyframes") }

// SetBaseURL sets the public base URL used in next_url, upload and keyframe URLs.
func (s *Server) SetBaseURL(u string) {
	u = strings.TrimRight(u, "/")
	s.mu.Lock()
	s.baseURL = u
	s.mu.Unlock()
	s.plane.SetBaseURL(u)
}

// Credentials lists every application token with the user it acts as.
func (s *Server) Credentials() []Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Credential
	for _, t := range s.st.Tokens {
		u := s.st.userByID(t.UserID)
		if u == nil {
			continue
		}
		out = append(out, Credential{
			Name: t.Name, AppID: t.AppID, Token: t.Token, UserID: u.ID, Email: u.Email,
			Type: u.Type, IsAdmin: u.IsAdmin, Roles: s.rolesOf(t, u),
		})
	}
	return out
}

// writeCredentials writes <data>/credentials.json, readable by its owner only
// because it holds tokens.
func (s *Server) writeCredentials() error {
	return writeJSONAtomic(filepath.Join(s.opts.DataDir, "credentials.json"), s.Credentials(), 0o600)
}

// Close stops running transcode jobs and writes the state a last time.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.jobs.Wait()
	<-s.writerDone
	s.mu.Lock()
	err := s.saveLocked()
	g := s.gen
	s.mu.Unlock()
	s.savedMu.Lock()
	if err == nil {
		s.saved = g
	}
	s.stopped = true
	s.savedCond.Broadcast()
	s.savedMu.Unlock()
	return err
}

// Handler serves the whole emulator: /API/... (control plane), /_storage/...
// (data plane), /_keyframes/... (keyframe images) and / (browse page).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/API/", http.HandlerFunc(s.serveAPI))
	mux.Handle("/_storage/", s.plane.Handler())
	mux.HandleFunc("GET /_keyframes/{name}", s.serveKeyframe)
	mux.HandleFunc("GET /{$}", s.serveBrowse)
	return mux
}

// OpenObject reads back the bytes stored under key in a storage, so tests can
// check what an upload left behind (key = settings.path + directory_path + name).
func (s *Server) OpenObject(storageID, key string) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	d := s.st.get(kStorages, storageID)
	s.mu.Unlock()
	if d == nil {
		return nil, 0, fmt.Errorf("iconik emulator: no storage %s", storageID)
	}
	return s.plane.Open(s.planeStorage(d), key)
}
