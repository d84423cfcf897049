// Package server wires ferry's parts into one running process: database,
// upload engine (ingest, with this package's Gate), HTTP surface (web),
// start-up reconciliation and scheduled cleanup, graceful shutdown. It holds
// the glue, not the rules; it must never log or return tokens or passwords.
package server
