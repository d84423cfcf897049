package concatstore

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTheArenaAsksForHugePages checks the hint reached the kernel: the mapping holding the
// buffers carries the "hg" flag (MADV_HUGEPAGE) in /proc/self/smaps. Whether the kernel then
// finds huge pages depends on its memory, so that is not asserted.
func TestTheArenaAsksForHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("this kernel offers no transparent huge pages (%q, %v): the buffers are ordinary pages", mode, err)
	}
	b := getBuf()
	defer putBuf(b)
	flags, err := vmFlagsAt(uintptrOf(*b))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Fatalf("the buffers' mapping has VmFlags %q: no hg, so no huge pages were asked for", flags)
	}
}

// vmFlagsAt returns the VmFlags line of the mapping of this process that contains addr.
func vmFlagsAt(addr uintptr) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	return "", fmt.Errorf("no mapping of this process holds %#x (%v)", addr, sc.Err())
}
