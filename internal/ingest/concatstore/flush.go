package concatstore

import "os"

// flushEvery is how many bytes the store writes directly (O_DIRECT) between two background
// flushes of the device's cache.
//
// Why flush before anyone asks: a direct write is complete once the device has the bytes, but a
// device with a volatile cache (every VM disk, most consumer SSDs) holds them there until a cache
// flush, and a flush holds every other write until the cache is empty. Left alone, an upload's
// fsync in FinishUpload empties gigabytes at once, which took 1.3 s for 2 GiB on the benchmark VM
// with no byte received meanwhile, while the sender waited for its answer. Flushing as the bytes
// arrive lets receiving and hashing go on through each flush (the writer's queue, writeQueue, and
// the socket buffers absorb it), and the fsync at completion finds little left to do.
//
// Why 128 MiB: on the benchmark VM a flush costs about 50 ms plus the time to write out what it
// covers, so small flushes are dear, and large ones hold the writes longer than the queues last.
// With writes from 4 KiB pages, pinned 2 GiB sends took 3.9 s with a flush every 64 MiB, and
// 3.4-3.5 s every 256 MiB (bench/ingest -pin). Since the buffers are huge pages (arena.go) the
// disk takes the bytes faster and 128 MiB does best. Warm pinned 4-stream 2 GiB sends, the
// variants alternating, took on average 2.89 s every 128 MiB (seven sends, 2.80-3.07 s), 2.99 s
// every 64 MiB (four, 2.84-3.10 s), 3.05 s every 256 MiB (seven, 2.83-3.25 s) and 3.26 s every
// 512 MiB (three).
//
// A variable so tests can make it small.
var flushEvery int64 = 128 << 20

// flushAhead counts n more bytes written directly for upload id and, once flushEvery have been
// written since the last flush, starts one in the background (at most one at a time: the device
// is flushed as a whole, whichever file asks). Errors are ignored: this is a head start, and the
// fsync in FinishUpload is what makes an upload durable, and reports what fails.
func (s *Store) flushAhead(id string, n int64) {
	if s.unflushed.Add(n) < flushEvery || !s.flushing.CompareAndSwap(false, true) {
		return
	}
	s.unflushed.Store(0)
	s.flushes.Add(1)
	go func() {
		defer s.flushing.Store(false)
		// A descriptor of its own: the writer's closes when its PATCH ends, maybe before this.
		f, err := os.Open(s.path(id, ".bin"))
		if err != nil {
			return // removed meanwhile: nothing of it to flush
		}
		defer f.Close()
		_ = datasync(f)
	}()
}
