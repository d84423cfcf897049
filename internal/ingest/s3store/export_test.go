package s3store

import "time"

// SetReadIdle shortens how long a blob read waits for a byte, until the returned func runs.
func SetReadIdle(d time.Duration) (restore func()) {
	old := readIdle
	readIdle = d
	return func() { readIdle = old }
}
