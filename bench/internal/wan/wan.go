// Package wan is the benchmarks' crude long-distance link: a TCP proxy that
// delays each direction and caps each connection's rate, shared by the
// upload benchmarks (bench/ingest, bench/portal).
package wan

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Proxy forwards TCP connections to upstream, adding a one-way delay in
// each direction and capping each connection's rate per direction: a crude
// long-distance link. In-flight data per direction is bounded (window), as a
// TCP window would bound it. Written here because no small Go tool does both.
type Proxy struct {
	ln       net.Listener
	upstream string
	delay    time.Duration
	rate     float64 // bytes/s per connection per direction
	window   int     // bytes queued in the delay line per direction
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

// Start listens on a free loopback port and forwards to upstream.
func Start(upstream string, delay time.Duration, bytesPerSec float64, window int) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, delay: delay, rate: bytesPerSec, window: window, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(client net.Conn) {
	time.Sleep(p.delay) // SYN one way
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	time.Sleep(p.delay) // SYN-ACK back
	p.track(client, true)
	p.track(up, true)
	defer func() {
		client.Close()
		up.Close()
		p.track(client, false)
		p.track(up, false)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, client) }()
	go func() { defer wg.Done(); p.pipe(client, up) }()
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst through the delay line and the rate cap.
func (p *Proxy) pipe(dst, src net.Conn) {
	const size = 64 << 10
	// A 1 MiB bucket: timers oversleep on a busy machine, and a bucket of one
	// chunk would turn every oversleep into lost rate; the average stays capped.
	lim := rate.NewLimiter(rate.Limit(p.rate), 1<<20)
	line := make(chan chunk, max(p.window/size, 1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range line {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if err := lim.WaitN(context.Background(), len(c.b)); err != nil {
				slog.Error("proxy limiter", "err", err)
			}
			if _, err := dst.Write(c.b); err != nil {
				for range line { // drain so the reader can finish
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	for {
		b := make([]byte, size)
		n, err := src.Read(b)
		if n > 0 {
			line <- chunk{b: b[:n], due: time.Now().Add(p.delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				slog.Debug("proxy read", "err", err)
			}
			break
		}
	}
	close(line)
	<-done
}
