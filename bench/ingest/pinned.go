package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Pinned mode (-pin): issue 12's ingest comparison with the sender and the
// receiver on one core each, as two machines would be: every sender runs
// under `taskset -c 0`, every server under `taskset -c 1` (the reference
// servers are this program re-run with -serve-copy; `ferry serve` is pinned
// by run.sh -pin). A 2 GiB file over loopback, best of -rounds.

// pinned0 is exec.Command, run on core (-1: unpinned).
func pinned0(core int, name string, args ...string) *exec.Cmd {
	if core < 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", fmt.Sprint(core), name}, args...)...)
}

// Names of the pinned rows the targets compare.
const (
	pinCopy     = "curl PUT -> Go io.Copy server"
	pinHash     = "curl PUT -> same server hashing SHA-256 on arrival"
	pinHashSync = "  same, fsync before answering (context)"
	pinDisk     = "  disk alone: O_DIRECT from huge pages + fsync, no network, no hash (context)"
	pinHashOnly = "  curl PUT -> server that only hashes, stores nothing (context)"
	pinFloor    = "  Go client hashing as it sends -> server that only hashes (context)"
	pinTusJS    = "stock tusd + tus-js-client (Node, 1 stream)"
	pinFerry1   = "ferry send --streams 1 -> ferry serve"
	pinFerry4   = "ferry send --streams 4 -> ferry serve"
)

func pinned(c config, target string) error {
	src := filepath.Join(c.dir, "lan.bin")
	fmt.Printf("PINNED: %d MiB over loopback, senders on core 0, servers on core 1 (taskset), best of %d\n", c.size>>20, c.rounds)
	if err := makeFile(src, c.size); err != nil {
		return err
	}
	var results []result
	for round := 1; round <= c.rounds; round++ {
		var rs []result
		for _, ref := range []struct {
			name, mode string
			hashing    bool // the client hashes what it sends, as ferry send does
		}{
			{pinCopy, "plain", false}, {pinHash, "sha256", false}, {pinHashSync, "sha256-sync", false},
			{pinHashOnly, "sha256-only", false}, {pinFloor, "sha256-only", true},
		} {
			prepare(src)
			d, cpu, err := curlPinned(c, src, ref.mode, ref.hashing)
			if err != nil {
				return err
			}
			rs = append(rs, result{name: ref.name, bytes: c.size, dur: d, cpu: cpu})
		}
		prepare(src)
		if d, err := diskAlone(c, src); err != nil {
			fmt.Println("  disk-alone run skipped:", err)
		} else {
			rs = append(rs, result{name: pinDisk, bytes: c.size, dur: d})
		}
		if c.tusjs {
			prepare(src)
			if r, err := tusJSOn(c, src, true); err != nil {
				fmt.Println("  tus-js-client run skipped:", err)
			} else {
				r.name = pinTusJS
				rs = append(rs, r)
			}
		}
		for _, n := range []int{1, 4} {
			prepare(src)
			d, cpu, err := sendWithFerryOn(c, target, src, n, 0)
			if err != nil {
				return err
			}
			name := pinFerry1
			if n == 4 {
				name = pinFerry4
			}
			rs = append(rs, result{name: name, bytes: c.size, dur: d, cpu: cpu})
		}
		fmt.Printf("  round %d:", round)
		for _, r := range rs {
			fmt.Printf(" %.2fs", r.dur.Seconds())
		}
		fmt.Println()
		results = keepBest(results, rs)
	}
	hashing := find(results, pinHash)
	printTable("PINNED", results, hashing)
	// The targets compare against references that are not durable: say so next to them.
	fmt.Println("PINNED durability: the curl reference servers write into the page cache and answer without fsync " +
		"(the bytes reach the disk after the timer stops); stock tusd's filestore never fsyncs either. " +
		"ferry serve writes O_DIRECT and fsyncs each upload before it answers its last PATCH. " +
		"The fsync row is the hashing server made as durable, for context.")
	if d := find(results, pinHashSync); d.bytes > 0 {
		fmt.Printf("PINNED (context): ferry --streams 4 / the hashing server that fsyncs before answering = %.2f\n",
			find(results, pinFerry4).mbps()/d.mbps())
	}
	if d := find(results, pinDisk); d.bytes > 0 {
		fmt.Printf("PINNED (context): ferry --streams 4 / the disk alone writing the same bytes durably = %.2f\n",
			find(results, pinFerry4).mbps()/d.mbps())
	}
	one, four, tusjs := find(results, pinFerry1), find(results, pinFerry4), find(results, pinTusJS)
	// What a transfer that verifies must spend at least: the receiver hashing on its one core, and
	// (as issue 12 §1 has the sender declare each upload's digest) the sender hashing on its own.
	if h, fl := find(results, pinHashOnly), find(results, pinFloor); h.bytes > 0 && fl.bytes > 0 && tusjs.bytes > 0 {
		fmt.Printf("PINNED (context): 1.2x stock tusd + tus-js-client is %.2fs; with nothing stored, a server that only hashes takes %.2fs (%.2fx tusd), and with a client that hashes as it sends too %.2fs (%.2fx tusd)\n",
			tusjs.dur.Seconds()/1.2, h.dur.Seconds(), h.mbps()/tusjs.mbps(), fl.dur.Seconds(), fl.mbps()/tusjs.mbps())
	}
	vsHash, vsTus, fourOne := four.mbps()/hashing.mbps(), four.mbps()/tusjs.mbps(), four.mbps()/one.mbps()
	fmt.Printf("PINNED targets: ferry --streams 4 / curl into the hashing server = %.2f (target >= 0.9): %s; "+
		"/ stock tusd + tus-js-client = %.2f (target >= 1.2): %s; 4 streams / 1 stream = %.2f (target >= 1): %s\n",
		vsHash, verdict(vsHash >= 0.9), vsTus, verdict(tusjs.bytes > 0 && vsTus >= 1.2), fourOne, verdict(fourOne >= 1))
	return nil
}

