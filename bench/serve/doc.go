// Command serve-bench measures the peak memory (VmHWM) of the real `ferry
// serve` binary while it receives one large file over tus and then streams it
// back as a zip through a download link, and compares the upload's throughput
// with writing the same bytes straight to a file on the same disk (the
// reference, measured in the same run).
//
// Usage: go run ./bench/serve -size 10GiB   (see run.sh)
package main
