// Command ingest benchmarks `ferry send` against references on this machine:
// LAN (loopback) against curl PUT into a plain io.Copy file server (the
// ceiling) and stock tusd + tus-js-client; WAN through a delaying, rate-capping
// TCP proxy, one stream against many; and, with -pin, issue 12's comparison
// with every sender on core 0 and every server on core 1 (curl into an io.Copy
// server, the same server hashing SHA-256 on arrival (and, for context, also
// fsyncing before it answers: the references never fsync otherwise), stock tusd +
// tus-js-client, ferry send 1 and 4 streams into ferry serve). It must never
// leave servers or files behind.
//
//	go run ./bench/ingest                       # in-process stand-in server (ferry's ingest + package shim)
//	go run ./bench/ingest -target http://127.0.0.1:8080/p/demo   # a running `ferry serve`
//	bench/ingest/run.sh -pin                    # pinned, against a ferry serve on core 1
package main
