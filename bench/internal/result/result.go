// Package result is the machine-readable output every benchmark writes with
// its -json flag, next to its human output, so that bench/run can compute
// medians, ratios and targets without parsing text. It must never change a
// benchmark's own printed figures or verdicts.
package result

import (
	"encoding/json"
	"os"
	"sync"
)

// Metric is one figure a benchmark measured in one run.
type Metric struct {
	// Name is stable across runs ("wan/ferry s3"); bench/run's targets and
	// ratios refer to it.
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Unit is "MB/s", "s", "MB", "calls/file", ... as printed.
	Unit string `json:"unit"`
	// Streams and Files place the figure on bench/run's charts
	// (throughput against streams; delivery time against file count).
	Streams int `json:"streams,omitempty"`
	Files   int `json:"files,omitempty"`
}

// File is what one benchmark process writes.
type File struct {
	Bench   string   `json:"bench"`
	Metrics []Metric `json:"metrics"`
	// Notes are what a reader of the report needs to interpret the figures
	// (e.g. "server: stand-in").
	Notes []string `json:"notes,omitempty"`

	mu sync.Mutex
}

// New starts the output of bench.
func New(bench string) *File { return &File{Bench: bench} }

// Add records one metric. Safe for concurrent use; a nil File ignores it.
func (f *File) Add(m Metric) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Metrics = append(f.Metrics, m)
}

// Note records a remark for the report.
func (f *File) Note(s string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Notes = append(f.Notes, s)
}

// Write writes the file to path; an empty path (no -json flag) writes nothing.
func (f *File) Write(path string) error {
	if f == nil || path == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads a file written by Write.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}
