package send

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// hashBufs recycles read buffers: a package of many small files would
// otherwise allocate one per file.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashRange returns the lowercase hex SHA-256 of bytes [off, off+n) of the file at path.
func hashRange(path string, off, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), *buf)
	if err != nil {
		return "", fmt.Errorf("hash %s [%d,+%d): %w", path, off, n, err)
	}
	if got != n {
		return "", fmt.Errorf("hash %s: file shrank while reading (%d of %d bytes at %d)", path, got, n, off)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashSplit reads the file at path once, in order, and returns the SHA-256
// of the whole file and of each part's range (parts cover the file in order,
// as splitParts makes them). One pass feeds both hashers, so a split file is
// read once for its part digests (declared on each partial) and its whole
// digest (declared on the final, which the server records for delivery to
// confirm). onPart, when not nil, is told each part's digest as soon as its
// range is read, so that part's upload can start while the pass goes on.
func hashSplit(ctx context.Context, path string, size int64, parts []Part, onPart func(i int, sum string)) (string, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	whole := sha256.New()
	sums := make([]string, len(parts))
	// The whole-file hasher runs beside the part hasher on the same buffer:
	// two SHA-256s over every byte are the price of declaring both digests,
	// and on two cores side by side they cost the wall time of one. Each
	// buffer is handed over and waited for before it is reused.
	wholeIn, wholeOut := make(chan []byte), make(chan struct{})
	go func() {
		for b := range wholeIn {
			whole.Write(b)
			wholeOut <- struct{}{}
		}
	}()
	defer close(wholeIn)
	var off int64
	for i, p := range parts {
		if p.Offset != off {
			return "", nil, fmt.Errorf("hash %s: part %d starts at %d, want %d", path, i, p.Offset, off)
		}
		h := sha256.New()
		for done := int64(0); done < p.Size; {
			if err := ctx.Err(); err != nil {
				return "", nil, err
			}
			n := min(int64(len(*buf)), p.Size-done)
			got, err := io.ReadFull(f, (*buf)[:n])
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return "", nil, fmt.Errorf("hash %s: file shrank while reading (%d of %d bytes)", path, off+done+int64(got), size)
			}
			if err != nil {
				return "", nil, fmt.Errorf("hash %s at %d: %w", path, off+done, err)
			}
			wholeIn <- (*buf)[:got]
			h.Write((*buf)[:got])
			<-wholeOut
			done += int64(got)
		}
		sums[i] = hex.EncodeToString(h.Sum(nil))
		if onPart != nil {
			onPart(i, sums[i])
		}
		off += p.Size
	}
	if off != size {
		return "", nil, fmt.Errorf("hash %s: parts cover %d of %d bytes", path, off, size)
	}
	return hex.EncodeToString(whole.Sum(nil)), sums, nil
}
