// Package idleconn drops a network connection on which nothing moves: every
// read and write gets its own deadline, so a stalled link, or a peer that
// stopped reading, fails the request on it instead of holding it forever,
// while a slow link that still moves is never cut. Delivery (transfer) and
// ferry send (send/tus) dial through it. It must keep sendfile working for
// bodies handed over as an *io.LimitedReader, and it imports nothing of ferry's.
package idleconn
