package dataplane

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

const gcsChunk = 256 << 10 // GCS: every chunk but the last is a multiple of 256 KiB

// gcsStartURL is the signed URL that starts a resumable upload of key (POST x-goog-resumable: start).
func (p *Plane) gcsStartURL(st Storage, key string) string {
	date, exp := p.now().UTC().Format(amzDateFormat), strconv.Itoa(int(p.ttl/time.Second))
	sig := hex.EncodeToString(p.sign("gcs-start", st.ID, key, date, exp))
	return p.baseURL() + "/_storage/gcs/" + st.ID + "/" + httpbinding.EscapePath(key, false) +
		"?X-Goog-Date=" + date + "&X-Goog-Expires=" + exp + "&X-Goog-Signature=" + sig
}

func (p *Plane) gcsSessionURL(sid, session string) string {
	date, exp := p.now().UTC().Format(amzDateFormat), strconv.Itoa(int(p.ttl/time.Second))
	sig := hex.EncodeToString(p.sign("gcs-session", sid, session, date, exp))
	return p.baseURL() + "/_storage/gcs-upload/" + sid + "/" + session +
		"?X-Goog-Date=" + date + "&X-Goog-Expires=" + exp + "&X-Goog-Signature=" + sig
}

// checkGoogSig checks a GCS-style signed URL made by gcsStartURL or gcsSessionURL.
func (p *Plane) checkGoogSig(q url.Values, purpose, sid, subject string) (int, string, string) {
	date, exp, sig := q.Get("X-Goog-Date"), q.Get("X-Goog-Expires"), q.Get("X-Goog-Signature")
	if sig == "" || date == "" || exp == "" {
		return http.StatusForbidden, "AccessDenied", "Anonymous caller does not have storage.objects.create access."
	}
	got, err := hex.DecodeString(sig)
	if err != nil || subtle.ConstantTimeCompare(got, p.sign(purpose, sid, subject, date, exp)) != 1 {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	at, err1 := time.Parse(amzDateFormat, date)
	secs, err2 := strconv.Atoi(exp)
	if err1 != nil || err2 != nil || p.now().After(at.Add(time.Duration(secs)*time.Second)) {
		return http.StatusForbidden, "ExpiredToken", "Request has expired"
	}
	return 0, "", ""
}

// writeGCSError answers in the JSON API's error shape (what resumable session endpoints return).
func writeGCSError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": status, "message": msg,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": msg}},
	}})
}

type gcsMeta struct {
	Key     string    `json:"key"`
	Total   int64     `json:"total"` // -1 while unknown
	Done    bool      `json:"done"`
	Created time.Time `json:"created"`
}

