package ingest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func fileMeta(data []byte, declare bool) map[string]string {
	m := map[string]string{"package_token": testToken, "filename": "clip.mov", "relativePath": "day1/clip.mov", "filetype": "video/quicktime"}
	if declare {
		m["sha256"] = sha(data)
	}
	return m
}

func TestSingleUploadResumesAcrossPatchesViaHead(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 3<<20+123)
	url := rg.create(len(data), fileMeta(data, true), nil)

	cuts := []int{0, 1 << 20, 2<<20 + 7, len(data)}
	for i := 0; i+1 < len(cuts); i++ {
		off := rg.offset(url) // a client resumes from what the server says it holds
		if off != cuts[i] {
			t.Fatalf("HEAD offset = %d, want %d", off, cuts[i])
		}
		res := rg.patch(url, off, data[off:cuts[i+1]])
		if res.Status != http.StatusNoContent {
			t.Fatalf("PATCH %d: status %d: %s", i, res.Status, res.Body)
		}
	}
	cs := rg.gate.completions()
	if len(cs) != 1 {
		t.Fatalf("Complete called %d times, want 1", len(cs))
	}
	if got := hex.EncodeToString(cs[0].Sum.SHA256); got != sha(data) {
		t.Errorf("Complete sha256 = %s, want %s", got, sha(data))
	}
	if _, ok := cs[0].U.Metadata["package_token"]; ok {
		t.Errorf("Complete metadata carries package_token: the token must not be stored")
	}
	if cs[0].U.Metadata["relativePath"] != "day1/clip.mov" || cs[0].U.ID != idOf(url) {
		t.Errorf("Complete upload = %+v", cs[0].U)
	}
	if !bytes.Equal(rg.readBack(idOf(url)), data) {
		t.Errorf("bytes read back differ from bytes sent")
	}
	if g := gapHashed(rg.ing); g != 0 {
		t.Errorf("re-hashed %d bytes from disk; resumed uploads must not be re-read", g)
	}
	assertTokenNotOnDisk(t, rg.dir)
}

func assertTokenNotOnDisk(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".bin") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte(testToken)) {
			t.Errorf("%s holds the upload token in clear", e.Name())
		}
	}
}

func TestCreationWithUploadCompletesInOneRequest(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 200_000)
	res := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, false), HasBody: true, Body: data,
		Header: map[string]string{"Upload-Length": strconv.Itoa(len(data))}})
	if res.Status != http.StatusCreated || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("status %d offset %q: %s", res.Status, res.Header.Get("Upload-Offset"), res.Body)
	}
	cs := rg.gate.completions()
	if len(cs) != 1 || hex.EncodeToString(cs[0].Sum.SHA256) != sha(data) {
		t.Fatalf("completions = %+v, want one with the data's sha256 (hashed although none was declared)", cs)
	}
}

func TestDeferredLengthUploadCompletesWhenLengthDeclared(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 100_000)
	res := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, true), Header: map[string]string{"Upload-Defer-Length": "1"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	url := res.Header.Get("Location")
	if r := rg.patch(url, 0, data[:40_000]); r.Status != http.StatusNoContent {
		t.Fatalf("PATCH 1: %d %s", r.Status, r.Body)
	}
	r := rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: data[40_000:],
		Header: map[string]string{"Upload-Offset": "40000", "Upload-Length": strconv.Itoa(len(data))}})
	if r.Status != http.StatusNoContent {
		t.Fatalf("PATCH 2: %d %s", r.Status, r.Body)
	}
	if adm := rg.gate.admitted; len(adm) != 1 || adm[0].Size != -1 {
		t.Errorf("Admit saw %+v, want Size -1 for a deferred length", adm)
	}
	if cs := rg.gate.completions(); len(cs) != 1 || cs[0].U.Size != int64(len(data)) {
		t.Fatalf("completions = %+v", cs)
	}
}

