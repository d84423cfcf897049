package sendtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/ingest"
)

// APIToken is the admin API token the stand-in accepts.
const APIToken = "test-api-token"

// Server is the stand-in. Create it with New (or Start in tests).
type Server struct {
	Dir string

	ing      *ingest.Ingest // ferry's own tus server: the sender is tested against the real protocol
	mux      *http.ServeMux
	received atomic.Int64
	patches  atomic.Int64
	active   atomic.Int64 // PATCH requests being served

	mu       sync.Mutex
	portals  map[string]string // slug -> password ("" = none)
	packages map[string]*pkg
	dropAt   int64 // received count at which to drop the connection once (0 = off)
	fail5xx  int   // answer the next n PATCHes with 503
	failAPI  int   // answer the next n package API calls with 503
	rate     int64 // PATCH body bytes per second (0 = unlimited)
	corrupt  int64 // received count at which to flip one byte once (0 = off)
	noTrail  bool  // drop PATCH trailers, as some proxies do
}

type pkg struct {
	ID, Slug, Name, Desc, Email, Token, State string
	Files                                     map[string]*file // by path
}

type file struct {
	Path, SHA256, UploadID, State string
	Size                          int64
}

type connKey struct{}

// New builds the stand-in storing uploads under dir.
func New(dir string) (*Server, error) {
	s := &Server{Dir: dir, portals: map[string]string{}, packages: map[string]*pkg{}}
	ing, err := ingest.New(ingest.Config{Dir: dir, NoSync: true, Logger: slog.New(slog.DiscardHandler)}, gate{s})
	if err != nil {
		return nil, fmt.Errorf("sendtest: %w", err)
	}
	s.ing = ing
	s.mux = http.NewServeMux()
	s.mux.Handle("/uploads/", s.countPatches(ing.Handler()))
	s.mux.Handle("/uploads", s.countPatches(ing.Handler()))
	s.mux.HandleFunc("POST /p/{slug}/packages", s.faulty(s.createPackage))
	s.mux.HandleFunc("GET /p/{slug}/packages/{id}", s.faulty(s.getPackage))
	s.mux.HandleFunc("POST /p/{slug}/packages/{id}/finalize", s.faulty(s.finalize))
	s.mux.HandleFunc("POST /api/v1/packages", s.faulty(s.createPackage))
	s.mux.HandleFunc("GET /api/v1/packages/{id}", s.faulty(s.getPackage))
	s.mux.HandleFunc("POST /api/v1/packages/{id}/finalize", s.faulty(s.finalize))
	// tusd's handler drains CompleteUploads only if notified; nothing to drain here.
	return s, nil
}

// Handler serves the stand-in.
func (s *Server) Handler() http.Handler { return s.mux }

// ConnContext must be set as the http.Server's ConnContext for DropConnectionAfter to work.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// TestServer is a started stand-in.
type TestServer struct {
	*Server
	URL     string
	RootCAs *x509.CertPool // trusts the server's certificate (StartTLS only)
}

// Start runs the stand-in on 127.0.0.1 for one test, with a portal "demo" (no password).
func Start(t testing.TB) *TestServer { return start(t, false) }

// StartTLS is Start over HTTPS with a self-signed certificate.
func StartTLS(t testing.TB) *TestServer { return start(t, true) }

func start(t testing.TB, useTLS bool) *TestServer {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.AddPortal("demo", "")
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Config.ConnContext = s.ConnContext
	ts := &TestServer{Server: s}
	if useTLS {
		hs.StartTLS()
		ts.RootCAs = x509.NewCertPool()
		ts.RootCAs.AddCert(hs.Certificate())
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	ts.URL = hs.URL
	return ts
}

// AddPortal makes /p/slug accept packages (with an upload password unless empty).
func (s *Server) AddPortal(slug, password string) {
	s.mu.Lock()
	s.portals[slug] = password
	s.mu.Unlock()
}

// Received is the number of PATCH body bytes that reached the server.
func (s *Server) Received() int64 { return s.received.Load() }

// Patches is the number of PATCH requests seen.
func (s *Server) Patches() int64 { return s.patches.Load() }

// ActivePatches is the number of PATCH requests still being served: after a
// client is killed, the server goes on reading what the kernel already
// buffered, so a test waits for zero before it counts what was stored.
func (s *Server) ActivePatches() int64 { return s.active.Load() }

// DropConnectionAfter closes the TCP connection of the PATCH that is under way
// once n more body bytes have arrived (once).
func (s *Server) DropConnectionAfter(n int64) {
	s.mu.Lock()
	s.dropAt = s.received.Load() + n
	s.mu.Unlock()
}

// Throttle limits how fast PATCH bodies are read (bytes per second, 0 = off),
// so a test can interrupt an upload midway.
func (s *Server) Throttle(bytesPerSec int64) {
	s.mu.Lock()
	s.rate = bytesPerSec
	s.mu.Unlock()
}

// CorruptAfter flips one body byte once n more body bytes have arrived, as a
// faulty link or proxy might: the upload's SHA-256 no longer matches.
func (s *Server) CorruptAfter(n int64) {
	s.mu.Lock()
	s.corrupt = s.received.Load() + n + 1
	s.mu.Unlock()
}

// DropTrailers makes every PATCH arrive without its HTTP trailers, as behind
// a proxy that drops them.
func (s *Server) DropTrailers() {
	s.mu.Lock()
	s.noTrail = true
	s.mu.Unlock()
}

// FailAPI answers the next n package API requests (create, get, finalize) with 503.
func (s *Server) FailAPI(n int) {
	s.mu.Lock()
	s.failAPI = n
	s.mu.Unlock()
}

// FailPatches answers the next n PATCH requests with 503 before reading them.
func (s *Server) FailPatches(n int) {
	s.mu.Lock()
	s.fail5xx = n
	s.mu.Unlock()
}

// PackageFile is one completed file of a package, for assertions.
type PackageFile struct {
	Path, SHA256 string
	Size         int64
	Bytes        func() ([]byte, error)
}

// PackageState returns a package's state and its completed files by path.
func (s *Server) PackageState(id string) (string, map[string]PackageFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.packages[id]
	if p == nil {
		return "", nil
	}
	out := map[string]PackageFile{}
	for path, f := range p.Files {
		id := f.UploadID
		out[path] = PackageFile{Path: path, SHA256: f.SHA256, Size: f.Size, Bytes: func() ([]byte, error) { return s.read(id) }}
	}
	return p.State, out
}

// Packages lists package ids.
func (s *Server) Packages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.packages {
		ids = append(ids, id)
	}
	return ids
}

