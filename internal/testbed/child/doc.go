// Package child runs the real ferry binary as a child process for tests that
// kill it (SIGKILL) and start it again, and talks to it over HTTP: the
// harness the crash tests of delivery and notify share. Test code only.
package child
