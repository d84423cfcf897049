package testbed

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects what goroutines write (a logger's handler, a progress
// renderer) for a test to read while they may still be writing.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines is everything written so far, a line each, without the last newline.
func (s *Buffer) Lines() []string {
	return strings.Split(strings.TrimSpace(s.String()), "\n")
}
