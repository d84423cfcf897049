package transfertest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// Harness is one provider against one server. Run drives it through every case.
type Harness struct {
	// New builds the uploader under test with the suite's options (small
	// parts, quick retries).
	New func(o transfer.Options) transfer.Uploader
	// PartSize is the smallest part size the provider accepts; cases sit on
	// its boundaries.
	PartSize int64
	// MaxSize is the largest object the server holds comfortably (fake-gcs-server
	// keeps resumable uploads in memory); 0 means no limit.
	MaxSize int64
	// NewTarget returns a target for a fresh object key; every URL it hands
	// out must go through via (the fault-injecting proxy).
	NewTarget func(t *testing.T, key string, size int64, via func(string) string) transfer.Target
	// Open reads the stored object back; ok=false when no object is visible.
	Open func(t *testing.T, key string) (r io.ReadCloser, ok bool)
	// Pending counts unfinished uploads (S3 multipart, B2 large files) for
	// key, or is nil when the server cannot tell.
	Pending func(t *testing.T, key string) int
	// Sequential marks protocols whose chunks go one after the other with a
	// session the server hands out (GCS): an expired *signed* URL only
	// matters before the session starts, and a damaged chunk is only caught
	// by the final object hash.
	Sequential bool
	// Skip names cases the server cannot run, with the reason (a known bug of
	// the server, never of the uploader): the case must run on another server.
	Skip map[string]string
}

