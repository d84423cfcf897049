package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/pathsafe"
	"github.com/ferryhq/ferry/internal/reqid"
	"github.com/ferryhq/ferry/internal/send/tus"
)

// A sender over a long link pays a round trip for every request it must
// wait for. Two of them carry no bytes and can ride on calls it makes
// anyway: the creation of its first uploads on the package call, and the
// concatenation of its last split file on the finalize. Both run here as tus
// requests to the upload handler, in-process, so every rule of a tus
// creation (token, path, extension, size, space, supersession, hooks)
// applies exactly as if the sender had sent them itself; only the round
// trips are saved. (tus 1.0 has no batch creation, and its concatenation-
// unfinished extension would need the store to join partials still being
// written; this keeps tus as it is.)

// maxBatchUploads bounds the uploads one package call creates (a sender's
// first wave: one per stream) and the concatenations one finalize runs.
const maxBatchUploads = 64

// UploadSpec is one tus upload the package call creates for the sender.
type UploadSpec struct {
	Length   int64             `json:"length" doc:"Upload-Length: the upload's size in bytes"`
	Metadata map[string]string `json:"metadata,omitempty" doc:"Upload-Metadata, as plain key/value pairs (the upload token goes without saying)"`
	Partial  bool              `json:"partial,omitempty" doc:"Upload-Concat: partial"`
}

// CreatedUpload is one UploadSpec's outcome: its tus URL, or the refusal a
// tus creation would have answered (the package exists either way).
type CreatedUpload struct {
	URL   string       `json:"url,omitempty" doc:"The upload's URL (tus Location)"`
	Error *UploadError `json:"error,omitempty"`
}

// UploadError is a refused creation or concatenation: the tus answer's status and error body.
type UploadError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ConcatSpec is one concatenation (tus Upload-Concat: final) the finalize
// runs before it closes the package.
type ConcatSpec struct {
	Partials []string          `json:"partials" doc:"The partial uploads' URLs, in order"`
	Metadata map[string]string `json:"metadata,omitempty" doc:"Upload-Metadata of the final upload"`
}

// finalizeRequest is the uploader finalize's optional body.
type finalizeRequest struct {
	Concat []ConcatSpec `json:"concat,omitempty" doc:"Concatenations to run first, as tus Upload-Concat: final requests would (at most 64). A partial whose last bytes are still arriving is waited for (up to 30 s); one whose file the package already holds complete is skipped, so a retried finalize is safe."`
}

func (finalizeRequest) optionalBody() {}

// checkSpecs refuses malformed specs before anything is created.
func checkSpecs(ups []UploadSpec) error {
	if len(ups) > maxBatchUploads {
		return errorf(http.StatusBadRequest, "too_many_uploads", "A package call creates at most %d uploads; create the others with tus.", maxBatchUploads)
	}
	for i, u := range ups {
		if u.Length < 0 {
			return errorf(http.StatusBadRequest, "invalid_upload", "uploads[%d].length must not be negative.", i)
		}
		if err := checkMetadata(u.Metadata); err != nil {
			return errorf(http.StatusBadRequest, "invalid_metadata", "uploads[%d]: %s", i, err)
		}
	}
	return nil
}

func checkConcats(cs []ConcatSpec) error {
	if len(cs) > maxBatchUploads {
		return errorf(http.StatusBadRequest, "too_many_uploads", "A finalize runs at most %d concatenations.", maxBatchUploads)
	}
	for i, c := range cs {
		if len(c.Partials) == 0 {
			return errorf(http.StatusBadRequest, "invalid_concat", "concat[%d].partials must list the partial uploads.", i)
		}
		for _, p := range c.Partials {
			if p == "" || strings.ContainsAny(p, " \t\r\n") {
				return errorf(http.StatusBadRequest, "invalid_concat", "concat[%d].partials holds %q, which is not an upload URL.", i, p)
			}
		}
		if err := checkMetadata(c.Metadata); err != nil {
			return errorf(http.StatusBadRequest, "invalid_metadata", "concat[%d]: %s", i, err)
		}
	}
	return nil
}

// checkMetadata refuses keys Upload-Metadata cannot carry (tus: no spaces or commas).
func checkMetadata(m map[string]string) error {
	for k := range m {
		if k == "" || len(k) > 128 || strings.ContainsAny(k, " ,\t\r\n") {
			return fmt.Errorf("metadata key %q cannot be an Upload-Metadata key", k)
		}
	}
	return nil
}

// createUploads runs one tus creation per spec with the package's upload token.
func (s *Server) createUploads(r *http.Request, token string, ups []UploadSpec) []CreatedUpload {
	out := make([]CreatedUpload, len(ups))
	// At once, as the sender's own creations would have arrived: each waits
	// on its own files and the database, not on the others.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, u := range ups {
		h := http.Header{"Upload-Length": {strconv.FormatInt(u.Length, 10)}}
		if u.Partial {
			h.Set("Upload-Concat", "partial")
		}
		if m := tus.Metadata(u.Metadata).Encode(); m != "" {
			h.Set("Upload-Metadata", m)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			loc, uerr := s.tusCreate(r, token, h)
			out[i] = CreatedUpload{URL: loc, Error: uerr}
		})
	}
	wg.Wait()
	return out
}

