package concatstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk
// now, without waiting. Without it, a large upload stays dirty in the page
// cache until FinishUpload's fsync, which then writes the whole file while
// the client waits: receiving and writing back run one after the other
// instead of side by side. Errors are ignored: this is only a head start, and
// the fsync in FinishUpload is what makes the bytes durable.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// datasync makes f's data durable (fdatasync: the device cache is flushed,
// the file's timestamps are not written).
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
