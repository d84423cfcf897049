package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh directory and unmounts it when the test
// ends: a file system that really fills up (ENOSPC), for tests of the full-disk behaviour. It
// needs root (mount(2)); without it the test is skipped with a loud reason, and under CI=true it
// fails instead. tmpfs refuses O_DIRECT, so the store writes through the page cache there.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := smallDiskDir(t)
	mountOrSkip(t, dir, fmt.Sprintf("a %d-byte tmpfs", size), "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir)
	return dir
}

// SmallExt4Disk is SmallDisk on an ext4 file system in an image file, loop-mounted: a disk
// that accepts O_DIRECT, so the direct-write path meets ENOSPC too. The image lives in the
// test's temporary directory and is removed with it.
func SmallExt4Disk(t testing.TB, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatalf("small disk: %v", err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatalf("small disk: %v", err)
	}
	// No reserved blocks, no journal: every byte of size is the test's, and ENOSPC comes where
	// the arithmetic says.
	if out, err := exec.Command(systemTool("mkfs.ext4"), "-q", "-F", "-m", "0", "-O", "^has_journal", img).CombinedOutput(); err != nil {
		missingDisk(t, fmt.Sprintf("mkfs.ext4 failed: %v: %s", err, strings.TrimSpace(string(out))))
	}
	dir := smallDiskDir(t)
	mountOrSkip(t, dir, fmt.Sprintf("a %d-byte ext4 image", size), "mount", "-o", "loop", img, dir)
	return dir
}

func smallDiskDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-small-disk-")
	if err != nil {
		t.Fatalf("small disk: %v", err)
	}
	return dir
}

func missingDisk(t testing.TB, why string) {
	t.Helper()
	msg := "SMALL DISK UNAVAILABLE: " + why
	if CI() {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
}

// mountOrSkip runs a mount command on dir and unmounts dir when the test ends.
func mountOrSkip(t testing.TB, dir, what string, mount ...string) {
	t.Helper()
	out, err := exec.Command(systemTool(mount[0]), mount[1:]...).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		missingDisk(t, fmt.Sprintf("mounting %s failed (needs root): %v: %s", what, err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(systemTool("umount"), dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting small disk %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
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

// systemTool finds an administration command (mkfs.ext4, mount) also where
// a PATH without the sbin directories (a bare CI environment) would miss it.
func systemTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	return name
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
