package send

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// State is what a re-run needs to continue: the package, its upload token and
// every upload URL created so far. Offsets are not trusted from here: the
// server's HEAD answer is. Kept in a 0600 file because it holds the upload token.
type State struct {
	Version     int                   `json:"version"`
	Target      string                `json:"target"`
	PackageID   string                `json:"package_id,omitempty"`
	UploadToken string                `json:"upload_token,omitempty"`
	UploadURL   string                `json:"upload_url,omitempty"` // absolute tus endpoint
	Files       map[string]*FileState `json:"files"`                // by package path

	mu    sync.Mutex
	path  string
	dirty bool
	saved time.Time
}

// FileState is one file's progress.
type FileState struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256,omitempty"` // whole file (declared on a single upload, or on a split file's final)
	URL     string `json:"url,omitempty"`    // whole upload, or the final concatenation
	Parts   []Part `json:"parts,omitempty"`
	Done    bool   `json:"done,omitempty"`
}

// Part is one partial upload of a file sent in parallel streams.
type Part struct {
	Offset int64  `json:"offset"` // in the file
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	URL    string `json:"url,omitempty"`
	Sent   int64  `json:"sent,omitempty"` // bytes the server held when last seen (informative)
	Done   bool   `json:"done,omitempty"`
}

const stateVersion = 1

// StateKey names the resume file for one invocation: the same target, the same
// set of paths and the same package name continue the same package.
func StateKey(target string, absPaths []string, name string) string {
	ps := append([]string(nil), absPaths...)
	sort.Strings(ps)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", target, name)
	for _, p := range ps {
		fmt.Fprintf(h, "%s\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// DefaultStateDir is os.UserCacheDir()/ferry/send.
func DefaultStateDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache dir for resume state: %w", err)
	}
	return filepath.Join(d, "ferry", "send"), nil
}

// loadState reads the state at path, or starts an empty one if none exists or
// it belongs to another target/version.
func loadState(path, target string) (*State, error) {
	st := &State{Version: stateVersion, Target: target, Files: map[string]*FileState{}, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read resume state %s: %w", path, err)
	}
	var old State
	if err := json.Unmarshal(b, &old); err != nil || old.Version != stateVersion || old.Target != target {
		return st, nil // unreadable or foreign: start over rather than fail
	}
	if old.Files == nil {
		old.Files = map[string]*FileState{}
	}
	old.path = path
	return &old, nil
}

// saveLocked writes the state atomically (temp file + rename).
func (s *State) saveLocked() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode resume state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	s.dirty, s.saved = false, time.Now()
	return nil
}

// saveEvery throttles saves: each writes the whole state, so saving on every
// change would cost O(files^2) for a package of many small files. A crash
// (not an interrupt: Send flushes) loses at most this much bookkeeping, which
// costs a re-upload of those few files, never a wrong result.
const saveEvery = time.Second

// update changes the state under its lock and saves it if the last save is
// older than saveEvery.
func (s *State) update(fn func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
	s.dirty = true
	if time.Since(s.saved) < saveEvery {
		return nil
	}
	return s.saveLocked()
}

// flush saves pending changes.
func (s *State) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	return s.saveLocked()
}

func (s *State) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = false
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove resume state: %w", err)
	}
	return nil
}
