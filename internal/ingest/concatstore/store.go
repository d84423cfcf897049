package concatstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// We write our own store instead of wrapping tusd's filestore because filestore derives a final
// upload's offset from its data file and builds that file by copying every partial (doubling disk
// use and dropping 4-stream throughput to a quarter); here a final is a list of partials.
//
// Layout under Dir, one set of files per upload ID (32 lowercase hex digits):
//
//	ID.info  JSON record (tusd FileInfo + ferry's bookkeeping), replaced atomically
//	ID.bin   the bytes (absent for a final upload)
//	ID.hash  SHA-256 state: 8-byte big-endian offset it covers, then the marshalled digest
//	ID.ack   present once the application acknowledged completion (see Acknowledge)
//	ID.abandoned  present once the application gave the upload up (see Abandon): JSON reason

// StorageKeyTokenHash is the FileInfo.Storage key under which a creation hook may hand the store a
// value to keep with the upload (ferry stores the SHA-256 of the upload token there). Storage is
// never sent to clients.
const StorageKeyTokenHash = store.StorageKeyTokenHash

const (
	filePerm = 0o640
	dirPerm  = 0o750
	// saveEvery bounds how many bytes a crash can force us to re-hash from disk within one PATCH.
	saveEvery = 64 << 20
	bufSize   = 1 << 20
	// writebackEvery is how much a PATCH writes before it asks the kernel to
	// start writing those bytes back (only when uploads are synced).
	writebackEvery = 16 << 20
)

// Errors a caller can test with errors.Is: every store answers with the same ones.
var (
	ErrNotFinished      = store.ErrNotFinished
	ErrPartialTaken     = store.ErrPartialTaken
	ErrPartialProtected = store.ErrPartialProtected
	ErrNotPartial       = store.ErrNotPartial
	ErrPartialRepeated  = store.ErrPartialRepeated
)

// Store is the data store. The zero value is not usable: call New.
type Store struct {
	dir string
	// Sync makes FinishUpload fsync the data file, so that bytes reported complete survive a
	// power cut, not only a process crash.
	Sync bool

	// mu serialises changes to the partial<->final links, which span several records.
	mu sync.Mutex

	gapHashed atomic.Int64
	noDirect  atomic.Bool  // O_DIRECT refused here: write through the page cache
	unflushed atomic.Int64 // bytes written directly since the last flush (see flushAhead)
	flushing  atomic.Bool  // a flush is under way
	flushes   atomic.Int64

	// Reserve is how many bytes of the file system uploads never take (see Space, Claim).
	Reserve int64
	// OnNoSpace, if set, is told every error a full file system caused (with the path the
	// sender never sees), so the operator learns of it.
	OnNoSpace func(error)

	// pmu guards promised: per unfinished upload, the bytes it declared and has not sent.
	pmu           sync.Mutex
	promised      map[string]int64
	promisedTotal int64
}

// New opens (creating if needed) a store in dir.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("concatstore: directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("concatstore: resolving %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("concatstore: creating %s: %w", abs, err)
	}
	s := &Store{dir: abs, Sync: true}
	if err := s.loadPromises(); err != nil {
		return nil, err
	}
	return s, nil
}

// UseIn plugs the store and all its extensions into a tusd composer.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseConcater(s)
	c.UseLengthDeferrer(s)
}

// Stats are counters for tests and metrics.
type Stats struct {
	// GapBytesHashed counts bytes hashed from disk because the saved hash state lagged behind the
	// data (a crash between writing bytes and saving state), as opposed to hashed on arrival.
	GapBytesHashed int64
	// Flushes counts the device cache flushes started ahead of completion (see flushAhead).
	Flushes int64
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{GapBytesHashed: s.gapHashed.Load(), Flushes: s.flushes.Load()}
}

// record is what ID.info holds.
type record struct {
	Info handler.FileInfo
	// Concatenated is set on a final upload once its partials are linked: it is then complete.
	Concatenated bool `json:",omitempty"`
	// FinalID is set on a partial upload that a final upload references.
	FinalID string `json:",omitempty"`
	// SHA256 is the verified digest of a finished single or partial upload (lowercase hex).
	SHA256  string    `json:",omitempty"`
	Created time.Time `json:",omitempty"`
}

