// Command ingest benchmarks `ferry send` against references on this machine:
// LAN (loopback) against curl PUT into a plain io.Copy file server (the
// ceiling) and stock tusd + tus-js-client; WAN through a delaying, rate-capping
// TCP proxy, one stream against many; and, with -pin, issue 12's comparison
// with every sender on core 0 and every server on core 1 (curl into an io.Copy
// server, the same server hashing SHA-256 on arrival, stock tusd +
// tus-js-client, ferry send 1 and 4 streams into ferry serve). Context rows
// there bound what is possible: the hashing server fsyncing before it answers
// (the references never fsync otherwise); the disk alone, writing the bytes
// O_DIRECT from huge pages as ferry serve does, then fsync; a server that only
// hashes, storing nothing; and a Go client that hashes as it sends into it, the
// floor of a transfer whose two sides verify. It must never leave servers or
// files behind.
//
// WAN arithmetic (50 ms each way, 20 MB/s per connection, 512 MiB): the
// bytes take 26.84 s on one stream and 3.36 s on eight, and every request
// costs 0.1 s, every new connection another 0.1 s. 8/1 >= 7 leaves the
// eight-stream run at most about 0.55 s of such costs, and it used to pay
// seven round trips: connection, package call, one upload creation per
// stream, the last PATCH's answer, the concatenation and the finalize, plus
// the spread of the streams' starts. ferry send now opens its streams'
// connections during the package call, which also creates each stream's
// first upload (web/batch.go); and it sends the finalize, carrying the
// concatenation, as soon as its last byte is written, the server waiting for
// the parts to be verified before it joins and closes (send.finalizeEarly).
// What is left is the connection and the package call before the first
// byte, and half a round trip after the last part is in.
//
//	go run ./bench/ingest                       # in-process stand-in server (ferry's ingest + package shim)
//	go run ./bench/ingest -target http://127.0.0.1:8080/p/demo   # a running `ferry serve`
//	bench/ingest/run.sh -pin                    # pinned, against a ferry serve on core 1
package main
