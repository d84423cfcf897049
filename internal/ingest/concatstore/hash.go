package concatstore

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
)

// The hash state is saved after every PATCH (and every saveEvery bytes within one) with the offset
// it covers. If the process died after writing bytes but before saving, the data file is longer
// than the state: only that gap is read back from disk. A state ahead of the data (the file lost
// its tail in a power cut) cannot be rewound, so the upload is re-hashed from its start.

// resumeHash returns a digest covering exactly the first offset bytes of upload id.
func (s *Store) resumeHash(id string, offset int64) (hash.Hash, error) {
	h, _, err := s.resumeHashGap(id, offset)
	return h, err
}

// resumeHashGap is resumeHash that also says how many bytes it had to read back from disk.
func (s *Store) resumeHashGap(id string, offset int64) (h hash.Hash, gap int64, err error) {
	h = sha256.New()
	var covered int64
	b, err := os.ReadFile(s.path(id, ".hash"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, 0, fmt.Errorf("concatstore: reading hash state of upload %s: %w", id, err)
	case len(b) >= 8:
		at := int64(binary.BigEndian.Uint64(b[:8]))
		if at <= offset {
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[8:]); err == nil {
				covered = at
			} else {
				h.Reset() // a torn or foreign state: start again rather than trust it
			}
		}
	}
	if covered < offset {
		if err := s.hashRange(id, h, covered, offset); err != nil {
			return nil, 0, err
		}
	}
	return h, offset - covered, nil
}

// hashRange feeds bytes [from, to) of upload id's data file into h.
func (s *Store) hashRange(id string, h hash.Hash, from, to int64) error {
	f, err := os.Open(s.path(id, ".bin"))
	if err != nil {
		return fmt.Errorf("concatstore: opening upload %s to hash its gap: %w", id, err)
	}
	defer f.Close()
	buf := getBuf()
	defer putBuf(buf)
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, from, to-from), *buf)
	s.gapHashed.Add(n)
	if err != nil {
		return fmt.Errorf("concatstore: hashing upload %s bytes %d-%d: %w", id, from, to, err)
	}
	if n != to-from {
		return fmt.Errorf("concatstore: hashing upload %s: data file ends at %d, expected %d", id, from+n, to)
	}
	return nil
}

// saveHash persists h, which covers the data file up to its current length.
func (s *Store) saveHash(id string, h hash.Hash) error {
	return s.saveState(id, marshalHash(h))
}

// marshalHash is h's state. crypto/sha256 cannot fail to marshal; should another hash ever be
// used, an empty state fails in saveState, not here.
func marshalHash(h hash.Hash) []byte {
	st, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	return st
}

// extendHash is state with b hashed on; a state that does not unmarshal stays as it is (saveState
// then refuses it, and a resume hashes from disk).
func extendHash(state, b []byte) []byte {
	if len(b) == 0 {
		return state
	}
	h := sha256.New()
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) != nil {
		return state
	}
	h.Write(b)
	return marshalHash(h)
}

// saveState persists a marshalled SHA-256 state, which covers the data file up to its current
// length (or less).
func (s *Store) saveState(id string, st []byte) error {
	// The offset covered is the number of bytes written to h; sha256 keeps it in its state,
	// but we store it explicitly so resumeHash never has to parse the digest's format.
	covered, err := hashedLen(st)
	if err != nil {
		return fmt.Errorf("concatstore: hash state of upload %s: %w", id, err)
	}
	out := make([]byte, 8, 8+len(st))
	binary.BigEndian.PutUint64(out, uint64(covered))
	out = append(out, st...)
	return s.space(writeAtomic(s.path(id, ".hash"), out))
}

// hashedLen reads the message length from crypto/sha256's marshalled state, whose documented-stable
// layout ends with the 64-bit big-endian length ("sha\x03" + 8*4 state + 64 block + 8 length).
func hashedLen(st []byte) (int64, error) {
	const want = 4 + 8*4 + sha256.BlockSize + 8
	if len(st) != want || string(st[:3]) != "sha" {
		return 0, fmt.Errorf("unexpected sha256 state layout (%d bytes)", len(st))
	}
	return int64(binary.BigEndian.Uint64(st[len(st)-8:])), nil
}

// SHA256 returns the digest of a finished single or partial upload, hashing from disk only what
// the saved state does not cover.
func (s *Store) SHA256(id string) ([]byte, error) {
	info, err := s.Info(id)
	if err != nil {
		return nil, err
	}
	if info.IsFinal {
		return nil, fmt.Errorf("concatstore: upload %s is a final upload: its digest is not computed", id)
	}
	if !Finished(info) {
		return nil, ErrNotFinished
	}
	h, gap, err := s.resumeHashGap(id, info.Offset)
	if err != nil {
		return nil, err
	}
	// Saved only when bytes were read back: a state that covered them all already is on disk,
	// and rewriting it would delay the answer to the last PATCH for nothing.
	if gap > 0 {
		if err := s.saveHash(id, h); err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}
