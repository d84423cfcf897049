package idleconn_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/idleconn"
)

// pair returns a client connection wrapped by idleconn and the server's end, over real TCP.
func pair(t *testing.T, readIdle, writeIdle time.Duration) (client net.Conn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return idleconn.Wrap(c, readIdle, writeIdle), s
}

// within runs f and fails the test if it has not returned after limit: a call that hangs is
// the defect these tests are about.
func within(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("still blocked after %v", limit)
		return nil
	}
}

func TestAWriteThePeerNeverTakesFailsOnceIdle(t *testing.T) {
	c, _ := pair(t, 0, 200*time.Millisecond)
	err := within(t, 30*time.Second, func() error {
		_, err := c.Write(make([]byte, 256<<20)) // far more than the socket buffers hold
		return err
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writing into a shut window returned %v; want a deadline error", err)
	}
}

func TestASlowPeerThatKeepsReadingIsNotCut(t *testing.T) {
	c, s := pair(t, 0, 2*time.Second)
	data := make([]byte, 8<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 128<<10)
		for b.Len() < len(data) {
			n, err := s.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond) // about 25 MB/s: slow, never still
		}
		got <- b.Bytes()
	}()
	if err := within(t, time.Minute, func() error { _, err := c.Write(data); return err }); err != nil {
		t.Fatalf("a write to a slow but moving peer failed: %v", err)
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("the peer got other bytes")
	}
}

// TestARangeHandedOverAsALimitedReaderArrivesWhole: net/http hands bodies over this way, and
// the steps must neither lose nor repeat a byte, nor read past the limit.
func TestARangeHandedOverAsALimitedReaderArrivesWhole(t *testing.T) {
	c, s := pair(t, 0, 10*time.Second)
	data := make([]byte, 3*idleconn.Step+5)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, append(data, "not sent"...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(io.LimitReader(s, int64(len(data)))); got <- b }()
	lr := &io.LimitedReader{R: f, N: int64(len(data))}
	n, err := c.(io.ReaderFrom).ReadFrom(lr)
	if err != nil || n != int64(len(data)) || lr.N != 0 {
		t.Fatalf("ReadFrom = %d, %v, %d left; want %d, nil, 0", n, err, lr.N, len(data))
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("the peer got other bytes")
	}
}

func TestAReadWithNothingArrivingFailsOnceIdle(t *testing.T) {
	c, _ := pair(t, 200*time.Millisecond, 0)
	err := within(t, 30*time.Second, func() error { _, err := c.Read(make([]byte, 1)); return err })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read with nothing arriving returned %v; want a deadline error", err)
	}
}
