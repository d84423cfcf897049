//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// hasSize reports whether the terminal f reports a width.
func hasSize(f *os.File) bool {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil && ws.Col > 0
}