// parallelUpload sends data as n partial uploads then a final, like tus-js-client parallelUploads.
func (rg *rig) parallelUpload(data []byte, n int, partMeta func(i int, part []byte) map[string]string) (final *tusResp, partURLs []string) {
	rg.t.Helper()
	size := len(data) / n
	errc := make(chan error, n)
	partURLs = make([]string, n)
	for i := 0; i < n; i++ {
		lo, hi := i*size, (i+1)*size
		if i == n-1 {
			hi = len(data)
		}
		part := data[lo:hi]
		partURLs[i] = rg.create(len(part), partMeta(i, part), map[string]string{"Upload-Concat": "partial"})
		go func(url string) {
			res := rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: part,
				Header: map[string]string{"Upload-Offset": "0"}})
			if res.Status != http.StatusNoContent {
				errc <- fmt.Errorf("partial PATCH: %d %s", res.Status, res.Body)
				return
			}
			errc <- nil
		}(partURLs[i])
	}
	var perr error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			perr = err
		}
	}
	if perr != nil {
		return &tusResp{Status: StatusChecksumMismatch, Body: []byte(perr.Error())}, partURLs
	}
	final = rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, true),
		Header: map[string]string{"Upload-Concat": "final;" + strings.Join(partURLs, " ")}})
	return final, partURLs
}

func partialMeta(i int, part []byte) map[string]string {
	return map[string]string{"package_token": testToken, "partial_index": strconv.Itoa(i), "sha256": sha(part)}
}

func TestParallelPartialsConcatenateWithoutCopy(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 8<<20+5)
	final, parts := rg.parallelUpload(data, 4, partialMeta)
	if final.Status != http.StatusCreated {
		t.Fatalf("final: %d %s", final.Status, final.Body)
	}
	fid := idOf(final.Header.Get("Location"))
	if off := rg.offset(final.Header.Get("Location")); off != len(data) {
		t.Errorf("final HEAD offset = %d, want %d", off, len(data))
	}

	cs := rg.gate.completions()
	if len(cs) != 1 {
		t.Fatalf("Complete called %d times, want once (for the final only, never partials)", len(cs))
	}
	if !cs[0].U.IsFinal || cs[0].U.ID != fid || len(cs[0].U.PartialIDs) != 4 || cs[0].Sum.SHA256 != nil {
		t.Errorf("completion = %+v, want the final with 4 partials and no recomputed sha256", cs[0])
	}
	for i, p := range cs[0].U.PartialIDs {
		if p != idOf(parts[i]) {
			t.Errorf("partial %d = %s, want %s (order must be kept)", i, p, idOf(parts[i]))
		}
	}
	if !bytes.Equal(rg.readBack(fid), data) {
		t.Fatalf("final read back differs from the bytes sent")
	}

	// No copy: the directory holds the data once, and no file is as big as the whole.
	var total int64
	ents, _ := os.ReadDir(rg.dir)
	for _, e := range ents {
		fi, _ := e.Info()
		total += fi.Size()
		if fi.Size() >= int64(len(data)) {
			t.Errorf("%s is %d bytes: the final upload was copied", e.Name(), fi.Size())
		}
	}
	if total > int64(len(data))+64<<10 {
		t.Errorf("directory holds %d bytes for a %d-byte upload: the data is stored twice", total, len(data))
	}

	// Terminating a partial of a live final is refused; terminating the final takes the partials.
	if r := rg.do(tusReq{Method: "DELETE", URL: parts[0], Token: testToken}); r.Status != http.StatusConflict {
		t.Errorf("DELETE partial of a final: %d, want 409", r.Status)
	}
	if r := rg.do(tusReq{Method: "DELETE", URL: final.Header.Get("Location"), Token: testToken}); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE final: %d %s", r.Status, r.Body)
	}
	if ents, _ := os.ReadDir(rg.dir); len(ents) != 0 {
		t.Errorf("after terminating the final, %d files remain", len(ents))
	}
}

func TestFinalCannotReuseOrStealPartials(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 64<<10)
	final, parts := rg.parallelUpload(data, 2, partialMeta)
	if final.Status != http.StatusCreated {
		t.Fatalf("final: %d %s", final.Status, final.Body)
	}
	again := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, false),
		Header: map[string]string{"Upload-Concat": "final;" + strings.Join(parts, " ")}})
	if again.Status != http.StatusConflict || again.errCode() != "partial_in_use" {
		t.Errorf("second final over the same partials: %d %s, want 409 partial_in_use", again.Status, again.Body)
	}
	p := rg.create(10, map[string]string{"package_token": testToken}, map[string]string{"Upload-Concat": "partial"})
	rg.patch(p, 0, make([]byte, 10))
	steal := rg.do(tusReq{Method: "POST", Token: "someone-else", Meta: map[string]string{"package_token": "someone-else"},
		Header: map[string]string{"Upload-Concat": "final;" + p}})
	if steal.Status != http.StatusForbidden {
		t.Errorf("final over another token's partial: %d %s, want 403", steal.Status, steal.Body)
	}
}

