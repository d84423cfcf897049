package send

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars draws mpb progress bars on a terminal: one per file while it is being
// sent, and a total, each with speed and ETA.
type Bars struct {
	p     *mpb.Progress
	mu    sync.Mutex
	total *barClock
	files map[string]*barClock
}

// barClock feeds mpb's moving-average speed with samples of at least
// sampleEvery: per-read samples (tens of KiB, bursty as socket buffers fill)
// would make the speed and ETA jump around. (The average shows after ten
// samples: about a second.)
type barClock struct {
	bar     *mpb.Bar
	last    time.Time
	pending int64
}

const sampleEvery = 100 * time.Millisecond

func (b *barClock) add(n int64) {
	b.pending += n
	now := time.Now()
	if d := now.Sub(b.last); d >= sampleEvery || b.pending < 0 {
		b.flush(now)
	}
}

func (b *barClock) flush(now time.Time) {
	if b.pending < 0 {
		b.bar.SetCurrent(b.bar.Current() + b.pending)
	} else if b.pending > 0 {
		b.bar.EwmaIncrInt64(b.pending, now.Sub(b.last))
	}
	b.pending = 0
	b.last = now
}

// NewBars draws to w (a terminal).
func NewBars(w io.Writer) *Bars {
	return &Bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond)), files: map[string]*barClock{}}
}

func (b *Bars) newBar(name string, size int64, opts ...mpb.BarOption) *barClock {
	opts = append(opts,
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
		mpb.AppendDecorators(decor.OnComplete(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 60), "done"),
			decor.OnComplete(decor.Name(" ETA "), ""), decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 60), "")))
	return &barClock{bar: b.p.AddBar(size, opts...), last: time.Now()}
}

// Total implements Progress.
func (b *Bars) Total(total, already int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = b.newBar("total", total, mpb.BarPriority(1<<30))
	b.total.bar.SetCurrent(already)
}

// FileStart implements Progress.
func (b *Bars) FileStart(rel string, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := rel
	if len(name) > 40 {
		name = "…" + name[len(name)-39:]
	}
	b.files[rel] = b.newBar(name, size, mpb.BarRemoveOnComplete())
}

// Resumed implements Progress.
func (b *Bars) Resumed(rel string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.files[rel]; f != nil {
		f.bar.SetCurrent(f.bar.Current() + n)
	}
	if b.total != nil {
		b.total.bar.SetCurrent(b.total.bar.Current() + n)
	}
}

// Add implements Progress.
func (b *Bars) Add(rel string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.files[rel]; f != nil {
		f.add(n)
	}
	if b.total != nil {
		b.total.add(n)
	}
}

// FileDone implements Progress.
func (b *Bars) FileDone(rel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.files[rel]; f != nil {
		f.flush(time.Now())
		f.bar.SetTotal(-1, true)
		delete(b.files, rel)
	}
}

// Close implements Progress: it stops the bars and waits for the last draw.
func (b *Bars) Close() {
	b.mu.Lock()
	for _, f := range b.files {
		f.bar.Abort(false)
	}
	if b.total != nil {
		b.total.flush(time.Now())
		if !b.total.bar.Completed() {
			b.total.bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

// Lines prints plain progress lines at an interval, for logs and pipes.
type Lines struct {
	w        io.Writer
	every    time.Duration
	mu       sync.Mutex
	total    int64
	done     int64
	files    int
	start    time.Time
	lastDone int64
	lastAt   time.Time
	cancel   context.CancelFunc
	stopped  chan struct{}
}

// NewLines prints to w every interval.
func NewLines(w io.Writer, every time.Duration) *Lines {
	return &Lines{w: w, every: every}
}

// Total implements Progress.
func (l *Lines) Total(total, already int64) {
	l.mu.Lock()
	l.total, l.done, l.lastDone = total, already, already
	l.start, l.lastAt = time.Now(), time.Now()
	l.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.stopped = cancel, make(chan struct{})
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(l.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.print()
			}
		}
	}()
}

func (l *Lines) print() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	speed := float64(l.done-l.lastDone) / now.Sub(l.lastAt).Seconds()
	l.lastDone, l.lastAt = l.done, now
	eta := "?"
	if speed > 0 {
		eta = time.Duration(float64(l.total-l.done) / speed * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if l.total > 0 {
		pct = 100 * float64(l.done) / float64(l.total)
	}
	fmt.Fprintf(l.w, "sent %s of %s (%.1f%%) at %s/s, ETA %s, %d files done\n",
		human(l.done), human(l.total), pct, human(int64(speed)), eta, l.files)
}

// FileStart implements Progress.
func (l *Lines) FileStart(string, int64) {}

// Resumed implements Progress.
func (l *Lines) Resumed(_ string, n int64) { l.Add("", n) }

// Add implements Progress.
func (l *Lines) Add(_ string, n int64) {
	l.mu.Lock()
	l.done += n
	l.mu.Unlock()
}

// FileDone implements Progress.
func (l *Lines) FileDone(rel string) {
	l.mu.Lock()
	l.files++
	l.mu.Unlock()
	fmt.Fprintf(l.w, "done: %s\n", rel)
}

// Close implements Progress.
func (l *Lines) Close() {
	if l.cancel != nil {
		l.cancel()
		<-l.stopped
	}
	l.print()
}

// human formats a byte count with binary units.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
