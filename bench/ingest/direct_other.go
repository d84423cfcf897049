//go:build !linux

package main

import "errors"

// copyDirect is Linux's: O_DIRECT and huge pages are.
func copyDirect(string, string) error { return errors.New("the disk-alone row needs Linux") }