// faulty answers 503 while FailAPI's budget lasts.
func (s *Server) faulty(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		fail := s.failAPI > 0
		if fail {
			s.failAPI--
		}
		s.mu.Unlock()
		if fail {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "Injected failure: try again.")
			return
		}
		h(w, r)
	}
}

func (s *Server) countPatches(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			s.patches.Add(1)
			s.active.Add(1)
			defer s.active.Add(-1)
			s.mu.Lock()
			fail := s.fail5xx > 0
			if fail {
				s.fail5xx--
			}
			s.mu.Unlock()
			if fail {
				writeErr(w, http.StatusServiceUnavailable, "unavailable", "Injected failure: try again.")
				return
			}
			conn, _ := r.Context().Value(connKey{}).(net.Conn)
			r.Body = &countingBody{ReadCloser: r.Body, s: s, conn: conn, req: r}
		}
		next.ServeHTTP(w, r)
	})
}

type countingBody struct {
	io.ReadCloser
	s    *Server
	conn net.Conn
	req  *http.Request
}

func (b *countingBody) Read(p []byte) (int, error) {
	s := b.s
	s.mu.Lock()
	dropAt, rate := s.dropAt, s.rate
	s.mu.Unlock()
	if rate > 0 {
		if len(p) > 32<<10 {
			p = p[:32<<10]
		}
		time.Sleep(time.Duration(int64(len(p)) * int64(time.Second) / rate))
	}
	if dropAt > 0 {
		if room := dropAt - s.received.Load(); room <= 0 {
			s.mu.Lock()
			s.dropAt = 0
			s.mu.Unlock()
			if b.conn != nil {
				b.conn.Close()
			}
			return 0, fmt.Errorf("sendtest: connection dropped on purpose")
		} else if int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := b.ReadCloser.Read(p)
	s.mu.Lock()
	if at := s.corrupt - s.received.Load(); s.corrupt > 0 && at >= 1 && at <= int64(n) {
		p[at-1] ^= 0xff
		s.corrupt = 0
	}
	if err == io.EOF && s.noTrail {
		// net/http merged the trailers into the request's map at EOF.
		for k := range b.req.Trailer {
			delete(b.req.Trailer, k)
		}
	}
	s.mu.Unlock()
	s.received.Add(int64(n))
	return n, err
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func bearer(r *http.Request) string { return bearerOf(r.Header) }

func (s *Server) packageByToken(tok string) *pkg {
	for _, p := range s.packages {
		if p.Token == tok {
			return p
		}
	}
	return nil
}

// read returns an upload's bytes as delivery reads them.
func (s *Server) read(id string) ([]byte, error) {
	b, err := s.ing.Open(context.Background(), id)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	out := make([]byte, b.Size())
	if _, err := b.ReadAt(out, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return out, nil
}

// gate is the stand-in's domain side of ingest: packages in memory.
type gate struct{ s *Server }

const metaPackage = "package_id"

// Admit: the package token must match and the path be sane.
func (g gate) Admit(_ context.Context, u ingest.Upload) (ingest.Admission, error) {
	s := g.s
	tok := u.Metadata[ingest.MetaToken]
	if h := bearerOf(u.Header); tok == "" {
		tok = h
	}
	meta := u.Metadata
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.packageByToken(tok)
	switch {
	case p == nil:
		return ingest.Admission{}, &ingest.Rejection{Status: 401, Code: "bad_upload_token", Message: "The upload token is missing or unknown."}
	case p.State != "uploading":
		return ingest.Admission{}, &ingest.Rejection{Status: 409, Code: "package_finalized", Message: "The package is already finalized."}
	}
	adm := ingest.Admission{Metadata: map[string]string{metaPackage: p.ID}}
	if u.IsPartial {
		// Like ferry's server: a partial names its file and the whole
		// file's size (contract C), so it can be checked before storage.
		if (meta["relativePath"] == "" && meta["filename"] == "") || meta["file_size"] == "" {
			return ingest.Admission{}, &ingest.Rejection{Status: 400, Code: "partial_metadata_required",
				Message: "A partial upload must carry relativePath, filename and file_size."}
		}
		return adm, nil
	}
	rp := relPath(meta)
	if rp == "" || strings.HasPrefix(rp, "/") || strings.Contains("/"+rp+"/", "/../") {
		return ingest.Admission{}, &ingest.Rejection{Status: 400, Code: "bad_path", Message: fmt.Sprintf("The path %q is not allowed.", rp)}
	}
	if f := p.Files[rp]; f != nil && f.State == "complete" {
		return ingest.Admission{}, &ingest.Rejection{Status: 409, Code: "duplicate_path", Message: fmt.Sprintf("The package already has %q.", rp)}
	}
	return adm, nil
}

func relPath(meta map[string]string) string {
	rp := meta["relativePath"]
	if rp == "" || rp == "null" {
		rp = meta["filename"]
	}
	return rp
}

// Complete records a completed whole file with the digest ingest verified (or the one the
// sender declared on a final, which delivery would confirm).
func (g gate) Complete(_ context.Context, u ingest.Upload, sum ingest.Checksums) error {
	s := g.s
	digest := u.Metadata[ingest.MetaSHA256]
	if sum.SHA256 != nil {
		digest = hex.EncodeToString(sum.SHA256)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.packages[u.Metadata[metaPackage]]; p != nil {
		rp := relPath(u.Metadata)
		p.Files[rp] = &file{Path: rp, SHA256: digest, UploadID: u.ID, State: "complete", Size: u.Size}
	}
	return nil
}

func (gate) Failed(context.Context, ingest.Upload, string) error { return nil }
func (gate) Removed(context.Context, ingest.Upload) error        { return nil }

func bearerOf(h http.Header) string {
	if t, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return ""
}

func (s *Server) createPackage(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name, Description, Password string
		SenderEmail                 string `json:"sender_email"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "bad_json", "The request body is not valid JSON.")
		return
	}
	slug := r.PathValue("slug")
	s.mu.Lock()
	defer s.mu.Unlock()
	if slug == "" {
		if bearer(r) != APIToken {
			writeErr(w, 401, "bad_api_token", "The API token is missing or wrong.")
			return
		}
	} else {
		pw, ok := s.portals[slug]
		if !ok {
			writeErr(w, 404, "portal_not_found", fmt.Sprintf("There is no portal %q.", slug))
			return
		}
		if pw != "" && pw != in.Password {
			writeErr(w, 403, "wrong_password", "The upload password is wrong.")
			return
		}
	}
	p := &pkg{ID: randID(), Slug: slug, Name: in.Name, Desc: in.Description, Email: in.SenderEmail, Token: randID() + randID(), State: "uploading", Files: map[string]*file{}}
	s.packages[p.ID] = p
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"package": view(p), "upload_token": p.Token, "upload_url": "/uploads/"})
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *pkg {
	p := s.packages[r.PathValue("id")]
	if p == nil || p.Slug != r.PathValue("slug") {
		writeErr(w, 404, "package_not_found", "There is no such package.")
		return nil
	}
	if tok := bearer(r); (p.Slug == "" && tok != APIToken) || (p.Slug != "" && tok != p.Token) {
		writeErr(w, 401, "bad_upload_token", "The upload token is missing or wrong.")
		return nil
	}
	return p
}

func (s *Server) getPackage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lookup(w, r); p != nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"package": view(p)})
	}
}

func (s *Server) finalize(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lookup(w, r); p != nil {
		if len(p.Files) == 0 {
			writeErr(w, 409, "empty_package", "The package has no complete files.")
			return
		}
		p.State = "finalized"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"package": view(p)})
	}
}

func view(p *pkg) map[string]any {
	var files []map[string]any
	var total int64
	for _, f := range p.Files {
		files = append(files, map[string]any{"id": f.UploadID, "path": f.Path, "size": f.Size, "sha256": f.SHA256, "state": f.State, "upload_id": f.UploadID})
		total += f.Size
	}
	return map[string]any{"id": p.ID, "name": p.Name, "description": p.Desc, "sender_email": p.Email, "portal_id": p.Slug,
		"state": p.State, "total_size": total, "file_count": len(files), "created_at": time.Now().UTC(), "files": files}
}

func randID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