func (s *Store) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// NewID returns a fresh random upload ID in the form the store accepts.
func NewID() string { return store.NewID() }

// ValidID reports whether id has the shape of an upload ID; anything else never reaches the disk.
func ValidID(id string) bool { return store.ValidID(id) }

func (s *Store) readRecord(id string) (*record, error) {
	if !ValidID(id) {
		return nil, handler.ErrNotFound
	}
	b, err := os.ReadFile(s.path(id, ".info"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("concatstore: reading record of upload %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("concatstore: decoding record of upload %s: %w", id, err)
	}
	return &r, nil
}

func (s *Store) writeRecord(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("concatstore: encoding record of upload %s: %w", r.Info.ID, err)
	}
	return s.space(writeAtomic(s.path(r.Info.ID, ".info"), b))
}

// writeAtomic replaces path with data so a crash leaves the old or the new content, never half.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, filePerm); err != nil {
		_ = os.Remove(tmp) // a half-written copy on a full disk only takes what little is left
		return fmt.Errorf("concatstore: writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("concatstore: renaming %s: %w", tmp, err)
	}
	return nil
}

// NewUpload implements handler.DataStore.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.ID == "" {
		info.ID = NewID()
	}
	if !ValidID(info.ID) {
		return nil, fmt.Errorf("concatstore: creating upload: invalid id %q", info.ID)
	}
	storage := map[string]string{"Type": "concatstore"}
	if v := info.Storage[StorageKeyTokenHash]; v != "" {
		storage[StorageKeyTokenHash] = v
	}
	info.Storage = storage
	info.Offset = 0
	if !info.IsFinal {
		f, err := os.OpenFile(s.path(info.ID, ".bin"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, filePerm)
		if err != nil {
			s.Release(info.ID)
			return nil, s.space(fmt.Errorf("concatstore: creating data file of upload %s: %w", info.ID, err))
		}
		if err := f.Close(); err != nil {
			s.Release(info.ID)
			return nil, s.space(fmt.Errorf("concatstore: creating data file of upload %s: %w", info.ID, err))
		}
	}
	r := &record{Info: info, Created: time.Now().UTC()}
	if err := s.writeRecord(r); err != nil {
		// The record is the upload: without it the data file is an orphan nobody finds.
		_ = os.Remove(s.path(info.ID, ".bin"))
		s.Release(info.ID)
		return nil, err
	}
	if !info.IsFinal && !info.SizeIsDeferred {
		// Claim promised the room already when the creation hook ran; a caller that skipped it
		// still has its length counted from here on.
		s.pmu.Lock()
		if _, ok := s.promised[info.ID]; !ok {
			s.promiseLocked(info.ID, info.Size)
		}
		s.pmu.Unlock()
	}
	return &upload{s: s, rec: r}, nil
}

// GetUpload implements handler.DataStore.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	r, err := s.readRecord(id)
	if err != nil {
		return nil, err
	}
	u := &upload{s: s, rec: r}
	if err := u.refreshOffset(); err != nil {
		return nil, err
	}
	return u, nil
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

// AsConcatableUpload implements handler.ConcaterDataStore.
func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload { return u.(*upload) }

// AsLengthDeclarableUpload implements handler.LengthDeferrerDataStore.
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

// Info returns an upload's current FileInfo (Offset read from disk).
func (s *Store) Info(id string) (handler.FileInfo, error) {
	u, err := s.GetUpload(context.Background(), id)
	if err != nil {
		return handler.FileInfo{}, err
	}
	return u.(*upload).rec.Info, nil
}

// Finished reports whether info describes a complete upload.
func Finished(info handler.FileInfo) bool { return store.Finished(info) }

// FinalOf returns the existing final upload that references partial upload id, or "".
func (s *Store) FinalOf(id string) (string, error) {
	r, err := s.readRecord(id)
	if err != nil {
		return "", err
	}
	if r.FinalID == "" {
		return "", nil
	}
	if _, err := s.readRecord(r.FinalID); errors.Is(err, handler.ErrNotFound) {
		return "", nil
	}
	return r.FinalID, nil
}

