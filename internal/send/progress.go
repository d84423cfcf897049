package send

// Progress receives upload progress. Implementations must be safe for
// concurrent use: parallel streams of one file report at the same time.
type Progress interface {
	// Total is called once: the package size and the bytes already on the server.
	Total(total, already int64)
	// FileStart is called when a file's first byte range starts.
	FileStart(rel string, size int64)
	// Resumed reports bytes of a file found on the server (not sent now).
	Resumed(rel string, n int64)
	// Add reports bytes sent (negative after a resync found fewer stored).
	Add(rel string, delta int64)
	// FileDone is called when the server holds the whole file.
	FileDone(rel string)
	// Close ends the display.
	Close()
}

type nopProgress struct{}

func (nopProgress) Total(int64, int64)      {}
func (nopProgress) FileStart(string, int64) {}
func (nopProgress) Resumed(string, int64)   {}
func (nopProgress) Add(string, int64)       {}
func (nopProgress) FileDone(string)         {}
func (nopProgress) Close()                  {}
