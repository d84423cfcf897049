package idleconn

import (
	"context"
	"io"
	"net"
	"time"
)

// Step bounds what one write deadline covers: a write or a sendfile goes in
// steps of at most Step bytes, each with a fresh deadline. A link that moves
// at least Step per idle period is never taken for a stalled one.
const Step = 1 << 20

// Conn gives every read its own deadline of ReadIdle, and every write step
// its own deadline of WriteIdle; zero leaves that direction unbounded.
//
// Why: a peer that stops reading keeps its TCP window shut, and TCP answers
// its own zero-window probes forever; a context deadline cannot tell a
// stalled transfer from a large one that legitimately takes an hour; only
// "nothing moved for this long" can.
type Conn struct {
	net.Conn
	ReadIdle, WriteIdle time.Duration
}

// Wrap returns c with the given idle limits, or c itself if both are zero.
func Wrap(c net.Conn, readIdle, writeIdle time.Duration) net.Conn {
	if readIdle <= 0 && writeIdle <= 0 {
		return c
	}
	return &Conn{Conn: c, ReadIdle: readIdle, WriteIdle: writeIdle}
}

// Dialer returns a DialContext for an http.Transport whose connections are
// wrapped with the given idle limits.
func Dialer(d *net.Dialer, readIdle, writeIdle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(c, readIdle, writeIdle), nil
	}
}

func (c *Conn) Read(p []byte) (int, error) {
	if c.ReadIdle > 0 {
		if err := c.SetReadDeadline(time.Now().Add(c.ReadIdle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// step gives the next write step WriteIdle to move.
func (c *Conn) step() error {
	if c.WriteIdle <= 0 {
		return nil
	}
	return c.SetWriteDeadline(time.Now().Add(c.WriteIdle))
}

func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if err := c.step(); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(p[n : n+min(len(p)-n, Step)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom keeps sendfile: net/http hands a request body to the connection
// as an *io.LimitedReader, which is what net's sendfile path unwraps (one
// level deep), so the range goes on in Step-sized LimitedReaders of the same
// source, each under a fresh deadline. Anything else is copied through Write.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	rf, rfOK := c.Conn.(io.ReaderFrom)
	if !ok || !rfOK {
		return io.Copy(writerOnly{c}, r)
	}
	var total int64
	for lr.N > 0 {
		if err := c.step(); err != nil {
			return total, err
		}
		step := &io.LimitedReader{R: lr.R, N: min(lr.N, Step)}
		n, err := rf.ReadFrom(step)
		lr.N -= n
		total += n
		if err != nil || step.N > 0 {
			return total, err // an error, or the source ended early
		}
	}
	return total, nil
}

// writerOnly hides ReadFrom, so io.Copy calls Write.
type writerOnly struct{ io.Writer }
