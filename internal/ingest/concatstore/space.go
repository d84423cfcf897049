package concatstore

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"syscall"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// A full disk is an operating state: a write that finds no room answers 507 with a plain
// sentence (never the server's file path, which the underlying error names), keeps what reached
// the disk, and the sender resumes once space is back. Creations are refused up front when
// their declared length cannot fit beside the uploads already promised room (Claim).

// Errors a full disk produces; tusd answers them with their status.
var (
	// ErrNoSpace: a write found the file system full (or below the reserve).
	ErrNoSpace = handler.NewError("ERR_INSUFFICIENT_STORAGE",
		"the server has no storage space left for uploads right now; the bytes it received are kept: resume this upload later", http.StatusInsufficientStorage)
	// ErrNoRoom: a declared length does not fit in the space left.
	ErrNoRoom = store.ErrNoRoom
)

// noSpaceError keeps the operator's error (path and all) for logs and errors.Is, and shows
// tusd ErrNoSpace through As, so the sender sees only the plain sentence.
type noSpaceError struct{ cause error }

func (e *noSpaceError) Error() string { return e.cause.Error() }
func (e *noSpaceError) Unwrap() error { return e.cause }
func (e *noSpaceError) As(target any) bool {
	if p, ok := target.(*handler.Error); ok {
		*p = ErrNoSpace
		return true
	}
	return false
}

// IsNoSpace reports whether err is a store error caused by a full file system.
func IsNoSpace(err error) bool {
	var e *noSpaceError
	return errors.As(err, &e)
}

func isENOSPC(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// space turns an error caused by a full file system into one tusd answers with 507, and tells
// OnNoSpace (the operator's log); any other error passes through.
func (s *Store) space(err error) error {
	if err == nil || !isENOSPC(err) || IsNoSpace(err) {
		return err
	}
	if s.OnNoSpace != nil {
		s.OnNoSpace(err)
	}
	return &noSpaceError{cause: err}
}

// Space is what the file system holding the store has room for. The free-bytes figure is what
// /readyz reports (and the metric ferry_upload_store_free_bytes will export).
type Space = store.Space

// Space reports the store's file system's free bytes and what is already spoken for.
func (s *Store) Space() (Space, error) {
	free, known, err := freeBytes(s.dir)
	if err != nil {
		return Space{}, fmt.Errorf("concatstore: reading free space: %w", err)
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return Space{Known: known, Free: free, Reserve: s.Reserve, Promised: s.promisedTotal}, nil
}

// Claim promises upload id room for size more bytes, or refuses with ErrNoRoom when they cannot
// fit beside the reserve and every other promise. Call it before anything of the upload is stored
// (the creation hook); NewUpload keeps the promise, Release drops one never used.
func (s *Store) Claim(id string, size int64) error {
	free, known, err := freeBytes(s.dir)
	if err != nil {
		return fmt.Errorf("concatstore: reading free space: %w", err)
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	// RecordSlack (in Available): an upload admitted to the last byte must not meet roomFor's guard at its end.
	if known && (Space{Free: free, Reserve: s.Reserve, Promised: s.promisedTotal}).Available() < size {
		return ErrNoRoom
	}
	s.promiseLocked(id, size)
	return nil
}

// Release drops the promise of upload id (an upload refused after Claim).
func (s *Store) Release(id string) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.promiseLocked(id, 0)
}

// promiseLocked sets what upload id is still promised; 0 forgets it.
func (s *Store) promiseLocked(id string, n int64) {
	if s.promised == nil {
		s.promised = map[string]int64{}
	}
	s.promisedTotal += n - s.promised[id]
	if n <= 0 {
		delete(s.promised, id)
		return
	}
	s.promised[id] = n
}

// wrote takes n written bytes off upload id's promise.
func (s *Store) wrote(id string, n int64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if p, ok := s.promised[id]; ok {
		s.promiseLocked(id, max(p-n, 0))
	}
}

// roomFor reports whether n more bytes may be written without entering the reserve: the guard
// for what the promises do not cover (another process filling the disk, the database growing
// past its reserve), so that uploads stop before the database's headroom is gone.
func (s *Store) roomFor(n int64) bool {
	if s.Reserve <= 0 {
		return true
	}
	free, known, err := freeBytes(s.dir)
	return err != nil || !known || free-n-guardSlack >= s.Reserve
}

// Room for an upload's records (.info, .hash, rewritten as it goes) beside its bytes. The guard
// keeps guardSlack above the reserve, so the records written after its last check leave the
// reserve whole; Claim counts the larger store.RecordSlack (in Space.Available), so an upload
// admitted to its last byte never meets the guard even after its records took their pages.
const guardSlack = 64 << 10

// loadPromises counts, at start, what every unfinished upload still has to send.
func (s *Store) loadPromises() error {
	ids, err := s.IDs()
	if err != nil {
		return err
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, id := range ids {
		r, err := s.readRecord(id)
		if err != nil || r.Info.IsFinal || r.Info.SizeIsDeferred {
			continue
		}
		if _, abandoned := s.Abandoned(id); abandoned {
			continue // takes no more bytes
		}
		st, err := os.Stat(s.path(id, ".bin"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("concatstore: reading size of upload %s: %w", id, err)
		}
		s.promiseLocked(id, r.Info.Size-st.Size())
	}
	return nil
}
