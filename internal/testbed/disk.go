package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh directory and unmounts it when the test
// ends: a file system that really fills up (ENOSPC), for tests of the full-disk behaviour. It
// needs root (mount(2)); without it the test is skipped with a loud reason, and under CI=true it
// fails instead. tmpfs refuses O_DIRECT, so the store writes through the page cache there.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-small-disk-")
	if err != nil {
		t.Fatalf("small disk: %v", err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		msg := fmt.Sprintf("SMALL DISK UNAVAILABLE: mounting a %d-byte tmpfs failed (needs root): %v: %s", size, err, strings.TrimSpace(string(out)))
		if CI() {
			t.Fatalf("%s", msg)
		}
		t.Skipf("%s", msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting small disk %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}

// Fill writes a file at path until the file system holding it is full, and returns how many
// bytes it took: "another process filled the disk". Remove the file to give the space back.
func Fill(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("fill: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if err != nil {
			break
		}
	}
	// A small tail: the kernel may refuse a whole MiB yet take a page.
	for {
		m, err := f.Write(buf[:4096])
		n += int64(m)
		if err != nil {
			return n
		}
	}
}
