package transfer

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Streams decides how many parts of one file are in flight. Over a long link
// each connection is capped (by its TCP window against the round trip, or by
// a shaper), so more parts in flight add throughput until the link or the
// server is full; over a LAN the server is full with a few and more add
// nothing. No fixed number suits both (bench/transfer: 8 parts in flight
// reach 0.91x of one PUT on loopback, but only ~4-5x of one stream through a
// 50 ms, 20 MB/s-per-connection link, where 16-32 reach 6-8x), so Streams
// measures: it starts at its floor and, each time a level has finished a
// full wave of parts (as many as it had in flight), compares the throughput
// of that wave with the previous level's. It doubles while doubling raised
// throughput by at least a quarter (each added stream still brings at least
// half of what the earlier ones did on average), up to its ceiling, and
// otherwise goes back to the previous level and stays there. Memory does not
// grow with the level: parts are read from the source, not buffered.
type Streams struct {
	min, max int

	mu        sync.Mutex
	level     int
	settled   bool
	prevLevel int
	prevRate  float64
	start     time.Time
	bytes     int64
	parts     int
	peak      int // most parts in flight at once (RunPartsAdaptive)
}

// streamsGain is the least rise in throughput a doubling must bring.
const streamsGain = 1.25

// NewStreams starts at lo parts in flight and may grow to hi; lo == hi is a
// fixed number.
func NewStreams(lo, hi int) *Streams {
	lo = max(lo, 1)
	hi = max(hi, lo)
	return &Streams{min: lo, max: hi, level: lo, settled: lo == hi}
}

// Start begins the first measurement window.
func (s *Streams) Start(now time.Time) {
	s.mu.Lock()
	s.start = now
	s.mu.Unlock()
}

// Level is how many parts may be in flight now.
func (s *Streams) Level() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// Peak is the most parts RunPartsAdaptive had in flight at once.
func (s *Streams) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *Streams) started(inflight int) {
	s.mu.Lock()
	s.peak = max(s.peak, inflight)
	s.mu.Unlock()
}

// Done records a part of n bytes acknowledged at now.
func (s *Streams) Done(n int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled {
		return
	}
	s.bytes += n
	s.parts++
	if s.parts < s.level {
		return
	}
	el := now.Sub(s.start).Seconds()
	if el <= 0 {
		return
	}
	rate := float64(s.bytes) / el
	switch {
	case s.prevLevel == 0 || rate >= s.prevRate*streamsGain:
		s.prevLevel, s.prevRate = s.level, rate
		if next := min(2*s.level, s.max); next > s.level {
			s.level = next
		} else {
			s.settled = true
		}
	default:
		// Not worth twice the connections (to the server, and to the
		// storage's request rate): back to the level that did as well.
		s.level, s.settled = s.prevLevel, true
	}
	s.start, s.bytes, s.parts = now, 0, 0
}

// RunPartsAdaptive is RunParts with the parts in flight set by s as they are
// acknowledged.
func RunPartsAdaptive(ctx context.Context, s *Streams, parts []Part, done func(Part) bool, start func(i int), send func(ctx context.Context, p Part) error) error {
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inflight := 0
	stop := context.AfterFunc(gctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()
	s.Start(time.Now())
	for i, p := range parts {
		if start != nil {
			start(i)
		}
		if done != nil && done(p) {
			continue
		}
		mu.Lock()
		for inflight >= s.Level() && gctx.Err() == nil {
			cond.Wait()
		}
		if gctx.Err() != nil {
			mu.Unlock()
			break
		}
		inflight++
		s.started(inflight)
		mu.Unlock()
		g.Go(func() error {
			err := send(gctx, p)
			if err == nil {
				s.Done(p.Size, time.Now())
			}
			mu.Lock()
			inflight--
			cond.Broadcast()
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return err
}
