package concatstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Blob reads a finished upload: a single upload's data file, or a final upload's partials in order,
// as one stream of Size bytes. It is safe for concurrent ReadAt calls.
type Blob struct {
	files  []*os.File
	starts []int64 // starts[i] is the offset of files[i] within the blob
	size   int64
}

// Size is the number of bytes in the blob.
func (b *Blob) Size() int64 { return b.size }

// ReadAt implements io.ReaderAt across the parts.
func (b *Blob) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("concatstore: read at negative offset %d", off)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	// The part holding off: the last one starting at or before it.
	i := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > off }) - 1
	n := 0
	for n < len(p) && i < len(b.files) {
		end := b.size
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		want := p[n:]
		if rem := end - off; int64(len(want)) > rem {
			want = want[:rem]
		}
		m, err := b.files[i].ReadAt(want, off-b.starts[i])
		n += m
		off += int64(m)
		if err != nil && !(errors.Is(err, io.EOF) && m == len(want)) {
			if errors.Is(err, io.EOF) {
				return n, fmt.Errorf("concatstore: part %d ends early: %w", i, io.ErrUnexpectedEOF)
			}
			return n, err
		}
		if off >= end {
			i++
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close closes every part.
func (b *Blob) Close() error {
	var errs []error
	for _, f := range b.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Open returns a reader over a finished upload (a *Blob).
func (s *Store) Open(id string) (store.Blob, error) {
	r, err := s.readRecord(id)
	if err != nil {
		return nil, err
	}
	return s.openRecord(r)
}

func (s *Store) openRecord(r *record) (*Blob, error) {
	u := &upload{s: s, rec: r}
	if err := u.refreshOffset(); err != nil {
		return nil, err
	}
	if !Finished(r.Info) {
		return nil, ErrNotFinished
	}
	ids := []string{r.Info.ID}
	if r.Info.IsFinal {
		ids = r.Info.PartialUploads
	}
	b := &Blob{}
	for _, id := range ids {
		f, err := os.Open(s.path(id, ".bin"))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("concatstore: opening part %s of upload %s: %w", id, r.Info.ID, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			b.Close()
			return nil, fmt.Errorf("concatstore: reading size of part %s of upload %s: %w", id, r.Info.ID, err)
		}
		b.files = append(b.files, f)
		b.starts = append(b.starts, b.size)
		b.size += st.Size()
	}
	if b.size != r.Info.Size {
		b.Close()
		return nil, fmt.Errorf("concatstore: upload %s: parts hold %d bytes, expected %d", r.Info.ID, b.size, r.Info.Size)
	}
	return b, nil
}

// OpenRange opens the part file holding the blob's bytes [off, off+n) on a
// descriptor of its own, positioned at the range's offset within that file
// (pos), so a sender can hand it to sendfile(2) (transfer.RangeOpener). A
// range that spans two parts is refused: a descriptor reads one file, and the
// caller then reads that range through ReadAt. With parts of hundreds of MiB
// that is one send in many, so no range splitting is worth its complexity.
func (b *Blob) OpenRange(off, n int64) (f *os.File, pos int64, err error) {
	if off < 0 || n < 0 || off+n > b.size {
		return nil, 0, fmt.Errorf("concatstore: opening range [%d, %d) of a %d-byte upload: out of bounds", off, off+n, b.size)
	}
	i := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > off }) - 1
	end := b.size
	if i+1 < len(b.starts) {
		end = b.starts[i+1]
	}
	if off+n > end {
		return nil, 0, fmt.Errorf("concatstore: range [%d, %d) spans parts %d and %d: %w", off, off+n, i, i+1, ErrRangeSpansParts)
	}
	pos = off - b.starts[i]
	// A new descriptor, not the shared one: sendfile advances its offset,
	// and other ranges are being read at the same time.
	g, err := os.Open(b.files[i].Name())
	if err != nil {
		return nil, 0, fmt.Errorf("concatstore: reopening part %d: %w", i, err)
	}
	was, errA := b.files[i].Stat()
	now, errB := g.Stat()
	if errA != nil || errB != nil || !os.SameFile(was, now) {
		g.Close()
		return nil, 0, fmt.Errorf("concatstore: reopening part %d: %s is no longer the same file", i, g.Name())
	}
	if _, err := g.Seek(pos, io.SeekStart); err != nil {
		g.Close()
		return nil, 0, fmt.Errorf("concatstore: seeking part %d to %d: %w", i, pos, err)
	}
	return g, pos, nil
}

// ErrRangeSpansParts is OpenRange's answer for a range no one part file holds.
var ErrRangeSpansParts = errors.New("the range spans part files")