func (p *Plane) serveGCSStart(w http.ResponseWriter, r *http.Request, sid, key string) {
	if p.shouldFail() {
		w.Header().Set("Connection", "close")
		writeGCSError(w, http.StatusServiceUnavailable, "backendError", "Backend Error")
		return
	}
	st, ok := p.storage(sid)
	if !ok || st.Dir == "" {
		writeGCSError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	if r.Method != http.MethodPost {
		// The same object URL space serves the XML API's other object calls (composite uploads).
		p.serveGCSObject(w, r, st, key)
		return
	}
	if status, reason, msg := p.checkGoogSig(r.URL.Query(), "gcs-start", sid, key); status != 0 {
		writeGCSError(w, status, reason, msg)
		return
	}
	if err := ValidateKey(key); err != nil {
		writeGCSError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if r.Method != http.MethodPost || !strings.EqualFold(r.Header.Get("x-goog-resumable"), "start") {
		writeGCSError(w, http.StatusBadRequest, "invalid", "this URL starts resumable uploads only: POST with x-goog-resumable: start")
		return
	}
	m := gcsMeta{Key: key, Total: -1, Created: p.now().UTC()}
	if v := r.Header.Get("X-Upload-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeGCSError(w, http.StatusBadRequest, "invalid", "X-Upload-Content-Length must be a non-negative integer")
			return
		}
		m.Total = n
	}
	id := newID()
	dir := stage(st, "gcs", id)
	if err := os.MkdirAll(dir, 0o755); err != nil || writeGCSMeta(dir, m) != nil {
		writeGCSError(w, http.StatusInternalServerError, "backendError", "creating the upload session failed")
		return
	}
	if f, err := os.Create(filepath.Join(dir, "data")); err == nil {
		f.Close()
	}
	w.Header().Set("Location", p.gcsSessionURL(sid, id))
	w.Header().Set("X-GUploader-UploadID", id)
	w.WriteHeader(http.StatusCreated)
}

func writeGCSMeta(dir string, m gcsMeta) error {
	b, _ := json.Marshal(m)
	tmp := filepath.Join(dir, "meta.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "meta.json"))
}

func readGCSMeta(dir string) (gcsMeta, error) {
	var m gcsMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// contentRange is a parsed "bytes a-b/total", "bytes */total" or with total "*".
type contentRange struct {
	first, last int64 // first < 0: a status query (no bytes)
	total       int64 // < 0: unknown
}

func parseContentRange(h string) (contentRange, error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 {
		return contentRange{}, fmt.Errorf("Content-Range %q: want bytes a-b/total", h)
	}
	cr := contentRange{first: -1, last: -1, total: -1}
	if tot != "*" {
		n, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || n < 0 {
			return contentRange{}, fmt.Errorf("Content-Range %q: bad total", h)
		}
		cr.total = n
	}
	if rng == "*" {
		return cr, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first || (cr.total >= 0 && last >= cr.total) {
		return contentRange{}, fmt.Errorf("Content-Range %q: bad byte range", h)
	}
	cr.first, cr.last = first, last
	return cr, nil
}

// sessionLocks serialises requests per GCS session (and per Azure blob): appends must not interleave.
var sessionLocks sync.Map

func lockFor(name string) func() {
	v, _ := sessionLocks.LoadOrStore(name, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (p *Plane) serveGCSSession(w http.ResponseWriter, r *http.Request, sid, session string) {
	if p.shouldFail() {
		w.Header().Set("Connection", "close")
		writeGCSError(w, http.StatusServiceUnavailable, "backendError", "Backend Error")
		return
	}
	st, ok := p.storage(sid)
	if !ok || st.Dir == "" || !validID(session) {
		writeGCSError(w, http.StatusNotFound, "notFound", "No such upload session.")
		return
	}
	if status, reason, msg := p.checkGoogSig(r.URL.Query(), "gcs-session", sid, session); status != 0 {
		writeGCSError(w, status, reason, msg)
		return
	}
	defer lockFor(st.Dir + "/gcs/" + session)()
	dir := stage(st, "gcs", session)
	m, err := readGCSMeta(dir)
	if err != nil {
		writeGCSError(w, http.StatusNotFound, "notFound", "No such upload session (cancelled, or never started).")
		return
	}
	switch r.Method {
	case http.MethodDelete:
		os.RemoveAll(dir)
		w.WriteHeader(499) // what GCS answers to a cancelled session
		return
	case http.MethodPut, http.MethodPost:
	default:
		writeGCSError(w, http.StatusMethodNotAllowed, "invalid", "use PUT on an upload session")
		return
	}
	data := filepath.Join(dir, "data")
	if m.Done {
		dst, err := objectPath(st, m.Key)
		if err != nil {
			writeGCSError(w, http.StatusInternalServerError, "backendError", "locating the object failed")
			return
		}
		p.gcsDone(w, st, m, dst)
		return
	}
	fi, err := os.Stat(data)
	if err != nil {
		writeGCSError(w, http.StatusNotFound, "notFound", "No such upload session.")
		return
	}
	received := fi.Size()

	var cr contentRange
	if h := r.Header.Get("Content-Range"); h != "" {
		if cr, err = parseContentRange(h); err != nil {
			writeGCSError(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
	} else {
		// A single-request upload: the body is the whole object.
		if r.ContentLength < 0 {
			writeGCSError(w, http.StatusLengthRequired, "required", "Content-Length or Content-Range is required")
			return
		}
		cr = contentRange{first: 0, last: r.ContentLength - 1, total: r.ContentLength}
		if r.ContentLength == 0 {
			cr.first = -1
		}
	}
	if cr.total >= 0 {
		if m.Total >= 0 && m.Total != cr.total {
			writeGCSError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Content-Range total %d differs from the session's %d", cr.total, m.Total))
			return
		}
		m.Total = cr.total
	}
	if cr.first >= 0 {
		if r.ContentLength != cr.last-cr.first+1 {
			writeGCSError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Content-Length %d differs from the Content-Range span %d", r.ContentLength, cr.last-cr.first+1))
			return
		}
		if cr.first > received {
			writeGCSError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid request. There were %d byte(s) in the session, but the chunk starts at %d.", received, cr.first))
			return
		}
		final := cr.total >= 0 && cr.last == cr.total-1
		if !final && (cr.last-cr.first+1)%gcsChunk != 0 {
			writeGCSError(w, http.StatusBadRequest, "invalid", "Invalid request. The number of bytes uploaded is required to be a multiple of 262144, except for the final request.")
			return
		}
		n, err := appendChunk(data, r.Body, received-cr.first, cr.last-cr.first+1, received)
		if err != nil {
			writeGCSError(w, http.StatusBadRequest, "invalid", "the chunk was cut short: "+err.Error())
			return
		}
		received += n
	}
	if m.Total >= 0 && received == m.Total {
		dst, err := objectPath(st, m.Key)
		if err == nil {
			err = publish(data, dst)
		}
		if err != nil {
			writeGCSError(w, http.StatusInternalServerError, "backendError", "storing the object failed")
			return
		}
		m.Done = true
		writeGCSMeta(dir, m)
		p.gcsDone(w, st, m, dst)
		return
	}
	writeGCSMeta(dir, m)
	if received > 0 {
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", received-1))
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusPermanentRedirect) // 308 Resume Incomplete
}

// appendChunk appends a chunk's new bytes to data: skip bytes the session already holds (a resent
// overlap), then exactly want-skip bytes. A short body rolls the file back to its old size.
func appendChunk(data string, body io.Reader, skip, want, oldSize int64) (int64, error) {
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, body, min(skip, want)); err != nil {
			return 0, err
		}
		want -= min(skip, want)
	}
	if want == 0 {
		return 0, nil
	}
	f, err := os.OpenFile(data, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(f, io.LimitReader(body, want), *bp)
	copyBufs.Put(bp)
	if err == nil && n != want {
		err = errors.New("unexpected end of body")
	}
	if err != nil {
		f.Truncate(oldSize)
		f.Close()
		return 0, err
	}
	return n, f.Close()
}

func (p *Plane) gcsDone(w http.ResponseWriter, st Storage, m gcsMeta, dst string) {
	// Real GCS reports the object's MD5 and CRC32C (base64, CRC big-endian) in the
	// JSON and in x-goog-hash, and clients verify them. The emulator hashes the
	// published object once here rather than keeping hash state per session
	// across chunks: one extra read, simpler, and only on the final chunk.
	md5b64, crcb64, err := gcsHashes(dst)
	if err != nil {
		writeGCSError(w, http.StatusInternalServerError, "backendError", "hashing the object failed")
		return
	}
	w.Header().Set("x-goog-hash", "crc32c="+crcb64+",md5="+md5b64)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "storage#object", "bucket": st.ID, "name": m.Key,
		"size": strconv.FormatInt(m.Total, 10), "timeCreated": m.Created.Format(time.RFC3339Nano),
		"md5Hash": md5b64, "crc32c": crcb64,
	})
}

// gcsHashes returns an object's MD5 and CRC32C (Castagnoli) as GCS encodes them.
func gcsHashes(path string) (md5b64, crcb64 string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	m, c := md5.New(), crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bp := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(io.MultiWriter(m, c), f, *bp)
	copyBufs.Put(bp)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), base64.StdEncoding.EncodeToString(c.Sum(nil)), nil
}
