// Package dbtest is the conformance suite of internal/db: every dialect runs
// the same cases, and a new one is done when Run passes. A bug found in one
// dialect becomes a case here for all. It must never depend on one dialect's
// quirks (ordering of equal keys, error texts).
package dbtest
