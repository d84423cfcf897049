package send

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

	mu      sync.Mutex
	path    string
	dirty   bool
	saved   time.Time
	journal *os.File // open for appending since the last snapshot; see recordURL
	written int64    // journal records written (ever, in this process)
	synced  int64    // of those, how many are on disk (journal fsync or snapshot)
	syncMu  sync.Mutex
	saving  bool   // a throttled save is writing its snapshot (see update)
	gen     uint64 // snapshots taken
	fileMu  sync.Mutex
	fileGen uint64 // the newest snapshot written to path (fileMu)
}

// FileState is one file's progress.
type FileState struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	URL     string `json:"url,omitempty"` // whole upload, or the final concatenation
	// Hash is the SHA-256 state of the whole upload at its last two
	// checkpoints (see digest): a resumed upload re-reads only from there.
	Hash  []Checkpoint `json:"hash,omitempty"`
	Parts []Part       `json:"parts,omitempty"`
	Done  bool         `json:"done,omitempty"`
}

// Part is one partial upload of a file sent in parallel streams.
type Part struct {
	Offset int64        `json:"offset"` // in the file
	Size   int64        `json:"size"`
	Hash   []Checkpoint `json:"hash,omitempty"` // as FileState.Hash, for this part
	URL    string       `json:"url,omitempty"`
	Sent   int64        `json:"sent,omitempty"` // bytes the server held when last seen (informative)
	Done   bool         `json:"done,omitempty"`
}

// stateVersion stays 1 when fields are added: a state of an older ferry
// (with hex digests instead of hash checkpoints) still resumes its uploads,
// re-hashing what they hold.
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
	if err := old.replayJournal(); err != nil {
		return nil, err
	}
	return &old, nil
}

// snapshot is the state encoded at one moment, to be written to path.
type snapshot struct {
	b   []byte
	gen uint64
	seq int64 // journal records it holds
}

// snapshotLocked encodes the state (lock held).
func (s *State) snapshotLocked() (snapshot, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return snapshot{}, fmt.Errorf("encode resume state: %w", err)
	}
	s.gen++
	return snapshot{b: b, gen: s.gen, seq: s.written}, nil
}

// write puts snap in path durably (a temporary file, fsync, rename, fsync of
// the folder), unless a newer snapshot is there already. It takes fileMu, not
// the state lock, so a throttled save's fsync holds up no other stream.
func (s *State) write(snap snapshot) error {
	beforeSnapshotWrite()
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if snap.gen <= s.fileGen {
		return nil // a newer one was written (or the state removed) meanwhile
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	if err := writeDurably(s.path, snap.b); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	s.fileGen = snap.gen
	return nil
}

// beforeSnapshotWrite runs before a snapshot is written: tests hold a save there.
var beforeSnapshotWrite = func() {}

// savedLocked records that snap is on disk (lock held): the journal records
// it holds are durable, and the journal goes once it holds no others.
func (s *State) savedLocked(snap snapshot) error {
	s.synced = max(s.synced, snap.seq)
	if snap.gen == s.gen {
		s.dirty = false // nothing changed since it was taken
	}
	s.saved = time.Now()
	if s.written != snap.seq {
		return nil // records appended since: the journal stays until a snapshot holds them
	}
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	if err := os.Remove(s.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save resume state: %w", err)
	}
	return nil
}

// saveLocked writes the whole state durably now (lock held). Only then is
// the journal (whose records the snapshot now holds) removed.
func (s *State) saveLocked() error {
	snap, err := s.snapshotLocked()
	if err != nil {
		return err
	}
	if err := s.write(snap); err != nil {
		return err
	}
	return s.savedLocked(snap)
}

// writeDurably replaces path with b so that after a crash (of the process or
// of the machine) path holds either the old or the new content, whole.
func writeDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or a new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saveEvery throttles snapshot saves: each writes the whole state, so saving
// on every change would cost O(files^2) for a package of many small files.
// What a crash (not an interrupt: Send flushes) may lose from the last second
// is bookkeeping the server's answers restore (a finished upload, a part's
// offset) or a cached digest (hashed again). Never an upload's URL: those go
// through recordURL, durable before the upload's first byte.
const saveEvery = time.Second

// update changes the state under its lock and saves it if the last save is
// older than saveEvery.
//
// The snapshot is taken under the lock and written outside it: the fsync
// takes a few ms on a laptop's disk but up to half a second on a VM disk
// busy with other writes, and every stream's next checkpoint would wait
// behind it. Only the stream that happened to take the snapshot waits.
func (s *State) update(fn func()) error {
	s.mu.Lock()
	fn()
	s.dirty = true
	if s.saving || time.Since(s.saved) < saveEvery {
		s.mu.Unlock()
		return nil
	}
	snap, err := s.snapshotLocked()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.saving = true
	s.mu.Unlock()

	werr := s.write(snap)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saving = false
	if werr != nil {
		return werr
	}
	return s.savedLocked(snap)
}

// save writes the state now, whatever the throttle says: for changes a re-run
// cannot learn from the server (which package, which plan of parts).
func (s *State) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.fileMu.Lock()
	s.gen++
	s.fileGen = s.gen // a throttled save still on its way is older: it writes nothing now
	s.fileMu.Unlock()
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	for _, p := range []string{s.path, s.journalPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove resume state: %w", err)
		}
	}
	return nil
}

