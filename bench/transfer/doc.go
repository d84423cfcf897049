// Command transfer benchmarks ferry's S3 uploader against the references of
// issue 4 in one run, on one Versity S3 gateway and one source file:
// rclone copyto (best flags), aws-sdk-go-v2's transfermanager (16 MiB x 8)
// and one presigned PUT of the whole file (the server's ceiling). Each
// contender runs as a child process so that its peak RSS is its own (its
// VmHWM; getrusage would count the parent's memory, see vmHWMMiB). It
// prints MB/s, ratios and peak RSS.
//
// The WAN run (issue 12) sends -wan-size (1 GiB) to the same gateway through
// bench/internal/wan's shaping proxy (25 ms each way, 20 MB/s per
// connection), as a server far from its cloud storage does: ferry against
// one stream (a presigned PUT), rclone with its default flags and
// transfermanager. Targets: ferry >= 6x one stream, >= 1.5x rclone, peak RSS
// <= 64 MB. -json writes the figures for bench/run.
//
//	go run ./bench/transfer -size 2GiB                  # LAN and WAN
//	go run ./bench/transfer -links wan -wan-size 256MiB
//	go run ./bench/transfer -size 256MiB -providers azure   # Azurite
//
// It must never run in `go test`: it writes a file of -size bytes.
package main
