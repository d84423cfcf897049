package transfer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// simulate sends parts of partSize going out in waves: every stream is
// capped at perStream bytes/s (a long link) and the whole at total
// (the server or the uplink), and returns the levels the waves went out at.
func simulate(s *transfer.Streams, parts int, partSize int64, perStream, total float64) []int {
	now := time.Unix(0, 0)
	s.Start(now)
	var levels []int
	for left := parts; left > 0; {
		if l := s.Level(); len(levels) == 0 || l != levels[len(levels)-1] {
			levels = append(levels, l)
		}
		n := min(s.Level(), left)
		rate := min(perStream*float64(n), total) // the wave's aggregate rate
		now = now.Add(time.Duration(float64(partSize) * float64(n) / rate * float64(time.Second)))
		for range n {
			s.Done(partSize, now)
		}
		left -= n
	}
	return levels
}

func TestStreamsGrowWhileMoreStreamsAddThroughput(t *testing.T) {
	const part = 32 << 20
	cases := []struct {
		name             string
		min, max         int
		parts            int
		perStream, total float64
		want             []int
	}{
		// 20 MB/s per connection, a server taking 400 MB/s: every doubling
		// doubles the rate, up to the cap.
		{"long link, capped per connection", 8, 32, 64, 20e6, 400e6, []int{8, 16, 32}},
		// The server is full at 8 streams: 16 adds nothing, back to 8.
		{"loopback, server-bound", 8, 32, 64, 1e9, 300e6, []int{8, 16, 8}},
		// 16 streams add a fifth (200 -> 240 MB/s): not worth twice the
		// connections, back.
		{"small gain", 8, 32, 64, 25e6, 240e6, []int{8, 16, 8}},
		// Doubling from 8 to 16 helps, 32 does not: settle at 16.
		{"saturates at 16", 8, 32, 128, 20e6, 330e6, []int{8, 16, 32, 16}},
		// Fixed (min == max): as configured, never probes.
		{"fixed", 4, 4, 64, 20e6, 400e6, []int{4}},
		// A file of fewer parts than one wave is never measured.
		{"one wave", 8, 32, 8, 20e6, 400e6, []int{8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := transfer.NewStreams(c.min, c.max)
			got := simulate(s, c.parts, part, c.perStream, c.total)
			if len(got) != len(c.want) {
				t.Fatalf("levels %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("levels %v, want %v", got, c.want)
				}
			}
		})
	}
}

// RunPartsAdaptive sends every part once and never has more in flight than
// the streams' ceiling.
func TestRunPartsAdaptiveSendsEveryPartWithinTheCeiling(t *testing.T) {
	parts := transfer.PlanParts(64<<20, 1<<20) // 64 parts
	s := transfer.NewStreams(2, 8)
	var inflight, peak atomic.Int64
	var mu sync.Mutex
	sent := map[int]int{}
	err := transfer.RunPartsAdaptive(context.Background(), s, parts, nil, nil, func(ctx context.Context, p transfer.Part) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			if old := peak.Load(); n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		mu.Lock()
		sent[p.Number]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(parts) {
		t.Errorf("%d parts sent, want %d", len(sent), len(parts))
	}
	for n, c := range sent {
		if c != 1 {
			t.Errorf("part %d sent %d times", n, c)
		}
	}
	if peak.Load() > 8 {
		t.Errorf("%d parts in flight, above the ceiling of 8", peak.Load())
	}
	if s.Peak() < int(peak.Load()) || s.Peak() > 8 {
		t.Errorf("Peak() = %d, but %d parts were seen in flight at once (ceiling 8)", s.Peak(), peak.Load())
	}
}
