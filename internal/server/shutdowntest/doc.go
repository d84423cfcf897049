// Package shutdowntest runs the real ferry binary and sends it SIGTERM in the middle of an
// upload and of a delivery: it must exit 0 within its grace period, and the upload must
// resume and the delivery complete exactly once after a restart. Tests only.
package shutdowntest
