// Command run runs every benchmark under bench/ (issue 12 section 5) with a
// warm-up and repetitions, reads the figures each writes with -json, and
// writes bench/report.md: per benchmark the median and min-max, the ratio to
// each reference measured in the same repetition, each issue's target and
// whether it is met, the machine, and SVG charts (throughput against streams,
// delivery time against file count). A benchmark that is missing, or lacks a
// flag it is driven with (another branch may still be adding it), is
// reported as not run, never fails the report.
//
//	go run ./bench/run            # about 30 minutes on 2 cores
//	go run ./bench/run -quick     # about 5 minutes: proves everything runs
//	go run ./bench/run -only transfer-wan,delivery -reps 5
//
// It must never run in `go test`: the benchmarks write files of gigabytes.
package main
