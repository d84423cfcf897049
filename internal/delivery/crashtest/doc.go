// Package crashtest kills the real ferry binary with SIGKILL at seeded random
// moments of a delivery, restarts it, and checks that iconik (the emulator,
// in its own process) ends with every file delivered exactly once. It holds
// tests only and must never be imported.
package crashtest
