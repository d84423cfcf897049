//go:build !linux

package concatstore

import (
	"errors"
	"os"
	"syscall"
)

var errInvalid = syscall.EINVAL

// openDirect: direct I/O is only used on Linux (other systems spell it
// differently, F_NOCACHE or not at all); the page cache path is used there.
func openDirect(string) (*os.File, error) { return nil, errors.ErrUnsupported }
