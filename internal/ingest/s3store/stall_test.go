package s3store_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/s3store"
	"github.com/ferryhq/ferry/internal/ingest/store"
	"github.com/ferryhq/ferry/internal/testbed"
)

// faultyLink is a TCP relay between the store and the real S3 server that can stop passing
// the server's bytes on (a stalled link: the connection stays open, nothing arrives) or cut
// every connection (a server or proxy dropping idle keep-alive GETs).
type faultyLink struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when the stall ends
	conns   []net.Conn
}

func newFaultyLink(t *testing.T, target string) *faultyLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &faultyLink{ln: ln, target: target, resume: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); l.stall(false); l.cut() })
	go l.serve()
	return l
}

func (l *faultyLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil {
			c.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, c, s)
		l.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { l.relay(c, s); c.Close() }()
	}
}

// relay passes the server's answers on, chunk by chunk, holding each while the link stalls.
func (l *faultyLink) relay(dst io.Writer, src io.Reader) {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		l.mu.Lock()
		stalled, resume := l.stalled, l.resume
		l.mu.Unlock()
		if stalled {
			<-resume
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *faultyLink) stall(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case on && !l.stalled:
		l.resume = make(chan struct{})
	case !on && l.stalled:
		close(l.resume)
	}
	l.stalled = on
}

func (l *faultyLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// linkedBlob is a blob of data, finished on the real S3 server and read through a faultyLink.
func linkedBlob(t *testing.T, data []byte) (*faultyLink, store.Blob) {
	srv := testbed.Versity(t)
	bucket := srv.NewBucket(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	link := newFaultyLink(t, u.Host)
	// A transport of its own: the test's cuts and stalls must not reach other tests' connections.
	tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	s, err := s3store.New(clientOf(srv, "http://"+link.ln.Addr().String(), tr), s3store.Config{Bucket: bucket, Prefix: "u"})
	if err != nil {
		t.Fatal(err)
	}
	id := store.NewID()
	if _, err := s.NewUpload(context.Background(), handler.FileInfo{ID: id, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	write(t, s, id, 0, bytes.NewReader(data))
	blob, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blob.Close() })
	return link, blob
}

// readAtWithin runs blob.ReadAt and fails the test if it has not returned after limit: a read
// that hangs is the defect these tests are about, so it must fail them, not stall them.
func readAtWithin(t *testing.T, blob io.ReaderAt, p []byte, off int64, limit time.Duration) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() { n, err := blob.ReadAt(p, off); done <- result{n, err} }()
	select {
	case r := <-done:
		return r.n, r.err
	case <-time.After(limit):
		t.Fatalf("ReadAt(%d bytes at %d) still waits after %v on a stalled link", len(p), off, limit)
		return 0, nil
	}
}

// TestABlobReadOnAStalledLinkFailsAndTheNextReadsAgain: a link to S3 that stops passing bytes,
// while the answer's headers are awaited or in the middle of a body, fails the read once no
// byte came for the idle limit, saying so; once the link works again the same blob reads on,
// the right bytes.
func TestABlobReadOnAStalledLinkFailsAndTheNextReadsAgain(t *testing.T) {
	defer s3store.SetReadIdle(300 * time.Millisecond)()
	data := randBytes(48 << 20)
	link, blob := linkedBlob(t, data)
	const limit = 20 * time.Second
	p := make([]byte, 1<<20)

	// Stalled before the answer's headers.
	link.stall(true)
	if _, err := readAtWithin(t, blob, p, 0, limit); err == nil || !strings.Contains(err.Error(), "no byte arrived for 300ms") {
		t.Fatalf("a read whose GET got no answer returned %v; want an error saying no byte arrived", err)
	}
	link.stall(false)

	// Stalled in the middle of a body: sequential reads drain what the sockets hold, then fail.
	if n, err := readAtWithin(t, blob, p, 0, limit); n != len(p) || err != nil || !bytes.Equal(p, data[:len(p)]) {
		t.Fatalf("ReadAt at 0 = %d, %v, or other bytes", n, err)
	}
	link.stall(true)
	off := int64(len(p))
	for ; off < int64(len(data)); off += int64(len(p)) {
		n, err := readAtWithin(t, blob, p, off, limit)
		if err != nil {
			if !strings.Contains(err.Error(), "no byte arrived") {
				t.Fatalf("the stalled read at %d failed with %v; want it to say no byte arrived", off, err)
			}
			break
		}
		if n != len(p) || !bytes.Equal(p, data[off:off+int64(n)]) {
			t.Fatalf("ReadAt at %d = %d bytes, or other bytes", off, n)
		}
	}
	if off >= int64(len(data)) {
		t.Fatalf("every read succeeded although the link stalled: the sockets held all %d bytes, the check watched nothing", len(data))
	}
	link.stall(false)
	if n, err := readAtWithin(t, blob, p, off, limit); n != len(p) || err != nil || !bytes.Equal(p, data[off:off+int64(n)]) {
		t.Fatalf("after the link recovered, ReadAt at %d = %d, %v, or other bytes", off, n, err)
	}
}

// TestABlobReadsOnWhenItsKeptGetWasDropped: between two reads the GET a blob keeps open may be
// closed by the server or a proxy; the next read opens a new one instead of failing.
func TestABlobReadsOnWhenItsKeptGetWasDropped(t *testing.T) {
	data := randBytes(12 << 20)
	link, blob := linkedBlob(t, data)
	p := make([]byte, 1<<20)
	for i, off := range []int64{0, 1 << 20, 5<<20 + 3} {
		if i > 0 {
			link.cut()
		}
		n, err := readAtWithin(t, blob, p, off, 20*time.Second)
		if n != len(p) || err != nil || !bytes.Equal(p, data[off:off+int64(n)]) {
			t.Fatalf("ReadAt at %d after the link was cut = %d, %v, or other bytes", off, n, err)
		}
	}
}
