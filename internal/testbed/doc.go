// Package testbed starts the real servers ferry's tests run against
// (../shared/TESTBED.md): Versity S3, fake-gcs-server, Azurite, Mailpit,
// PostgreSQL, and finds Chromium, rclone, tusd and Node.
//
// Each server binds a free port on 127.0.0.1 in a temporary directory, is
// probed until ready, and is started at most once per test binary. A peer
// whose binary is missing skips the test with a loud reason, except under
// CI=true, where it fails: CI must never go green by not testing.
// Install the peers with scripts/peers. Two small helpers stand beside them:
// Buffer, a goroutine-safe bytes.Buffer for tests that read logs as they
// come, and SelfSignedCert, a certificate for a TLS server under test.
package testbed
