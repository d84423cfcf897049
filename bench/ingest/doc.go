// Command ingest benchmarks `ferry send` against references on this machine:
// LAN (loopback) against curl PUT into a plain io.Copy file server (the
// ceiling) and stock tusd + tus-js-client; WAN through a delaying, rate-capping
// TCP proxy, one stream against many. It must never leave servers or files behind.
//
//	go run ./bench/ingest                       # in-process stand-in server (stock tusd + package shim)
//	go run ./bench/ingest -target http://127.0.0.1:8080/p/demo   # a running `ferry serve`
package main
