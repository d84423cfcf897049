// Command portal benchmarks the portal page (/p/{slug}: Uppy 6, files of
// 64 MiB and more as parallel tus partials) in headless Chromium, each ratio
// from one run:
//
//   - LAN: a 1 GiB file through ferry's page into ferry serve, against a plain
//     Uppy 6 page (core, dashboard, tus, defaults) into stock tusd. Target:
//     ferry's page at least as fast (>= 1.0x).
//   - WAN: a 512 MiB file through a shaping proxy (50 ms each way, 20 MB/s per
//     connection) into ferry serve: ferry's page against the same page limited
//     to one stream per file. Target: >= 4x.
//
// It needs Debian's chromium, tusd (scripts/peers) and web/node_modules
// (npm ci in web/, which it runs when missing) to build the reference page.
//
//	go run ./bench/portal [-lan-size 1GiB] [-wan-size 512MiB] [-rounds 3]
package main
