package web

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"time"
)

// ZipEntry is one file of a package as the zip streamer sees it.
type ZipEntry struct {
	Path     string // "/"-separated relative path, already validated by pathsafe
	Size     int64
	Modified time.Time
	Open     func(ctx context.Context) (io.ReaderAt, io.Closer, error)
}

// zipCopyBuffer is the one buffer a zip download reuses for every file: memory
// stays flat whatever the package size.
const zipCopyBuffer = 1 << 20

// WriteZip streams entries as a zip archive to w, keeping the folder tree.
// Media is already compressed, so every file is stored (no recompression);
// archive/zip computes each CRC on the fly and writes it in a data descriptor,
// so nothing is buffered or staged in a temporary file and packages larger
// than RAM stream with constant memory. Zip64 records are added by
// archive/zip for files and archives past 4 GiB.
func WriteZip(ctx context.Context, w io.Writer, entries []ZipEntry) error {
	zw := zip.NewWriter(w)
	buf := make([]byte, zipCopyBuffer)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("zip stream of %s: %w", e.Path, err)
		}
		fh := &zip.FileHeader{Name: e.Path, Method: zip.Store, Modified: e.Modified.UTC()}
		fh.SetMode(0o644)
		fw, err := zw.CreateHeader(fh)
		if err != nil {
			return fmt.Errorf("zip header for %s: %w", e.Path, err)
		}
		ra, closer, err := e.Open(ctx)
		if err != nil {
			return fmt.Errorf("opening %s for zip: %w", e.Path, err)
		}
		n, err := io.CopyBuffer(fw, io.NewSectionReader(ra, 0, e.Size), buf)
		closer.Close()
		if err != nil {
			return fmt.Errorf("streaming %s into zip: %w", e.Path, err)
		}
		if n != e.Size {
			// A short blob would yield a zip whose sizes lie; stop instead.
			return fmt.Errorf("streaming %s into zip: read %d bytes, want %d", e.Path, n, e.Size)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("closing zip stream: %w", err)
	}
	return nil
}
