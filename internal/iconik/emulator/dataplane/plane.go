package dataplane

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configures a Plane. Zero values run out of the box.
type Options struct {
	BaseURL          string        // public base URL of the emulator, e.g. http://127.0.0.1:PORT
	URLTTL           time.Duration // lifetime of every signed URL; default 1h
	ProviderFailRate float64       // 0..1 share of data-plane requests answered 503 before the body is read
	Secret           []byte        // signing secret; random when empty (URLs then die with the process)
	Now              func() time.Time
}

// Storage is one iconik storage as the plane sees it.
type Storage struct {
	ID, Method string         // Method: S3 | GCS | AZURE | B2
	Dir        string         // directory holding this storage's objects (built-in plane)
	Settings   map[string]any // iconik storage settings; S3 "endpoint" naming another server = external S3
}

// UploadFields are the upload fields of an iconik FileSchema.
type UploadFields struct {
	UploadURL          string         `json:"upload_url,omitempty"`
	MultipartUploadURL string         `json:"multipart_upload_url,omitempty"`
	UploadCredentials  map[string]any `json:"upload_credentials,omitempty"`
	UploadFilename     string         `json:"upload_filename,omitempty"`
	UploadMethod       string         `json:"upload_method,omitempty"`
}

// PartURL is a presigned S3 UploadPart URL.
type PartURL struct {
	Number int
	URL    string
}

// B2Large is a started B2 large file: parts go to UploadURL with AuthorizationToken.
type B2Large struct{ UploadFileID, UploadURL, AuthorizationToken string }

// Provider methods as iconik names them.
const (
	MethodS3    = "S3"
	MethodGCS   = "GCS"
	MethodAzure = "AZURE"
	MethodB2    = "B2"
)

// stagingDir is the reserved top-level directory inside a storage's Dir that holds unfinished uploads.
// Keeping it inside Dir makes completion a rename on the same file system; keys may not name it.
const stagingDir = ".ferry-dataplane"

// Plane serves every emulated storage's data plane under <BaseURL>/_storage/.
type Plane struct {
	mu       sync.Mutex
	base     string
	storages map[string]Storage // by ID: learnt from every call that names a storage, and Register

	ttl      time.Duration
	failRate float64
	secret   []byte
	now      func() time.Time

	// s3Key/s3Secret are the built-in S3 plane's credentials, derived from secret.
	s3Key, s3Secret string
}

// New returns a Plane.
func New(opts Options) *Plane {
	p := &Plane{
		base:     strings.TrimRight(opts.BaseURL, "/"),
		storages: map[string]Storage{},
		ttl:      opts.URLTTL,
		failRate: opts.ProviderFailRate,
		secret:   opts.Secret,
		now:      opts.Now,
	}
	if p.ttl <= 0 {
		p.ttl = time.Hour
	}
	if p.now == nil {
		p.now = time.Now
	}
	if len(p.secret) == 0 {
		p.secret = make([]byte, 32)
		_, _ = rand.Read(p.secret)
	}
	p.s3Key = "FERRYEMULATOR" + strings.ToUpper(hex.EncodeToString(p.derive("s3-access-key"))[:7])
	p.s3Secret = hex.EncodeToString(p.derive("s3-secret-key"))
	return p
}

// SetBaseURL sets the public base URL used in signed URLs handed out from now on.
func (p *Plane) SetBaseURL(u string) {
	p.mu.Lock()
	p.base = strings.TrimRight(u, "/")
	p.mu.Unlock()
}

// Register tells the plane about a storage so that URLs naming it are served even before any other
// call named it (for example right after a restart). Every other method registers its storage too.
func (p *Plane) Register(st Storage) {
	p.mu.Lock()
	p.storages[st.ID] = st
	p.mu.Unlock()
}

func (p *Plane) baseURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base
}

func (p *Plane) storage(id string) (Storage, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.storages[id]
	return st, ok
}

