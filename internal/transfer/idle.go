package transfer

import (
	"context"
	"io"
	"net"
	"time"
)

// DefaultIdleTimeout is how long a connection to a provider may go with no
// byte moving either way before it is dropped and its request retried: as
// long as the transport already waits for an answer's headers, and the
// default of rclone's --timeout, which works the same way.
const DefaultIdleTimeout = 5 * time.Minute

// idleChunk bounds what one deadline covers when writing: at the slowest
// rate that still counts as moving (idleChunk per idle timeout, 3.5 KB/s by
// default) a healthy link never trips it.
const idleChunk = 1 << 20

// idleConn gives every read and write its own deadline. Without it nothing
// bounds a part whose link stalled: a server that stops reading keeps its
// TCP window shut, and TCP answers its own zero-window probes forever; a
// request written into the socket buffers waits on the answer's headers
// only as long as ResponseHeaderTimeout, and reading that answer not at all.
// Context deadlines cannot help: a part of a large file legitimately takes
// many minutes, so only "nothing moved" tells a stall from a slow link.
type idleConn struct {
	*net.TCPConn
	idle time.Duration
}

// dialIdle returns a DialContext whose connections drop after idle with no progress.
func dialIdle(d *net.Dialer, idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok || idle <= 0 {
			return c, nil
		}
		return &idleConn{TCPConn: tc, idle: idle}, nil
	}
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.TCPConn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if err := c.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
			return n, err
		}
		m, err := c.TCPConn.Write(p[n : n+min(len(p)-n, idleChunk)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom keeps sendfile for a part on its own descriptor (the transport
// hands the body over as an *io.LimitedReader, which is what net's sendfile
// path unwraps): the range goes in idleChunk steps, each under a fresh
// deadline.
func (c *idleConn) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		return io.Copy(writerOnly{c}, r)
	}
	var total int64
	for lr.N > 0 {
		step := &io.LimitedReader{R: lr.R, N: min(lr.N, idleChunk)}
		if err := c.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
			return total, err
		}
		n, err := c.TCPConn.ReadFrom(step)
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