// Run runs the conformance suite. Large cases are skipped with -short.
func Run(t *testing.T, h Harness) {
	ps := h.PartSize
	sizes := []struct {
		name string
		size int64
	}{
		{"Empty", 0},
		{"OneByte", 1},
		{"OnePartMinusOne", ps - 1},
		{"ExactlyOnePart", ps},
		{"OnePartPlusOne", ps + 1},
		{"TwoPartsMinusOne", 2*ps - 1},
		{"ExactlyTwoParts", 2 * ps},
		{"TwoPartsPlusOne", 2*ps + 1},
		{"OneGiB", 1 << 30},
	}
	for _, c := range sizes {
		t.Run("Sends"+c.name+"FileIntact", func(t *testing.T) {
			h.skip(t)
			if c.size >= 1<<30 && testing.Short() {
				t.Skip("1 GiB case skipped with -short (runs in CI)")
			}
			if h.MaxSize > 0 && c.size > h.MaxSize {
				t.Skipf("server holds objects up to %d bytes (see Harness.MaxSize)", h.MaxSize)
			}
			s := newSetup(t, h, c.size)
			var prog progressLog
			res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{Progress: prog.add})
			if err != nil {
				t.Fatalf("upload %d bytes: %v", c.size, err)
			}
			s.checkStored(t, res)
			prog.check(t, c.size)
		})
	}

	t.Run("SendsFromAPlainReaderAt", func(t *testing.T) {
		h.skip(t)
		// A source that cannot be reopened (a concatenated upload) is read
		// with io.SectionReader and hashed while sent, not sent with sendfile.
		s := newSetup(t, h, 2*ps+1)
		var prog progressLog
		res, err := s.up.Upload(context.Background(), plainSource{s.src}, s.target, transfer.Params{Progress: prog.add})
		if err != nil {
			t.Fatalf("upload from a plain ReaderAt: %v", err)
		}
		s.checkStored(t, res)
		prog.check(t, s.src.Size())
	})

	t.Run("RefreshesExpiredURLsMidUpload", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 8*ps+ps/2) // more parts than in flight: later ones use URLs issued before the expiry
		var once sync.Once
		res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{Checkpoint: func(st transfer.State) error {
			if len(st.Parts) >= 1 || st.Offset > 0 || (h.Sequential && st.UploadID != "") {
				once.Do(func() {
					s.proxy.ExpireIssued()
					if !h.Sequential {
						s.proxy.ExpireNextData(1)
					}
				})
			}
			return nil
		}})
		if err != nil {
			t.Fatalf("upload with URLs expiring mid-way: %v", err)
		}
		s.checkStored(t, res)
		if st := s.proxy.Stats(); st.Refused == 0 && !h.Sequential {
			t.Errorf("no expired URL was refused: the case did not exercise a refresh")
		}
	})

	t.Run("RetriesProvider503OnAShareOfParts", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 4*ps+7)
		s.proxy.FailFirstAttemptEvery(2)
		res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{})
		if err != nil {
			t.Fatalf("upload with 503s on half the parts: %v", err)
		}
		s.checkStored(t, res)
		if st := s.proxy.Stats(); st.Injected == 0 {
			t.Errorf("no 503 was injected")
		}
	})

	t.Run("DropsAStalledConnectionAndSendsItsPartAgain", func(t *testing.T) {
		h.skip(t)
		s := newSetupWith(t, h, 3*ps+5, func(o *transfer.Options) { o.IdleTimeout = time.Second })
		s.proxy.StallNextData(1)
		// Far beyond the idle timeout and the retries: only an upload that
		// waits on the stalled connection forever reaches it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := s.up.Upload(ctx, s.src, s.target, transfer.Params{})
		if err != nil {
			t.Fatalf("upload with one stalled connection: %v", err)
		}
		s.checkStored(t, res)
		if st := s.proxy.Stats(); st.Stalled != 1 {
			t.Errorf("%d requests stalled; the case meant to stall one", st.Stalled)
		}
	})

	t.Run("CancelLeavesNoObjectVisible", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 4*ps)
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		_, err := s.up.Upload(ctx, s.src, s.target, transfer.Params{Checkpoint: func(st transfer.State) error {
			if len(st.Parts) >= 1 || st.Offset > 0 {
				cancel(transfer.ErrCanceled)
			}
			return nil
		}})
		if err == nil {
			t.Fatal("upload canceled mid-way reported success")
		}
		if !errors.Is(err, transfer.ErrCanceled) && !errors.Is(err, context.Canceled) {
			t.Errorf("error after cancel = %v, want the cancellation", err)
		}
		s.proxy.Quiesce()
		if r, ok := h.Open(t, s.key); ok {
			r.Close()
			t.Errorf("an object is visible under %s after cancel", s.key)
		}
		if h.Pending != nil {
			if n := h.Pending(t, s.key); n != 0 {
				t.Errorf("%d unfinished uploads remain for %s after cancel", n, s.key)
			}
		}
	})

	t.Run("ResumesAfterDeathWithoutResendingAcknowledgedParts", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 5*ps+3)
		ctx, die := context.WithCancel(context.Background())
		var mu sync.Mutex
		var saved *transfer.State
		_, err := s.up.Upload(ctx, s.src, s.target, transfer.Params{Checkpoint: func(st transfer.State) error {
			mu.Lock()
			defer mu.Unlock()
			saved = &st
			if len(st.Parts) >= 2 || st.Offset >= 2*ps {
				die() // the process dies: no abort, nothing cleaned up
			}
			return nil
		}})
		die()
		if err == nil {
			t.Fatal("upload killed mid-way reported success")
		}
		mu.Lock()
		if saved == nil {
			mu.Unlock()
			t.Fatalf("no checkpoint before the crash: %v", err)
		}
		state := *saved
		mu.Unlock()
		acked := state.Offset
		for _, p := range state.Parts {
			acked += p.Size
		}
		if acked == 0 {
			t.Fatalf("no acknowledged bytes in the saved state %+v", state)
		}
		s.proxy.Quiesce()
		s.proxy.Stats()
		res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{Resume: &state})
		if err != nil {
			t.Fatalf("resume from saved state: %v", err)
		}
		s.checkStored(t, res)
		st := s.proxy.Stats()
		if st.BodyBytes > s.src.Size()-acked {
			t.Errorf("resume sent %d bytes, but %d of %d were acknowledged before the crash", st.BodyBytes, acked, s.src.Size())
		}
		if res.Resumed == 0 && !h.Sequential {
			t.Errorf("Result.Resumed = 0 after resuming %d acknowledged parts", len(state.Parts))
		}
	})

	t.Run("RetriesAPartTheServerRejects", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 3*ps+5)
		s.proxy.Corrupt(func(idx, attempt int) bool { return attempt == 1 && idx == 1 })
		res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{})
		if h.Sequential {
			if err == nil {
				s.checkStored(t, res) // never success with damaged bytes
			} else {
				checkErr(t, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("upload with one damaged part: %v", err)
		}
		s.checkStored(t, res)
		if st := s.proxy.Stats(); st.Corrupted == 0 {
			t.Errorf("no part was damaged")
		}
	})

	t.Run("KnowsTheLongestNameTheProviderStores", func(t *testing.T) {
		h.skip(t)
		// Every provider caps an object name at 1,024 (bytes of UTF-8, or
		// characters on Azure: the same for ASCII). A file admitted with a
		// longer name could never be delivered (issue 9 item 5), so each
		// uploader must say so before a byte is sent, and a name at the
		// limit must really be storable.
		nc, ok := h.New(transfer.Options{}).(transfer.NameChecker)
		if !ok {
			t.Fatal("the uploader does not implement transfer.NameChecker")
		}
		atLimit := LongName("ferry/names-"+randName()+"/", 1024)
		if err := nc.CheckName(atLimit); err != nil {
			t.Fatalf("CheckName refuses a name of 1,024 ASCII bytes: %v", err)
		}
		s := newSetup(t, h, 1)
		s.key, s.target = atLimit, h.NewTarget(t, atLimit, 1, s.proxy.Via)
		res, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{})
		if err != nil {
			t.Fatalf("upload to a name of 1,024 bytes: %v", err)
		}
		s.checkStored(t, res)

		over := atLimit + "x"
		err = nc.CheckName(over)
		ne := transfer.AsNameError(err)
		if ne == nil || ne.Rule != transfer.NameTooLong || ne.Over != 1 || !strings.Contains(ne.Limit, "1,024") {
			t.Fatalf("CheckName(1,025 bytes) = %v, want a NameError naming the 1,024 limit, 1 over", err)
		}
		// No refusal by the server is asked for: Versity v1.8.0,
		// fake-gcs-server v1.56.1 and Azurite 3.37.0 all store names past
		// the limit the real services enforce, so ferry's own check is
		// the guard that holds on every server.
	})

	t.Run("FailsClearlyWhenThePartKeepsBeingRejected", func(t *testing.T) {
		h.skip(t)
		s := newSetup(t, h, 3*ps+5)
		s.proxy.Corrupt(func(idx, attempt int) bool { return true })
		_, err := s.up.Upload(context.Background(), s.src, s.target, transfer.Params{})
		if err == nil {
			t.Fatal("upload whose every part was damaged reported success")
		}
		checkErr(t, err)
		var te *transfer.Error
		if !errors.As(err, &te) || (te.Part == 0 && !h.Sequential) {
			t.Errorf("error %q does not name the part", err)
		}
	})
}