// concatenate runs the concatenations whose files pkg does not hold complete yet.
func (s *Server) concatenate(r *http.Request, token string, pkg Package, cs []ConcatSpec) error {
	// Compared as the package compares paths (the validator's form and key),
	// not as the sender spelled them.
	complete := map[string]bool{}
	for _, f := range pkg.Files {
		if f.State == FileComplete {
			complete[pathsafe.Key(f.Path)] = true
		}
	}
	for _, c := range cs {
		if p, err := pathsafe.Clean(c.Metadata["relativePath"], c.Metadata["filename"]); err == nil && complete[p.Key()] {
			continue // joined by an earlier try of this finalize
		}
		h := http.Header{"Upload-Concat": {"final;" + strings.Join(c.Partials, " ")}}
		if m := tus.Metadata(c.Metadata).Encode(); m != "" {
			h.Set("Upload-Metadata", m)
		}
		if err := s.concatWhenReady(r, token, h); err != nil {
			return err
		}
	}
	return nil
}

// concatWait bounds how long a finalize waits for partials still arriving,
// and maxConcatWaiters how many finalizes wait at once: anyone with an
// upload token can ask for a wait, so waiting is bounded in time, in number
// (past the bound a finalize answers at once, as a tus concatenation would),
// and its polls back off (to 10 ms: the sender waits for this answer).
const (
	concatWait       = 30 * time.Second
	maxConcatWaiters = 16
)

var concatWaiters = make(chan struct{}, maxConcatWaiters)

// concatWhenReady runs one concatenation, waiting while a partial's last
// bytes or its digest are still arriving: a sender may finalize as soon as
// it has written its last part, before that part's answer reaches it (tus's
// concatenation-unfinished, here on the finalize only). A partial refused
// for any other reason (gone after a mismatch, taken, too large) answers at
// once, and so does one still unfinished after concatWait; the sender then
// finalizes again once its part is in.
func (s *Server) concatWhenReady(r *http.Request, token string, h http.Header) error {
	deadline := time.Now().Add(concatWait)
	waiting := false
	defer func() {
		if waiting {
			<-concatWaiters
		}
	}()
	pause := 2 * time.Millisecond
	for {
		_, uerr := s.tusCreate(r, token, h)
		if uerr == nil {
			return nil
		}
		arriving := uerr.Code == "upload_not_finished" || uerr.Code == "partial_unverified"
		if !waiting && arriving {
			select {
			case concatWaiters <- struct{}{}:
				waiting = true
			default: // enough finalizes wait already
			}
		}
		if !arriving || !waiting || time.Now().After(deadline) {
			return errorf(uerr.Status, uerr.Code, "%s", uerr.Message)
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Millisecond) // the sender waits for this answer: poll often, but not in a loop
	}
}

// tusCreate sends one tus POST to the upload handler in-process, as the
// client of r (its context, request id, TLS state and the forwarded
// headers the middleware kept, so the Location is the one the client would
// have been given). It answers the Location, or the refusal.
func (s *Server) tusCreate(r *http.Request, token string, h http.Header) (string, *UploadError) {
	req := r.Clone(r.Context())
	req.Method = http.MethodPost
	req.URL = &url.URL{Path: uploadsPath}
	req.RequestURI = uploadsPath
	req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
	req.Header = http.Header{}
	for _, k := range []string{"X-Forwarded-Proto", "X-Forwarded-Host", reqid.Header} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	w := localWriter{httptest.NewRecorder()}
	s.uploads.ServeHTTP(w, req)
	if w.Code == http.StatusCreated {
		if loc := w.Header().Get("Location"); loc != "" {
			return loc, nil
		}
	}
	ue := &UploadError{Status: w.Code, Code: "upload_refused", Message: strings.TrimSpace(w.Body.String())}
	var j errorBody
	if json.Unmarshal(w.Body.Bytes(), &j) == nil && j.Error.Code != "" {
		ue.Code, ue.Message = j.Error.Code, j.Error.Message
	}
	if ue.Status < 400 { // 201 without a Location: not a tus answer
		ue.Status, ue.Code = http.StatusInternalServerError, "internal"
	}
	if ue.Message == "" {
		ue.Message = http.StatusText(ue.Status)
	}
	return "", ue
}

// localWriter collects an in-process answer (httptest's recorder is a plain
// in-memory ResponseWriter, fit for this outside tests too). Its no-op
// deadline methods are what http.ResponseController looks for: tusd sets
// read and write deadlines on every request and would log each refusal.
type localWriter struct{ *httptest.ResponseRecorder }

func (localWriter) SetReadDeadline(time.Time) error  { return nil }
func (localWriter) SetWriteDeadline(time.Time) error { return nil }
