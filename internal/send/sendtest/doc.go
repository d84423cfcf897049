// Package sendtest is a stand-in for ferry's server while it is being written:
// stock tusd (pkg/handler + filestore, a real tus server) at /uploads/ plus small
// handlers for contract C's package endpoints, with byte counters and fault
// injection for tests and the ingest benchmark. It must never be used in production.
package sendtest