// diskAlone times this program re-run on core 1 copying src into a file with O_DIRECT writes
// from a buffer in huge pages, as ferry serve writes, and one fsync at the end: what this disk
// takes to hold the bytes durably, with no network and no hash. (dd would write from 4 KiB
// pages, which a virtio disk takes in more requests: ferry beat it.) The curl reference servers,
// which answer from the page cache, can beat it; a receiver that answers only once the bytes are
// durable can at best match it.
func diskAlone(c config, src string) (time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	out := filepath.Join(c.dir, "disk-alone.out")
	defer os.Remove(out)
	start := time.Now()
	cmd := pinned0(1, exe, "-disk-alone", src, "-disk-alone-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("disk alone: %w: %s", err, b)
	}
	return time.Since(start), nil
}

// curlPinned PUTs src with curl (core 0) into this program re-run as the
// reference server (core 1), plain or hashing what arrives.
func curlPinned(c config, src, mode string, hashing bool) (time.Duration, time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	out := filepath.Join(c.dir, "ceiling.out")
	defer os.Remove(out)
	srv := pinned0(1, exe, "-serve-copy", mode, "-serve-out", out)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return 0, 0, fmt.Errorf("start the reference server: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("reference server: %w", err)
	}
	start := time.Now()
	url := "http://" + strings.TrimSpace(addr) + "/ceiling"
	client, cmd := "curl", pinned0(0, "curl", "-sS", "-f", "-T", src, "-H", "Expect:", url)
	if hashing {
		client, cmd = "the hashing client", pinned0(0, exe, "-hash-put", url, "-hash-put-file", src)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w: %s", client, err, b)
	}
	return time.Since(start), cpuOf(cmd), nil
}

// serveCopy is the reference server: it writes each PUT body to out with
// io.Copy (mode sha256: through SHA-256 too, as a verifying receiver must)
// and answers once the body is in the page cache, without fsync (mode
// sha256-sync: once it is on disk; sha256-only: hashing it, storing nothing). It prints its
// address, then serves.
func serveCopy(mode, out string) error {
	if mode != "plain" && mode != "sha256" && mode != "sha256-sync" && mode != "sha256-only" {
		return fmt.Errorf("-serve-copy %q: want plain, sha256, sha256-sync or sha256-only", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h hash.Hash
		var dst io.Writer
		if mode != "plain" {
			h = sha256.New()
			dst = h
		}
		var f *os.File
		if mode != "sha256-only" {
			var err error
			if f, err = os.Create(out); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer f.Close()
			dst = f
			if h != nil {
				dst = io.MultiWriter(f, h)
			}
		}
		// sha256-only is the floor of any receiver that verifies: it reads in 1 MiB and stores
		// nothing. The others copy as io.Copy does (nil: its own 32 KiB buffer, or the file's
		// ReadFrom).
		var buf []byte
		if mode == "sha256-only" {
			buf = make([]byte, 1<<20)
		}
		if _, err := io.CopyBuffer(dst, r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if mode == "sha256-sync" {
			if err := f.Sync(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		if h != nil {
			w.Header().Set("X-SHA256", hex.EncodeToString(h.Sum(nil)))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// hashPut is the hashing client: it PUTs file to url, hashing each byte as it goes out, and
// checks the server's X-SHA256 against its own, as a sender that declares digests must.
func hashPut(url, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	req, err := http.NewRequest(http.MethodPut, url, io.TeeReader(f, h))
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT: %s", resp.Status)
	}
	if got, want := resp.Header.Get("X-SHA256"), hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the server hashed %s, the client %s", got, want)
	}
	return nil
}