func TestDeclaredSHA256IsVerified(t *testing.T) {
	wrong := strings.Repeat("ab", 32)
	cases := []struct {
		name     string
		parallel bool
		declare  func(data []byte) string // "" declares nothing
		wantOK   bool
	}{
		{"single right", false, sha, true},
		{"single wrong", false, func([]byte) string { return wrong }, false},
		{"single undeclared", false, func([]byte) string { return "" }, true},
		{"partial right", true, sha, true},
		{"partial wrong", true, func([]byte) string { return wrong }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t)
			data := randBytes(t, 300_000)
			var status int
			var body []byte
			var url string
			if tc.parallel {
				meta := func(i int, part []byte) map[string]string {
					m := map[string]string{"package_token": testToken, "partial_index": strconv.Itoa(i), "sha256": sha(part)}
					if i == 1 {
						m["sha256"] = tc.declare(part)
					}
					return m
				}
				n := len(data) / 2
				url = rg.create(n, meta(1, data[n:2*n]), map[string]string{"Upload-Concat": "partial"})
				res := rg.patch(url, 0, data[n:2*n])
				status, body = res.Status, res.Body
			} else {
				meta := fileMeta(data, false)
				if d := tc.declare(data); d != "" {
					meta["sha256"] = d
				}
				url = rg.create(len(data), meta, nil)
				res := rg.patch(url, 0, data)
				status, body = res.Status, res.Body
			}
			fs := rg.gate.failures()
			if tc.wantOK {
				if status != http.StatusNoContent || len(fs) != 0 {
					t.Fatalf("status %d failures %v: %s", status, fs, body)
				}
				return
			}
			r := tusResp{Status: status, Body: body}
			if status != StatusChecksumMismatch || r.errCode() != "checksum_mismatch" {
				t.Errorf("status %d %s, want 460 checksum_mismatch", status, body)
			}
			if len(fs) != 1 || !strings.Contains(fs[0].Reason, wrong) || fs[0].U.IsPartial != tc.parallel {
				t.Errorf("Gate.Failed calls = %+v", fs)
			}
			if len(rg.gate.completions()) != 0 {
				t.Errorf("a mismatching upload was completed")
			}
			if h := rg.do(tusReq{Method: "HEAD", URL: url, Token: testToken}); h.Status != http.StatusNotFound {
				t.Errorf("HEAD after mismatch: %d, want 404 (bad bytes dropped)", h.Status)
			}
		})
	}
}

func TestGateRejectionAnswersBeforeAnyByteIsStored(t *testing.T) {
	rg := newRig(t)
	rg.gate.reject = &Rejection{Status: http.StatusUnprocessableEntity, Code: "invalid_path", Message: "the path ../x leaves the package"}
	data := randBytes(t, 50_000)
	res := rg.do(tusReq{Method: "POST", Token: testToken, Meta: fileMeta(data, false), HasBody: true, Body: data,
		Header: map[string]string{"Upload-Length": strconv.Itoa(len(data))}})
	if res.Status != http.StatusUnprocessableEntity || res.errCode() != "invalid_path" ||
		!strings.Contains(string(res.Body), "leaves the package") || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("got %d %q %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	if ents, _ := os.ReadDir(rg.dir); len(ents) != 0 {
		t.Errorf("%d files stored for a rejected upload", len(ents))
	}
	if len(rg.gate.admitted) != 1 || rg.gate.admitted[0].Metadata["package_token"] != testToken {
		t.Errorf("Admit saw %+v", rg.gate.admitted)
	}
}

