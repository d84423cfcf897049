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
// WAN arithmetic (50 ms each way, 20 MB/s per connection, 512 MiB): the
// bytes take 26.84 s on one stream and 3.36 s on eight, and every request
// costs 0.1 s, every new connection another 0.1 s. Both runs pay the package
// call, an upload creation, the last PATCH's answer, the finalize and the
// process's start and exit (about 0.55 s); eight streams also pay the
// concatenation request and the spread of their starts. 8/1 >= 7 leaves the
// eight-stream run at most about 0.55 s of such costs: five round trips in all.
// ferry send opens its streams' connections during the package call so that
// none pays a connection after it.
//
//	go run ./bench/ingest                       # in-process stand-in server (ferry's ingest + package shim)
//	go run ./bench/ingest -target http://127.0.0.1:8080/p/demo   # a running `ferry serve`
//	bench/ingest/run.sh -pin                    # pinned, against a ferry serve on core 1
package main
