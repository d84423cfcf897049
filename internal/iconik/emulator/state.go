package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The state is one JSON document, rewritten atomically (temp file, rename)
// by a writer, and once more on Close. A call that changed the state holds
// its answer until a snapshot holding the change is written (waitSaved):
// whatever the emulator answered survives a kill -9, so a client that
// recorded an id it was given never finds that id unknown after a restart
// (ferry's demo runs the emulator in its own process and is killed like any
// server). Calls that change the state at the same time share one snapshot
// (group commit): the writer starts the next snapshot as soon as the last
// is written, with every change made meanwhile. Why not SQLite: an emulator
// tenant holds test- and demo-sized data, every object is already a JSON
// document in iconik's own shape, and a readable snapshot makes a failing
// test easy to inspect, with no schema migrations.
type state struct {
	Secret   []byte                    `json:"secret"` // data-plane signing secret: URLs survive restarts
	Seq      int64                     `json:"seq"`
	Users    []*user                   `json:"users"`
	Tokens   []*token                  `json:"tokens"`
	Objects  map[string]map[string]doc `json:"objects"`  // kind -> id -> document
	Contents map[string][]content      `json:"contents"` // collection id -> members in the order added
}

type user struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Type      string `json:"type"`
	IsAdmin   bool   `json:"is_admin"`
	Status    string `json:"status"`
	Created   string `json:"date_created"`
}

type token struct {
	Name   string   `json:"name"`
	AppID  string   `json:"app_id"`
	Token  string   `json:"token"`
	UserID string   `json:"user_id"`
	Roles  []string `json:"roles"`
}

type content struct {
	ObjectID   string    `json:"object_id"`
	ObjectType string    `json:"object_type"`
	Added      time.Time `json:"added"`
}

// doc is one iconik object as iconik serialises it. Keys starting with "_"
// are the emulator's own bookkeeping and never leave it.
type doc map[string]any

// Object kinds.
const (
	kStorages    = "storages"
	kCollections = "collections"
	kAssets      = "assets"
	kFormats     = "formats"
	kFileSets    = "file_sets"
	kFiles       = "files"
	kKeyframes   = "keyframes"
	kJobs        = "jobs"
	kFields      = "fields"
	kViews       = "views"
	kValues      = "values"
)

func newState() *state {
	return &state{Objects: map[string]map[string]doc{}, Contents: map[string][]content{}}
}

func loadState(path string) (*state, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading emulator state %s: %w", path, err)
	}
	st := newState()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("decoding emulator state %s: %w", path, err)
	}
	if st.Objects == nil {
		st.Objects = map[string]map[string]doc{}
	}
	if st.Contents == nil {
		st.Contents = map[string][]content{}
	}
	return st, nil
}

// saveLocked writes the state now; the caller holds s.mu (or owns s exclusively).
func (s *Server) saveLocked() error {
	raw, err := json.Marshal(s.st)
	if err != nil {
		return fmt.Errorf("encoding emulator state: %w", err)
	}
	return writeFileAtomic(s.statePath(), raw, 0o600)
}

// markDirty asks the snapshot writer to save soon.
func (s *Server) markDirty() {
	if s.opts.Volatile {
		return
	}
	select {
	case s.dirty <- struct{}{}:
	default: // a snapshot is already due
	}
}

// snapshotWriter saves the state after mutations until ctx ends (Close
// writes the final snapshot).
func (s *Server) snapshotWriter(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		}
		s.mu.Lock()
		raw, err := json.Marshal(s.st)
		g := s.gen
		s.mu.Unlock()
		if err == nil {
			err = writeFileAtomic(s.statePath(), raw, 0o600)
		}
		s.savedMu.Lock()
		if err == nil {
			s.saved = g
		} else {
			s.failed, s.saveErr = g, err
			s.log.Error("saving iconik emulator state", "err", err)
		}
		s.savedCond.Broadcast()
		s.savedMu.Unlock()
	}
}

// commitLocked records that a call changed the state (the caller holds
// s.mu) and returns the generation its answer must wait for.
func (s *Server) commitLocked() int64 {
	s.gen++
	s.markDirty()
	return s.gen
}

// waitSaved blocks until a snapshot holding generation g is on disk, or
// says why none could be written.
func (s *Server) waitSaved(g int64) error {
	if s.opts.Volatile {
		return nil
	}
	s.savedMu.Lock()
	for s.saved < g && s.failed < g && !s.stopped {
		s.savedCond.Wait()
	}
	saved, err, stopped := s.saved >= g, s.saveErr, s.stopped
	s.savedMu.Unlock()
	switch {
	case saved:
		return nil
	case stopped:
		// A call that raced Close: save here, the writer is gone.
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.saveLocked()
	}
	return err
}

func writeJSONAtomic(path string, v any, mode os.FileMode) error {
	raw, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, raw, mode)
}

func writeFileAtomic(path string, raw []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// No fsync: the rename is atomic and a crashed process loses nothing the
	// kernel already holds; an emulator does not need to survive power loss.
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func (st *state) userByID(id string) *user {
	for _, u := range st.Users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

func (st *state) get(kind, id string) doc {
	return st.Objects[kind][id]
}

// put stores d under kind, giving it an order number when new.
func (st *state) put(kind string, d doc) {
	m := st.Objects[kind]
	if m == nil {
		m = map[string]doc{}
		st.Objects[kind] = m
	}
	id := str(d, "id")
	if _, ok := d["_seq"]; !ok {
		st.Seq++
		d["_seq"] = st.Seq
	}
	m[id] = d
}

func (st *state) del(kind, id string) { delete(st.Objects[kind], id) }

// live returns the object of kind with id unless it is unknown or DELETED.
// A deleted asset or collection sits in iconik's delete queue: it can still
// be read by id, but nothing can be created in it or changed under it, so
// calls that name it as a container answer as if it did not exist [INF].
func (st *state) live(kind, id string) doc {
	d := st.get(kind, id)
	if d == nil || str(d, "status") == "DELETED" {
		return nil
	}
	return d
}

// list returns the documents of kind that keep says to keep, oldest first.
func (st *state) list(kind string, keep func(doc) bool) []doc {
	var out []doc
	for _, d := range st.Objects[kind] {
		if keep == nil || keep(d) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return num(out[i], "_seq") < num(out[j], "_seq") })
	return out
}

// public copies d without the emulator's bookkeeping keys.
func public(d doc) doc {
	out := make(doc, len(d))
	for k, v := range d {
		if !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	return out
}

func newID() string {
	id, err := uuid.NewUUID()
	if err != nil {
		// NewUUID fails only when the clock or node id cannot be read; a
		// random UUID keeps the emulator serving.
		return uuid.NewString()
	}
	return id.String()
}

// timestamp formats t as iconik does: 2021-07-30T15:16:54.406403+00:00.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
}

func now() string { return timestamp(time.Now()) }

func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func str(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}

func boolean(d map[string]any, k string) bool {
	b, _ := d[k].(bool)
	return b
}

// num reads an integer whichever way it was decoded or set.
func num(d map[string]any, k string) int64 {
	switch v := d[k].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return int64(f)
	case string:
		i, _ := strconv.ParseInt(v, 10, 64)
		return i
	}
	return 0
}

func strPtr(s string) any {
	if s == "" {
		return nil
	}
	return s
}