func TestRequestsWithoutTheUploadTokenAreRefused(t *testing.T) {
	rg := newRig(t)
	url := rg.create(100, fileMeta(nil, false), nil)
	rg.patch(url, 0, make([]byte, 10))
	cases := []struct {
		name   string
		q      tusReq
		status int
		code   string
	}{
		{"create without token", tusReq{Method: "POST", Header: map[string]string{"Upload-Length": "5"}}, 401, "unauthorized"},
		{"create with header and metadata disagreeing", tusReq{Method: "POST", Token: "x", Meta: map[string]string{"package_token": "y"}, Header: map[string]string{"Upload-Length": "5"}}, 401, "unauthorized"},
		{"create with malformed sha256", tusReq{Method: "POST", Token: testToken, Meta: map[string]string{"sha256": "ABC"}, Header: map[string]string{"Upload-Length": "5"}}, 400, "invalid_sha256"},
		{"patch without token", tusReq{Method: "PATCH", URL: url, HasBody: true, Body: []byte("abc"), Header: map[string]string{"Upload-Offset": "10"}}, 401, "unauthorized"},
		{"patch with wrong token", tusReq{Method: "PATCH", URL: url, Token: "nope", HasBody: true, Body: []byte("abc"), Header: map[string]string{"Upload-Offset": "10"}}, 403, "forbidden"},
		{"patch via method override with wrong token", tusReq{Method: "POST", URL: url, Token: "nope", HasBody: true, Body: []byte("abc"), Header: map[string]string{"Upload-Offset": "10", "X-HTTP-Method-Override": "PATCH"}}, 403, "forbidden"},
		{"head with wrong token", tusReq{Method: "HEAD", URL: url, Token: "nope"}, 403, ""},
		{"delete with wrong token", tusReq{Method: "DELETE", URL: url, Token: "nope"}, 403, "forbidden"},
		{"tusd error becomes JSON", tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: []byte("abc"), Header: map[string]string{"Upload-Offset": "3"}}, 409, "mismatched_offset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := rg.do(tc.q)
			if res.Status != tc.status || (tc.code != "" && res.errCode() != tc.code) {
				t.Errorf("got %d %s, want %d %s", res.Status, res.Body, tc.status, tc.code)
			}
		})
	}
	if off := rg.offset(url); off != 10 {
		t.Errorf("offset = %d after refused requests, want 10 (nothing appended)", off)
	}
}

func TestReconcileCompletesFinishedButUnacknowledgedUploads(t *testing.T) {
	rg := newRig(t)
	rg.gate.setCompleteErr(errors.New("database is down"))
	data := randBytes(t, 120_000)
	url := rg.create(len(data), fileMeta(data, true), nil)
	res := rg.patch(url, 0, data)
	if res.Status != http.StatusInternalServerError || res.errCode() != "completion_failed" {
		t.Fatalf("PATCH with failing Complete: %d %s", res.Status, res.Body)
	}
	parallel, _ := rg.parallelUpload(data, 3, partialMeta)
	if parallel.Status != http.StatusInternalServerError {
		t.Fatalf("final with failing Complete: %d %s", parallel.Status, parallel.Body)
	}

	// Restart: a new engine over the same directory, with the database back.
	gate := &recGate{}
	rg2 := newRigIn(t, rg.dir, gate)
	if err := rg2.ing.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	cs := gate.completions()
	if len(cs) != 2 {
		t.Fatalf("Reconcile completed %d uploads, want 2 (the single and the final, no partial)", len(cs))
	}
	for _, c := range cs {
		switch {
		case c.U.ID == idOf(url):
			if hex.EncodeToString(c.Sum.SHA256) != sha(data) || c.U.Metadata["relativePath"] != "day1/clip.mov" {
				t.Errorf("reconciled single = %+v", c)
			}
		case c.U.IsFinal:
			if c.Sum.SHA256 != nil {
				t.Errorf("reconciled final carries a sha256")
			}
		default:
			t.Errorf("unexpected completion %+v", c)
		}
	}
	if err := rg2.ing.Reconcile(context.Background()); err != nil || len(gate.completions()) != 2 {
		t.Errorf("second Reconcile: err %v, completions %d: acknowledged uploads must not be completed again", err, len(gate.completions()))
	}
	// Died after Complete but before the acknowledgement marker: completed again (Complete is idempotent).
	if err := os.Remove(filepath.Join(rg.dir, idOf(url)+".ack")); err != nil {
		t.Fatal(err)
	}
	if err := rg2.ing.Reconcile(context.Background()); err != nil || len(gate.completions()) != 3 {
		t.Errorf("Reconcile after a lost marker: err %v, completions %d, want 3", err, len(gate.completions()))
	}
}

