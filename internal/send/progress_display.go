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
	now   func() time.Time // the clock (tests use a fake one)
	mu    sync.Mutex
	total *barClock
	files map[string]*barClock
}

// barClock is one bar with its own rate meter. Speed and time left are
// bytes over the last rateWindow of wall time, not mpb's EWMA decorators:
// those average time per byte over samples, so one sample of a few KiB after
// a pause (between files, while a part is created or the next one hashed)
// outweighs seconds of full-speed samples, and the total read 19 KiB/s with
// 5h32m left beside a file at 82 MiB/s. Bytes reach the bar in batches of at
// least sampleEvery (one channel send per read would cost more than the read).
type barClock struct {
	bar        *mpb.Bar
	size       int64
	rate       rateMeter
	now        func() time.Time
	speed, eta decor.Decorator
	last       time.Time
	pending    int64
}

const sampleEvery = 100 * time.Millisecond

func (b *barClock) add(n int64, now time.Time) {
	b.rate.add(n, now)
	b.pending += n
	if d := now.Sub(b.last); d >= sampleEvery || b.pending < 0 {
		b.flush(now)
	}
}

func (b *barClock) flush(now time.Time) {
	if b.pending != 0 {
		b.bar.IncrInt64(b.pending)
	}
	b.pending = 0
	b.last = now
}

// speedText and etaText are the bar's speed and time left, as drawn.
func (b *barClock) speedText(decor.Statistics) string {
	return fmt.Sprintf("% .1f/s", decor.SizeB1024(b.rate.perSecond(b.now())))
}

func (b *barClock) etaText(st decor.Statistics) string {
	r := b.rate.perSecond(b.now())
	if r <= 0 {
		return "?"
	}
	return time.Duration(float64(st.Total-st.Current) / r * float64(time.Second)).Round(time.Second).String()
}

// rateWindow is how much recent history the speed is measured over: long
// enough to smooth the pauses between files, short enough to follow a link
// that got slower.
const rateWindow = 10 * time.Second

// rateMeter measures bytes per second over the last rateWindow. It is read
// by mpb's render goroutine while uploads add to it.
type rateMeter struct {
	mu    sync.Mutex
	count int64
	marks []rateMark // oldest first; marks[0] is where the window starts
}

type rateMark struct {
	at    time.Time
	count int64
}

// start sets the meter's beginning (the time the first byte may be sent).
func (m *rateMeter) start(now time.Time) {
	m.mu.Lock()
	m.marks = []rateMark{{at: now, count: m.count}}
	m.mu.Unlock()
}

func (m *rateMeter) add(n int64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count += n
	if len(m.marks) == 0 || now.Sub(m.marks[len(m.marks)-1].at) >= sampleEvery {
		m.marks = append(m.marks, rateMark{at: now, count: m.count})
	}
	for len(m.marks) > 1 && now.Sub(m.marks[1].at) >= rateWindow {
		m.marks = m.marks[1:]
	}
}

// perSecond is the bytes added since the window's start over the time since.
func (m *rateMeter) perSecond(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.marks) == 0 {
		return 0
	}
	base := m.marks[0]
	d := now.Sub(base.at)
	if d < sampleEvery {
		return 0
	}
	return float64(m.count-base.count) / d.Seconds()
}

// NewBars draws to w (a terminal).
func NewBars(w io.Writer) *Bars { return newBars(w) }

func newBars(w io.Writer, opts ...mpb.ContainerOption) *Bars {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200 * time.Millisecond)}, opts...)
	return &Bars{p: mpb.New(opts...), now: time.Now, files: map[string]*barClock{}}
}

func (b *Bars) newBar(name string, size int64, opts ...mpb.BarOption) *barClock {
	c := &barClock{size: size, now: b.now, last: b.now()}
	c.rate.start(c.last)
	c.speed = decor.Any(c.speedText)
	c.eta = decor.Any(c.etaText)
	opts = append(opts,
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
		mpb.AppendDecorators(decor.OnComplete(c.speed, "done"),
			decor.OnComplete(decor.Name(" ETA "), ""), decor.OnComplete(c.eta, "")))
	c.bar = b.p.AddBar(size, opts...)
	return c
}

// totalText is what the total line shows as speed and time left.
func (b *Bars) totalText() (speed, eta string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total.flush(b.now())
	st := decor.Statistics{Total: b.total.size, Current: b.total.bar.Current()}
	speed, _ = b.total.speed.Decor(st)
	eta, _ = b.total.eta.Decor(st)
	return speed, eta
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
		f.add(n, b.now())
	}
	if b.total != nil {
		b.total.add(n, b.now())
	}
}

// FileDone implements Progress.
func (b *Bars) FileDone(rel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.files[rel]; f != nil {
		f.flush(b.now())
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
		b.total.flush(b.now())
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

// Human formats a byte count with binary units ("1.2 GiB").
func Human(n int64) string { return human(n) }

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
