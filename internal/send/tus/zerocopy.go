package tus

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/idleconn"
)

// Zero-copy sending. An upload body read through an io.SectionReader costs a
// copy from the page cache into the process and another into the socket, in
// 32 KiB steps; on a 2-core machine that CPU competes with hashing and with a
// local server. When the body is an *os.File, net/http hands it to the kernel
// (sendfile) instead, but then no Read happens that could count progress. So
// connections made by NewTransport count what they write, and an Upload
// attaches its progress callback to the connection its request got.

// NewTransport returns an HTTP/1.1 transport for uploads whose connections
// count written bytes. HTTP/1.1 only: every stream must be its own TCP
// connection, because on long links one connection's window (and any
// per-connection rate cap) is what parallel streams exist to multiply.
// Callers may adjust it (TLS roots, proxy) before use.
func NewTransport(conns int) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	defer counting.Store(t, true)
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: idleconn.Wrap(c, 0, WriteIdle)}, nil
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	t.MaxIdleConnsPerHost = conns + 4
	// Small: a hashed body's chunks (1 MiB) go around the buffer to the
	// socket, and only the bytes that fill it behind a chunk header are copied.
	t.WriteBufferSize = 16 << 10
	t.ReadBufferSize = 64 << 10
	t.ResponseHeaderTimeout = 10 * time.Minute // tusd answers a PATCH only when the body is in
	return t
}

// counting remembers the transports NewTransport made.
var counting sync.Map

// Counts reports whether rt came from NewTransport, so Client.ZeroCopy may be set.
func Counts(rt http.RoundTripper) bool {
	t, ok := rt.(*http.Transport)
	if !ok {
		return false
	}
	_, ok = counting.Load(t)
	return ok
}

// WriteIdle is how long a write may wait for the server to take a byte
// before the connection is dropped (idleconn) and the PATCH resumed from the
// server's offset: without it, ferry send, unattended in a script, would wait
// forever on a server or proxy that stopped reading. Reads are left to the
// transport's ResponseHeaderTimeout. A variable so tests can make it small.
var WriteIdle = 2 * time.Minute

// countConn reports bytes written to whoever is attached.
type countConn struct {
	net.Conn
	mu sync.Mutex
	fn func(int64)
}

func (c *countConn) attach(fn func(int64)) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *countConn) report(n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fn != nil {
		c.fn(n)
	}
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.report(int64(n))
	return n, err
}

// sendfileStep bounds one sendfile call, so progress moves in steps of this size.
const sendfileStep = idleconn.Step

// fileBody is a request body of exactly n bytes of a file from its current
// position. net/http requires a body to end at Content-Length (it reads on to
// check), and hands it, wrapped in a LimitedReader, to countConn.ReadFrom,
// which recognises it and uses sendfile. Close is a no-op: the caller closes f.
type fileBody struct {
	f  *os.File
	lr io.LimitedReader
}

func newFileBody(f *os.File, n int64) *fileBody {
	return &fileBody{f: f, lr: io.LimitedReader{R: f, N: n}}
}

func (b *fileBody) Read(p []byte) (int, error) { return b.lr.Read(p) }
func (b *fileBody) Close() error               { return nil }

// ReadFrom is where net/http sends a request body: a fileBody goes through
// the TCP connection's sendfile path in steps, each counted.
func (c *countConn) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	var fb *fileBody
	if ok {
		fb, ok = lr.R.(*fileBody)
	}
	rf, rfOK := c.Conn.(io.ReaderFrom)
	if !ok || !rfOK {
		return io.Copy(struct{ io.Writer }{c}, r) // plain writes, counted by Write
	}
	var total int64
	for lr.N > 0 && fb.lr.N > 0 {
		n, err := rf.ReadFrom(&io.LimitedReader{R: fb.f, N: min(lr.N, fb.lr.N, sendfileStep)})
		lr.N -= n
		fb.lr.N -= n
		total += n
		c.report(n)
		if err != nil {
			return total, err
		}
		if n == 0 {
			break // end of file
		}
	}
	return total, nil
}

// attempt counts the bytes of one PATCH; stop detaches it, so bytes the
// transport may still write after Do returned are not counted.
type attempt struct {
	mu      sync.Mutex
	n       int64
	stopped bool
	fn      func(int64)
	conn    *countConn
}

func (a *attempt) add(n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.stopped {
		a.n += n
		a.fn(n)
	}
}

func (a *attempt) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		conn := info.Conn
		if nc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
			conn = nc.NetConn()
		}
		if cc, ok := conn.(*countConn); ok {
			a.mu.Lock()
			a.conn = cc
			a.mu.Unlock()
			cc.attach(a.add)
		}
	}})
}

func (a *attempt) stop() int64 {
	a.mu.Lock()
	a.stopped = true
	cc := a.conn
	n := a.n
	a.mu.Unlock()
	if cc != nil {
		cc.attach(nil)
	}
	return n
}
