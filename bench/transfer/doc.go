// Command transfer benchmarks ferry's S3 uploader against the references of
// issue 4 in one run, on one Versity S3 gateway and one source file:
// rclone copyto (best flags), aws-sdk-go-v2's transfermanager (16 MiB x 8)
// and one presigned PUT of the whole file (the server's ceiling). Each
// contender runs as a child process so that its peak RSS is its own
// (getrusage of the child). It prints MB/s, ratios and peak RSS.
//
//	go run ./bench/transfer -size 2GiB
//	go run ./bench/transfer -size 256MiB -providers azure   # Azurite
//
// It must never run in `go test`: it writes a file of -size bytes.
package main