func TestCleanupRemovesOnlyAbandonedUploads(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 40_000)
	unfinished := rg.create(len(data), fileMeta(data, false), nil)
	rg.patch(unfinished, 0, data[:1000])
	finished := rg.create(len(data), fileMeta(data, false), nil)
	rg.patch(finished, 0, data)
	final, parts := rg.parallelUpload(data, 2, partialMeta)
	orphan := rg.create(10, map[string]string{"package_token": testToken}, map[string]string{"Upload-Concat": "partial"})
	rg.patch(orphan, 0, make([]byte, 10))
	recent := rg.create(len(data), fileMeta(data, false), nil)

	old := time.Now().Add(-3 * time.Hour)
	ents, _ := os.ReadDir(rg.dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), idOf(recent)) {
			_ = os.Chtimes(filepath.Join(rg.dir, e.Name()), old, old)
		}
	}
	n, err := rg.ing.Cleanup(context.Background(), time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Cleanup = %d, %v; want 2 (the unfinished upload and the orphan partial)", n, err)
	}
	cases := []struct {
		name, url string
		kept      bool
	}{
		{"unfinished", unfinished, false},
		{"orphan partial", orphan, false},
		{"finished", finished, true},
		{"final", final.Header.Get("Location"), true},
		{"partial of a final", parts[0], true},
		{"recent unfinished", recent, true},
	}
	for _, tc := range cases {
		res := rg.do(tusReq{Method: "HEAD", URL: tc.url, Token: testToken})
		if kept := res.Status == http.StatusOK; kept != tc.kept {
			t.Errorf("%s: kept = %v, want %v", tc.name, kept, tc.kept)
		}
	}
	if !bytes.Equal(rg.readBack(idOf(final.Header.Get("Location"))), data) {
		t.Errorf("final no longer reads back after Cleanup")
	}
	// The gate hears of the orphan partial (to give its share of the
	// package back), and of nothing else.
	rg.gate.mu.Lock()
	removed := rg.gate.removed
	rg.gate.mu.Unlock()
	if len(removed) != 1 || removed[0].ID != idOf(orphan) || !removed[0].IsPartial || removed[0].Size != 10 {
		t.Errorf("gate told of removals %+v, want the orphan partial %s of 10 bytes only", removed, idOf(orphan))
	}
}

func TestDeleteRemovesFinalWithItsPartials(t *testing.T) {
	rg := newRig(t)
	data := randBytes(t, 30_000)
	final, _ := rg.parallelUpload(data, 3, partialMeta)
	fid := idOf(final.Header.Get("Location"))
	if err := rg.ing.Delete(context.Background(), fid); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.ing.Open(context.Background(), fid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Delete: %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(rg.dir); len(ents) != 0 {
		t.Errorf("%d files left after Delete", len(ents))
	}
}

// recordingHandler keeps the messages of warning and error records.
type recordingHandler struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (h recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }

// tusd sets read deadlines through http.ResponseController; a wrapping ResponseWriter without
// Unwrap makes that fail (tusd then logs NetworkControlError and loses its dead-client timeout).
func TestResponseWriterWrappingKeepsTusdDeadlines(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	rg := newRig(t, func(c *Config) { c.Logger = slog.New(recordingHandler{&mu, &msgs}) })
	data := randBytes(t, 10_000)
	url := rg.create(len(data), fileMeta(data, false), nil)
	if r := rg.patch(url, 0, data); r.Status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	rg.do(tusReq{Method: "PATCH", URL: url, Token: testToken, HasBody: true, Body: []byte("x"), Header: map[string]string{"Upload-Offset": "1"}}) // an error path too
	mu.Lock()
	defer mu.Unlock()
	for _, m := range msgs {
		if strings.Contains(m, "Network") {
			t.Errorf("tusd logged %q: the response writer chain hides the connection", m)
		}
	}
}
