//go:build !linux

package concatstore

// mapBuffers leaves the buffers to the Go heap outside Linux: huge pages and O_DIRECT are the
// reasons for a mapping, and both are Linux's here.
func mapBuffers(int) (mapping, mem []byte) { return nil, nil }

func unmapBuffers([]byte) {}
