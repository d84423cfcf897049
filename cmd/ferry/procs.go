package main

import "runtime"

// minServeProcs is the fewest Ps ferry serve runs with. Upload bytes go to disk with O_DIRECT
// writes, which block their thread until the device has them (a few ms per MiB); a goroutine in
// such a write keeps its P until the runtime's monitor takes it back. With a single P (one core:
// taskset, a one-CPU container) every other upload's network reads and SHA-256 then wait behind
// each write, and the overlap of network, disk and hashing the store is built for is lost.
// Measured on one pinned core: SHA-256 beside a goroutine writing O_DIRECT ran at 540 MiB/s with
// one P and 920-980 MiB/s with two (1600 MiB/s alone); `ferry send --streams 4` of 512 MiB into
// a pinned serve took 2.1-3.5 s with one P and 1.5-2.6 s with two, in five alternating pairs of
// runs (a shared machine: the lead's quiet run is the measure). Setting it stops the runtime's
// own GOMAXPROCS updates (CPU limit changes), which only matters where it is raised: one core.
const minServeProcs = 2

// serveProcs raises GOMAXPROCS to minServeProcs, unless the operator set GOMAXPROCS (lookup is
// os.LookupEnv): their choice stands.
func serveProcs(lookup func(string) (string, bool)) {
	if v, ok := lookup("GOMAXPROCS"); ok && v != "" {
		return
	}
	if runtime.GOMAXPROCS(0) < minServeProcs {
		runtime.GOMAXPROCS(minServeProcs)
	}
}
