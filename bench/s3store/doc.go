// Command s3store compares the package stores in one run: the same file sent with ferry send's
// parallel partials into a real ferry server (in-process) whose bytes go to local disk, then to
// the Versity S3 gateway (--store s3://...), then read back sequentially as delivery reads it.
// It reports MiB/s for each and the ratio; run it on a quiet machine.
package main
