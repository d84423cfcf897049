// Package crashtest runs the real ferry binary to prove that notifications
// survive a SIGKILL between the event and the send (each message then
// arrives exactly once, in Mailpit), and that the demo's outbox fills.
package crashtest
