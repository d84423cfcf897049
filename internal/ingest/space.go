package ingest

import (
	"fmt"
	"os"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
)

// Space is what the upload store's file system has room for.
type Space = concatstore.Space

// Space reports the upload store's free bytes, the reserve uploads never take, and what
// unfinished uploads still promise to send.
func (i *Ingest) Space() (Space, error) { return i.store.Space() }

// CheckWritable writes, syncs and removes a small file in the store's directory: a file system
// that went read-only or full fails here before a sender finds out. The error never names a
// path (it reaches /readyz); the log has it.
func (i *Ingest) CheckWritable() error {
	f, err := os.CreateTemp(i.cfg.Dir, ".probe-*")
	if err != nil {
		i.log.Warn("the upload store is not writable", "error", err)
		return fmt.Errorf("cannot create a file in the upload store: %w", pathless(err))
	}
	name := f.Name()
	_, werr := f.Write([]byte("ferry"))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(name)
	for _, err := range []error{werr, cerr, rerr} {
		if err != nil {
			i.log.Warn("the upload store is not writable", "error", err)
			return fmt.Errorf("cannot write to the upload store: %w", pathless(err))
		}
	}
	return nil
}

// pathless drops the path an *os.PathError carries, keeping the cause (no space left on
// device, read-only file system).
func pathless(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