// IDs lists every upload in the store.
func (s *Store) IDs() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("concatstore: listing %s: %w", s.dir, err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".info"); ok && ValidID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// LastActivity is the latest modification time among an upload's files.
func (s *Store) LastActivity(id string) (time.Time, error) {
	if !ValidID(id) {
		return time.Time{}, handler.ErrNotFound
	}
	var last time.Time
	found := false
	for _, ext := range []string{".info", ".bin", ".hash", ".abandoned"} {
		st, err := os.Stat(s.path(id, ext))
		if err != nil {
			continue
		}
		found = true
		if st.ModTime().After(last) {
			last = st.ModTime()
		}
	}
	if !found {
		return time.Time{}, handler.ErrNotFound
	}
	return last, nil
}

// Acknowledge records durably that the application took note of the upload's completion.
func (s *Store) Acknowledge(id string) error {
	if !ValidID(id) {
		return handler.ErrNotFound
	}
	f, err := os.OpenFile(s.path(id, ".ack"), os.O_CREATE|os.O_WRONLY, filePerm)
	if err != nil {
		return fmt.Errorf("concatstore: acknowledging upload %s: %w", id, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("concatstore: acknowledging upload %s: %w", id, err)
	}
	return f.Close()
}

// Acknowledged reports whether Acknowledge ran for id.
func (s *Store) Acknowledged(id string) bool {
	if !ValidID(id) {
		return false
	}
	_, err := os.Stat(s.path(id, ".ack"))
	return err == nil
}

// Abandonment says why the application gave an upload up: a contract error
// code and a sentence for the sender.
type Abandonment = store.Abandonment

// Abandon records durably that the upload can never become a file (a newer
// upload replaced it, or its completion was refused for good). Its bytes
// stay until Remove; the caller answers every later request with why.
// Abandoning a missing upload is not an error.
func (s *Store) Abandon(id string, why Abandonment) error {
	if _, err := s.readRecord(id); errors.Is(err, handler.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	b, err := json.Marshal(why)
	if err != nil {
		return fmt.Errorf("concatstore: encoding why upload %s was abandoned: %w", id, err)
	}
	if err := s.space(writeAtomic(s.path(id, ".abandoned"), b)); err != nil {
		return err
	}
	s.Release(id) // it takes no more bytes
	return nil
}

// Abandoned returns why the upload was abandoned, if it was.
func (s *Store) Abandoned(id string) (Abandonment, bool) {
	var why Abandonment
	if !ValidID(id) {
		return why, false
	}
	b, err := os.ReadFile(s.path(id, ".abandoned"))
	if err != nil {
		return why, false
	}
	if json.Unmarshal(b, &why) != nil || why.Code == "" {
		why = Abandonment{Code: "upload_abandoned", Message: "this upload can no longer become a file"}
	}
	return why, true
}

// Remove deletes an upload; a final upload takes its partials with it. A partial that a final
// references is refused with ErrPartialProtected. Removing a missing upload is not an error.
func (s *Store) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(id)
}

func (s *Store) removeLocked(id string) error {
	r, err := s.readRecord(id)
	if errors.Is(err, handler.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Info.IsPartial && r.FinalID != "" {
		if _, err := s.readRecord(r.FinalID); err == nil {
			return ErrPartialProtected
		}
	}
	if r.Info.IsFinal {
		for _, pid := range r.Info.PartialUploads {
			p, err := s.readRecord(pid)
			if err != nil || p.FinalID != id {
				continue // not ours: never delete another final's partial
			}
			if err := s.removeFiles(pid); err != nil {
				return err
			}
		}
	}
	return s.removeFiles(id)
}

// removeFiles deletes the record last, so a crash midway leaves a record that a retry can finish.
func (s *Store) removeFiles(id string) error {
	for _, ext := range []string{".bin", ".hash", ".ack", ".abandoned", ".abandoned.tmp", ".hash.tmp", ".info.tmp", ".info"} {
		if err := os.Remove(s.path(id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("concatstore: removing upload %s: %w", id, err)
		}
	}
	s.Release(id)
	return nil
}

// SetVerified records the verified digest of a finished single or partial upload.
func (s *Store) SetVerified(id string, sum []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.readRecord(id)
	if err != nil {
		return err
	}
	r.SHA256 = hex.EncodeToString(sum)
	return s.writeRecord(r)
}

// VerifiedSHA256 returns the digest SetVerified recorded, or nil if none was.
func (s *Store) VerifiedSHA256(id string) ([]byte, error) {
	r, err := s.readRecord(id)
	if err != nil || r.SHA256 == "" {
		return nil, err
	}
	return hex.DecodeString(r.SHA256)
}

// upload is one upload resource.
type upload struct {
	s   *Store
	rec *record
}

func (u *upload) id() string { return u.rec.Info.ID }

// refreshOffset sets Info.Offset from what is on disk: the data file's size, or for a final
// upload its whole size once concatenated.
func (u *upload) refreshOffset() error {
	info := &u.rec.Info
	if info.IsFinal {
		info.Offset = 0
		if u.rec.Concatenated {
			info.Offset = info.Size
		}
		return nil
	}
	st, err := os.Stat(u.s.path(info.ID, ".bin"))
	if errors.Is(err, fs.ErrNotExist) {
		return handler.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("concatstore: reading size of upload %s: %w", info.ID, err)
	}
	info.Offset = st.Size()
	return nil
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) { return u.rec.Info, nil }

// WriteChunk appends src at offset, hashing exactly the bytes that reached the file.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	id := u.id()
	if offset != u.rec.Info.Offset {
		return 0, handler.ErrMismatchOffset
	}
	f, err := openDataWriter(u.s.path(id, ".bin"), offset, &u.s.noDirect)
	if err != nil {
		return 0, fmt.Errorf("concatstore: opening data file of upload %s: %w", id, err)
	}
	h, err := u.s.resumeHash(id, offset)
	if err != nil {
		f.Close()
		return 0, err
	}

	// Three stages, each in its own goroutine: this one reads the request body, the hasher
	// hashes each buffer as it arrives, the writer puts it into the file. Hashing before writing
	// keeps the CPU busy while the disk is not: an O_DIRECT write blocks until the device has the
	// bytes, and a cache flush (ours or anyone's fsync) holds every write for as long as the
	// device takes to empty its cache, up to a second on a VM disk. Meanwhile the body is still
	// read and hashed into the writer's queue. A hash state is saved only once the writer has put
	// every byte it covers into the file, so the saved state and the offset never cover bytes the
	// file lacks. Memory stays bounded: a PATCH holds at most the buffers its channels carry plus
	// one per stage, and all PATCHes together at most maxBufs.
	wp := startPipeline(u.s, id, f, offset, h)
	pos := offset // where the next byte read will land
	var rerr error
	for !wp.failed() {
		buf := getBuf()
		n, err := fill(src, (*buf)[:readLen(pos, len(*buf))])
		if n > 0 {
			if !wp.add(buf, n) {
				break // the writer failed; its error is the answer
			}
			pos += int64(n)
		} else {
			putBuf(buf)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err // tusd maps body errors (client gone, timeout) to its own responses
			break
		}
	}
	written, werr := wp.wait()
	if werr == nil {
		werr = rerr
	}
	u.rec.Info.Offset += written
	if err := f.Close(); err != nil && werr == nil {
		werr = u.s.space(fmt.Errorf("concatstore: closing upload %s: %w", id, err))
	}
	return written, werr
}

// readLen says how many bytes the next read should ask for, at most n: up to the next aligned
// offset while pos is unaligned (a resumed PATCH starting mid-block), so that every later buffer,
// which starts at an aligned address, also lands on an aligned offset and can go to the disk
// directly.
func readLen(pos int64, n int) int {
	if r := pos % align; r != 0 {
		return min(n, int(align-r))
	}
	return n
}

// fill reads until buf is full or src fails, so the hasher gets large chunks.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// beforeWrite runs before each buffer goes to the data file: tests hold a write there.
var beforeWrite = func() {}

// writeQueue is how many hashed buffers may wait for the disk per PATCH: enough to keep
// receiving through a cache flush (see flushEvery), which holds the writes of a 128 MiB stretch
// for about a tenth of a second. All PATCHes together stay within maxBufs.
const writeQueue = 32

type chunk struct {
	buf   *[]byte
	n     int
	state []byte // the hash state after this chunk: it covers the file up to the chunk's end
	save  bool   // persist state once the chunk is in the file
}

// pipeline is a PATCH's hasher and writer.
type pipeline struct {
	hashIn  chan chunk
	writeIn chan chunk
	stop    chan struct{} // closed when a write failed: the reader stops reading
	done    chan struct{}
	written int64
	err     error // the first write error
	saveErr error // the first error saving a hash state
}

// startPipeline starts a PATCH's hasher and writer; h covers the upload's first offset bytes.
func startPipeline(s *Store, id string, f *dataWriter, offset int64, h hash.Hash) *pipeline {
	wp := &pipeline{hashIn: make(chan chunk, 1), writeIn: make(chan chunk, writeQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	start := marshalHash(h)
	go wp.hash(h)
	go wp.write(s, id, f, offset, start)
	return wp
}

// hash feeds each buffer into h and hands it to the writer with the state after it (marshalling
// costs a copy of 108 bytes per MiB), marked to be saved every saveEvery bytes.
func (wp *pipeline) hash(h hash.Hash) {
	defer close(wp.writeIn)
	var since int64
	for c := range wp.hashIn {
		h.Write((*c.buf)[:c.n])
		c.state = marshalHash(h)
		if since += int64(c.n); since >= saveEvery {
			since, c.save = 0, true
		}
		wp.writeIn <- c
	}
}

// write puts each chunk into the file; state is the hash state covering what the file holds.
// When the writer is done (all read, or a write failed) it saves that state, so a resume hashes
// nothing again from disk.
func (wp *pipeline) write(s *Store, id string, f *dataWriter, offset int64, state []byte) {
	defer close(wp.done)
	defer func() {
		if wp.saveErr == nil {
			wp.saveErr = s.space(s.saveState(id, state))
		}
	}()
	var flushed int64
	for c := range wp.writeIn {
		if wp.err != nil {
			putBuf(c.buf) // after a failure nothing more reaches the file
			continue
		}
		// The room check sits here, not in the reader: buffers still queued have not taken
		// their room yet, so a check made when they were read would let them into the reserve.
		if !s.roomFor(int64(c.n)) {
			putBuf(c.buf)
			wp.fail(s.space(fmt.Errorf("concatstore: writing upload %s at %d: the file system is down to its reserve of %d bytes: %w", id, offset+wp.written, s.Reserve, syscall.ENOSPC)))
			continue
		}
		beforeWrite()
		w, err := f.write((*c.buf)[:c.n])
		s.wrote(id, int64(w))
		wp.written += int64(w)
		if err != nil {
			// Part of the chunk may have landed: the state must cover exactly that part.
			state = extendHash(state, (*c.buf)[:w])
			putBuf(c.buf)
			// A failed write may still have grown the file (tmpfs does, on a full disk): cut
			// it back to what was reported written, so that the offset a later HEAD reads
			// from the file's size is the one this PATCH answers, and no byte that nobody
			// saw land counts as received. Should the cut fail, a resume re-hashes that
			// tail from disk like any other gap.
			_ = f.buffered.Truncate(offset + wp.written)
			wp.fail(s.space(fmt.Errorf("concatstore: writing upload %s at %d: %w", id, offset+wp.written, err)))
			continue
		}
		putBuf(c.buf)
		state = c.state
		if s.Sync && f.isDirect() {
			s.flushAhead(id, int64(w))
		} else if s.Sync && wp.written-flushed >= writebackEvery {
			startWriteback(f.buffered, offset+flushed, wp.written-flushed)
			flushed = wp.written
		}
		if c.save && wp.saveErr == nil {
			wp.saveErr = s.space(s.saveState(id, state))
		}
	}
}

func (wp *pipeline) fail(err error) {
	wp.err = err
	close(wp.stop)
}

// add queues n bytes of buf; false (buf given back) once a write failed.
func (wp *pipeline) add(buf *[]byte, n int) bool {
	select {
	case <-wp.stop:
		putBuf(buf)
		return false
	default:
	}
	select {
	case wp.hashIn <- chunk{buf: buf, n: n}:
		return true
	case <-wp.stop:
		putBuf(buf)
		return false
	}
}

// failed reports whether a write failed, so the reader reads no further.
func (wp *pipeline) failed() bool {
	select {
	case <-wp.stop:
		return true
	default:
		return false
	}
}

// wait drains the pipeline: it returns how many bytes reached the file and the first write error
// (or, without one, the first error saving a hash state).
func (wp *pipeline) wait() (int64, error) {
	close(wp.hashIn)
	<-wp.done
	if wp.err != nil {
		return wp.written, wp.err
	}
	return wp.written, wp.saveErr
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	b, err := u.s.openRecord(u.rec)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(b, 0, b.Size()), b}, nil
}

// FinishUpload makes the bytes durable before the completion hook may report them complete.
func (u *upload) FinishUpload(ctx context.Context) error {
	if u.rec.Info.IsFinal || !u.s.Sync {
		return nil
	}
	f, err := os.Open(u.s.path(u.id(), ".bin"))
	if err != nil {
		return fmt.Errorf("concatstore: opening upload %s to sync: %w", u.id(), err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		// Delayed allocation can report a full disk only here.
		return u.s.space(fmt.Errorf("concatstore: syncing upload %s: %w", u.id(), err))
	}
	return nil
}

// Terminate implements handler.TerminatableUpload.
func (u *upload) Terminate(ctx context.Context) error { return u.s.Remove(u.id()) }

// DeclareLength implements handler.LengthDeclarableUpload.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	r, err := u.s.readRecord(u.id())
	if err != nil {
		return err
	}
	// A length declared late is held to the same room check as one declared at creation.
	if err := u.s.Claim(u.id(), length-u.rec.Info.Offset); err != nil {
		return err
	}
	r.Info.Size = length
	r.Info.SizeIsDeferred = false
	if err := u.s.writeRecord(r); err != nil {
		u.s.Release(u.id())
		return err
	}
	u.rec.Info.Size = length
	u.rec.Info.SizeIsDeferred = false
	return nil
}

// ConcatUploads links the partials to this final upload in order. Nothing is copied.
func (u *upload) ConcatUploads(ctx context.Context, partials []handler.Upload) error {
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(partials))
	recs := make([]*record, len(partials))
	parts := make([]store.Partial, len(partials))
	for i, p := range partials {
		pu, ok := p.(*upload)
		if !ok {
			return fmt.Errorf("concatstore: concatenating upload %s: partial of a foreign store", u.id())
		}
		r, err := s.readRecord(pu.id())
		if err != nil {
			return err
		}
		ids[i], recs[i], parts[i] = r.Info.ID, r, store.Partial{Info: r.Info, FinalID: r.FinalID}
	}
	exists := func(id string) bool { _, err := s.readRecord(id); return err == nil }
	if err := store.CheckConcat(u.rec.Info, parts, exists); err != nil {
		return err
	}
	// Partials first: a crash before the final is marked leaves an unfinished final whose
	// removal takes these partials with it.
	for _, r := range recs {
		r.FinalID = u.id()
		if err := s.writeRecord(r); err != nil {
			return err
		}
	}
	u.rec.Info.PartialUploads = ids
	u.rec.Concatenated = true
	if err := s.writeRecord(u.rec); err != nil {
		return err
	}
	u.rec.Info.Offset = u.rec.Info.Size
	return nil
}

// CheckWritable writes, syncs and removes a small file in the store's directory: a file system
// that went read-only or full fails here before a sender finds out. The error names the path:
// callers log it and hand out only its cause.
func (s *Store) CheckWritable(ctx context.Context) error {
	f, err := os.CreateTemp(s.dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("concatstore: creating a probe file: %w", err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ferry"))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("concatstore: writing a probe file: %w", err)
	}
	return nil
}