// derive returns a purpose-bound key so that one leaked signature type cannot forge another.
func (p *Plane) derive(purpose string) []byte {
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// sign is the HMAC used by the GCS, Azure and B2 planes (their real signatures need keys iconik holds;
// what matters here is that the plane refuses anything it did not hand out).
func (p *Plane) sign(purpose string, fields ...string) []byte {
	m := hmac.New(sha256.New, p.derive(purpose))
	for _, f := range fields {
		fmt.Fprintf(m, "%d:%s\n", len(f), f)
	}
	return m.Sum(nil)
}

// shouldFail decides whether to inject a provider 503.
func (p *Plane) shouldFail() bool {
	return p.failRate > 0 && mrand.Float64() < p.failRate
}

// Handler serves /_storage/...; it sees full paths.
func (p *Plane) Handler() http.Handler {
	return http.HandlerFunc(p.serve)
}

func (p *Plane) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/_storage/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	kind, rest, _ := strings.Cut(rest, "/")
	sid, rest, _ := strings.Cut(rest, "/")
	switch kind {
	case "s3":
		p.serveS3(w, r, sid, rest)
	case "gcs":
		p.serveGCSStart(w, r, sid, rest)
	case "gcs-upload":
		p.serveGCSSession(w, r, sid, rest)
	case "azure":
		p.serveAzure(w, r, sid, rest)
	case "b2":
		p.serveB2(w, r, sid, rest)
	default:
		http.NotFound(w, r)
	}
}

// ValidateKey reports whether key is a safe "/"-separated path inside a storage.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("empty object key")
	}
	if len(key) > 1024 {
		return fmt.Errorf("object key longer than 1024 bytes: %d", len(key))
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("object key %q holds a NUL or backslash", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("object key %q has an empty, . or .. segment", key)
		}
	}
	if first, _, _ := strings.Cut(key, "/"); first == stagingDir {
		return fmt.Errorf("object key %q uses the reserved prefix %s", key, stagingDir)
	}
	if !filepath.IsLocal(filepath.FromSlash(key)) || path.Clean(key) != key {
		return fmt.Errorf("object key %q is not a clean relative path", key)
	}
	return nil
}

// objectPath maps a validated key to its file.
func objectPath(st Storage, key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if st.Dir == "" {
		return "", fmt.Errorf("storage %s has no directory", st.ID)
	}
	return filepath.Join(st.Dir, filepath.FromSlash(key)), nil
}

// stage returns (creating it) a staging directory for one unfinished upload.
func stage(st Storage, kind, id string) string {
	return filepath.Join(st.Dir, stagingDir, kind, id)
}

// validID guards ids that become file names (upload ids, sessions, B2 file ids).
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Open reads an object back: the file under st.Dir for the built-in plane, GetObject for external S3.
func (p *Plane) Open(st Storage, key string) (io.ReadCloser, int64, error) {
	p.Register(st)
	if ext, ok := externalS3(st, p.baseURL()); ok {
		return ext.open(key)
	}
	fp, err := objectPath(st, key)
	if err != nil {
		return nil, 0, fmt.Errorf("open object in storage %s: %w", st.ID, err)
	}
	f, err := os.Open(fp)
	if err != nil {
		return nil, 0, fmt.Errorf("open object %q in storage %s: %w", key, st.ID, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat object %q in storage %s: %w", key, st.ID, err)
	}
	return f, fi.Size(), nil
}

// UploadFields returns fresh upload fields for key (path within the storage, "/"-separated).
func (p *Plane) UploadFields(st Storage, key string, size int64) (UploadFields, error) {
	p.Register(st)
	if err := ValidateKey(key); err != nil {
		return UploadFields{}, fmt.Errorf("upload fields for storage %s: %w", st.ID, err)
	}
	switch strings.ToUpper(st.Method) {
	case MethodS3:
		return p.s3UploadFields(st, key)
	case MethodGCS:
		return UploadFields{UploadURL: p.gcsStartURL(st, key)}, nil
	case MethodAzure:
		return UploadFields{UploadURL: p.azureSASURL(st, key)}, nil
	case MethodB2:
		return p.b2UploadFields(st, key), nil
	default:
		return UploadFields{}, fmt.Errorf("upload fields for storage %s: method %q has no data plane", st.ID, st.Method)
	}
}