func (h Harness) skip(t *testing.T) {
	t.Helper()
	name := t.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if why, ok := h.Skip[name]; ok {
		t.Skip("server cannot run this case: " + why)
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, secret := range []string{"Signature", "sig=", "X-Amz-Credential", "upload_id=", "ferry-gen"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error leaks %q: %s", secret, msg)
		}
	}
	var te *transfer.Error
	if !errors.As(err, &te) || te.Provider == "" || te.Step == "" {
		t.Errorf("error %q does not say which provider and step", msg)
	}
}

// plainSource hides FileSource's OpenRange.
type plainSource struct{ f *transfer.FileSource }

func (p plainSource) ReadAt(b []byte, off int64) (int, error) { return p.f.ReadAt(b, off) }
func (p plainSource) Size() int64                             { return p.f.Size() }

type setup struct {
	up     transfer.Uploader
	src    *transfer.FileSource
	sum    string
	key    string
	target transfer.Target
	proxy  *Proxy
	h      Harness
}

func newSetup(t *testing.T, h Harness, size int64) *setup {
	t.Helper()
	return newSetupWith(t, h, size, func(*transfer.Options) {})
}

// newSetupWith is newSetup with the uploader's options adjusted by edit.
func newSetupWith(t *testing.T, h Harness, size int64, edit func(*transfer.Options)) *setup {
	t.Helper()
	proxy := NewProxy(t)
	o := transfer.Options{PartSize: h.PartSize, Parallelism: 4, MaxAttempts: 4,
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	edit(&o)
	up := h.New(o)
	path, sum := WriteRandomFile(t, size)
	src, err := transfer.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	key := fmt.Sprintf("ferry/%s/%s", strings.ReplaceAll(t.Name(), "/", "-"), randName())
	return &setup{up: up, src: src, sum: sum, key: key, target: h.NewTarget(t, key, size, proxy.Via), proxy: proxy, h: h}
}

// checkStored reads the object back and compares it with the source, and the
// reported SHA-256 with the real one.
func (s *setup) checkStored(t *testing.T, res transfer.Result) {
	t.Helper()
	if res.SHA256 != s.sum {
		t.Errorf("Result.SHA256 = %s, file's is %s", res.SHA256, s.sum)
	}
	if res.Size != s.src.Size() {
		t.Errorf("Result.Size = %d, want %d", res.Size, s.src.Size())
	}
	r, ok := s.h.Open(t, s.key)
	if !ok {
		t.Fatalf("no object visible under %s after a successful upload", s.key)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("read back %s: %v", s.key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.sum || n != s.src.Size() {
		t.Errorf("stored object: %d bytes sha256 %s, sent %d bytes sha256 %s", n, got, s.src.Size(), s.sum)
	}
}

type progressLog struct {
	mu   sync.Mutex
	last int64
	bad  string
	n    int
}

func (p *progressLog) add(sent int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sent < p.last && p.bad == "" {
		p.bad = fmt.Sprintf("progress went back from %d to %d", p.last, sent)
	}
	p.last = sent
	p.n++
}

func (p *progressLog) check(t *testing.T, size int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bad != "" {
		t.Error(p.bad)
	}
	if p.last != size {
		t.Errorf("last progress %d, file has %d bytes", p.last, size)
	}
}

// WriteRandomFile writes size pseudo-random bytes to a temporary file and
// returns its path and hex SHA-256, streaming (1 GiB needs no 1 GiB buffer).
func WriteRandomFile(t testing.TB, size int64) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16), 7})
	if _, err := io.CopyN(w, rng, size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

// LongName returns prefix followed by "/"-separated segments of ASCII
// letters (none over 200 bytes, below every provider's and file system's
// segment limit) so that the whole name is exactly n bytes.
func LongName(prefix string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for b.Len() < n {
		seg := min(200, n-b.Len())
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "/") {
			if seg < 2 {
				b.WriteString("z")
				continue
			}
			b.WriteByte('/')
			seg--
		}
		b.WriteString(strings.Repeat(string(rune('a'+b.Len()%26)), seg))
	}
	return b.String()
}

func randName() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}