// The journal: a sender killed mid-file (SIGKILL, power loss) must find the
// URL of every upload it created, or it sends the file again from byte 0.
// Saving the whole snapshot at each creation would cost O(files^2) writes for
// a package of many small files, so each creation appends one small line to
// KEY.journal and fsyncs it before the upload's first byte is sent; loading
// replays the lines on top of the snapshot, and the next snapshot save removes
// the journal.

// journalRec is one upload created since the last snapshot.
type journalRec struct {
	Package string `json:"pkg"`  // the package it belongs to (a record of an older package is ignored)
	File    string `json:"file"` // package path
	Part    int    `json:"part"` // partial index; -1: the whole upload, or a split file's final
	URL     string `json:"url"`
}

func (s *State) journalPath() string { return strings.TrimSuffix(s.path, ".json") + ".journal" }

// recordURL sets the URL of a file's upload (part -1: the whole upload or the
// final concatenation) and returns once it is on disk. The fsync (a few ms on
// a VM disk) runs outside the state lock and is shared: streams creating
// uploads at the same moment wait for one fsync, not one each, and the other
// streams' state updates never wait behind it.
func (s *State) recordURL(rel string, fst *FileState, part int, u string) error {
	s.mu.Lock()
	if part >= 0 {
		fst.Parts[part].URL = u
	} else {
		fst.URL = u
	}
	s.dirty = true
	err := s.appendLocked(journalRec{Package: s.PackageID, File: rel, Part: part, URL: u})
	seq := s.written
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("record upload %s: %w", u, err)
	}

	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.synced >= seq { // another record's fsync, or a snapshot, covered it
		s.mu.Unlock()
		return nil
	}
	f, upto := s.journal, s.written
	s.mu.Unlock()
	err = f.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.synced = max(s.synced, upto)
	}
	if s.synced >= seq {
		return nil // a snapshot that closed f meanwhile holds the record too
	}
	return fmt.Errorf("record upload %s: %w", u, err)
}

// appendLocked writes one journal line (not yet synced), opening the journal
// first if the last snapshot removed it.
func (s *State) appendLocked(r journalRec) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if s.journal == nil {
		f, err := os.OpenFile(s.journalPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(s.path)); err != nil { // the new file's name
			f.Close()
			return err
		}
		s.journal = f
	}
	if _, err := s.journal.Write(append(line, '\n')); err != nil {
		return err
	}
	s.written++
	return nil
}

// replayJournal applies the journal's records to a freshly loaded snapshot.
// A torn last line (killed mid-write) ends the replay: its upload never got a
// byte, because the record is synced before the first one is sent.
func (s *State) replayJournal() error {
	b, err := os.ReadFile(s.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read resume journal: %w", err)
	}
	s.dirty = true // the next save folds the journal into the snapshot and removes it
	for line := range bytes.Lines(b) {
		var r journalRec
		if !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &r) != nil {
			break
		}
		fst := s.Files[r.File]
		if r.Package != s.PackageID || s.PackageID == "" || fst == nil || r.Part >= len(fst.Parts) {
			continue
		}
		if r.Part >= 0 {
			fst.Parts[r.Part].URL = r.URL
		} else {
			fst.URL = r.URL
		}
	}
	return nil
}

// A finished send is remembered next to where its resume state lived
// (KEY.sent.json, same key: server and portal, the absolute paths, the
// package name), so running the same command again answers with the package
// instead of creating a duplicate of it in iconik.

// sentRecord is one finished send.
type sentRecord struct {
	Version   int       `json:"version"`
	Target    string    `json:"target"`
	Name      string    `json:"name"`
	Paths     []string  `json:"paths"`
	PackageID string    `json:"package_id"`
	SentAt    time.Time `json:"sent_at"`
	// UploadToken lets `ferry send --wait` run again follow the package's
	// deliveries (the file is private to the user, as the resume state is).
	UploadToken string `json:"upload_token,omitempty"`
}

func sentPath(statePath string) string { return strings.TrimSuffix(statePath, ".json") + ".sent.json" }

// readSentRecord returns the finished send recorded at path, if any. An unreadable
// or foreign record counts as none: the cost is a send, never a lost one.
func readSentRecord(path, target string) (sentRecord, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sentRecord{}, false, nil
	}
	if err != nil {
		return sentRecord{}, false, fmt.Errorf("read the record of finished sends %s: %w", path, err)
	}
	var r sentRecord
	if json.Unmarshal(b, &r) != nil || r.Version != stateVersion || r.Target != target || r.PackageID == "" {
		return sentRecord{}, false, nil
	}
	return r, true, nil
}

// writeSentRecord records a finished send durably: it must be on disk before the
// resume state that also knows the package is removed.
func writeSentRecord(path string, r sentRecord) error {
	r.Version = stateVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("record the finished send: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("record the finished send: %w", err)
	}
	if err := writeDurably(path, b); err != nil {
		return fmt.Errorf("record the finished send: %w", err)
	}
	return nil
}
