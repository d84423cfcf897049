// Command delivery benchmarks ferry's delivery into iconik against the
// in-process iconik emulator, reporting ratios measured in the same run:
//
//  1. throughput: N small files (default 1,000 of 1 KiB) with the emulator at
//     --rate-limit 45 --latency 50ms. The bound is the iconik calls made
//     divided by the rate limit, a batch call (bulk keyframes, batch
//     metadata) counting once as iconik's limit does: total time / bound
//     (target <= 1.05) and calls per file (target <= 7.5).
//  2. pipelining: a 100-file package whose files complete one after another
//     (as an upload would finish them), without faults: the time from the
//     last file's last byte to the delivery settling (target <= 2 s).
//
// The emulator keeps its state in memory (emulator.Options.Volatile): its
// save after every change encodes the whole tenant under its lock, which
// with a thousand files bounded the run instead of the rate limit
// (-emulator-snapshots turns it back on).
//
// Run: go run ./bench/delivery [-files 1000] [-pipeline-files 100] [-cpuprofile FILE]
package main
