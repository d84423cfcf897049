package emulator_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// BenchmarkFileRecordsInABusyTenant measures creating asset + format + file
// set + file in a tenant already holding 2000 files against the same in an
// empty tenant, and reports the ratio: the control plane must not slow down
// with the data it holds (the snapshot writer coalesces mutations).
func BenchmarkFileRecordsInABusyTenant(b *testing.B) {
	perRecord := func(b *testing.B, preload int) time.Duration {
		e := emulatortest.Start(b, emulator.Options{})
		c := newClient(b, e, "admin")
		c.http = http.DefaultClient // measure the emulator, not the spec checks
		for i := range preload {
			c.newFile("s3", "d", fmt.Sprint(i), 1)
		}
		start := time.Now()
		for i := range b.N {
			c.newFile("s3", "d", fmt.Sprint(preload+i), 1)
		}
		return time.Since(start) / time.Duration(b.N)
	}
	empty := perRecord(b, 0)
	busy := perRecord(b, 2000)
	b.ReportMetric(float64(empty.Microseconds()), "µs/record-empty")
	b.ReportMetric(float64(busy.Microseconds()), "µs/record-2000")
	b.ReportMetric(float64(busy)/float64(empty), "busy/empty")
}
