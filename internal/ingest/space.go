package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Space is what the upload store has room for.
type Space = store.Space

// Space reports the upload store's free bytes, the reserve uploads never take, and what
// unfinished uploads still promise to send. On object storage Known is false.
func (i *Ingest) Space() (Space, error) { return i.store.Space() }

// CheckWritable writes and removes a small probe in the store: a file system that went
// read-only or full, or a bucket that refuses writes, fails here before a sender finds out.
// The error never names a path, host or bucket (it reaches /readyz); the log has them.
func (i *Ingest) CheckWritable() error {
	err := i.store.CheckWritable(context.Background())
	if err == nil {
		return nil
	}
	i.log.Warn("the upload store is not writable", "error", err)
	var pe *os.PathError
	if errors.As(err, &pe) {
		// Keep the cause (no space left on device, read-only file system), drop the path.
		return fmt.Errorf("cannot write to the upload store: %w", pe.Err)
	}
	return errors.New("cannot write to the upload store (the log has the details)")
}
