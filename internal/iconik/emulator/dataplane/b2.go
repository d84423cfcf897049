package dataplane

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	b2MinPartSize = 5_000_000 // B2: every part but the last is at least 5 MB (decimal)
	b2MaxParts    = 10000
)

// B2Error is a refusal in B2's words ({"status","code","message"}); the emulator relays it as is.
type B2Error struct {
	Status        int
	Code, Message string
	err           error
}

func (e *B2Error) Error() string { return fmt.Sprintf("b2 %d %s: %s", e.Status, e.Code, e.Message) }
func (e *B2Error) Unwrap() error { return e.err }

func b2Bad(msg string) *B2Error {
	return &B2Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}

func writeB2Error(w http.ResponseWriter, e *B2Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]any{"status": e.Status, "code": e.Code, "message": e.Message})
}

// b2Claims is what an authorization token vouches for.
type b2Claims struct {
	Kind    string `json:"k"` // "u": upload one file; "p": upload parts of one large file
	Storage string `json:"s"`
	Subject string `json:"o"` // the file name (u) or the large file id (p)
	Expires int64  `json:"e"` // unix seconds
}

// b2Token makes an upload authorization token: the claims plus an HMAC over them. B2's own tokens are
// opaque; this one binds the storage, the file and the expiry so the plane can check all three.
func (p *Plane) b2Token(c b2Claims) string {
	raw, _ := json.Marshal(c)
	body := base64.RawURLEncoding.EncodeToString(raw)
	m := hmac.New(sha1.New, p.derive("b2-token"))
	m.Write([]byte(body))
	return "4_" + body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Plane) b2Check(token, kind, sid string) (b2Claims, *B2Error) {
	bad := &B2Error{Status: http.StatusUnauthorized, Code: "bad_auth_token", Message: "Invalid authorization token"}
	body, mac, ok := strings.Cut(strings.TrimPrefix(token, "4_"), ".")
	if !ok || !strings.HasPrefix(token, "4_") {
		return b2Claims{}, bad
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	m := hmac.New(sha1.New, p.derive("b2-token"))
	m.Write([]byte(body))
	if err != nil || subtle.ConstantTimeCompare(got, m.Sum(nil)) != 1 {
		return b2Claims{}, bad
	}
	var c b2Claims
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Kind != kind || c.Storage != sid {
		return b2Claims{}, bad
	}
	if p.now().Unix() > c.Expires {
		// Real B2 answers an expired upload token with 401 expired_auth_token (not 403): the client
		// is expected to fetch a new upload URL and token.
		return b2Claims{}, &B2Error{Status: http.StatusUnauthorized, Code: "expired_auth_token", Message: "Authorization token has expired"}
	}
	return c, nil
}

func (p *Plane) b2UploadFields(st Storage, key string) UploadFields {
	tok := p.b2Token(b2Claims{Kind: "u", Storage: st.ID, Subject: key, Expires: p.now().Add(p.ttl).Unix()})
	return UploadFields{
		UploadURL:         p.baseURL() + "/_storage/b2/" + st.ID + "/b2_upload_file",
		UploadCredentials: map[string]any{"authorizationToken": tok},
		UploadFilename:    key,
	}
}

func (p *Plane) serveB2(w http.ResponseWriter, r *http.Request, sid, op string) {
	if p.shouldFail() {
		w.Header().Set("Connection", "close")
		writeB2Error(w, &B2Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Message: "c001_v0001000_t0000 is too busy"})
		return
	}
	st, ok := p.storage(sid)
	if !ok || st.Dir == "" {
		writeB2Error(w, &B2Error{Status: http.StatusNotFound, Code: "not_found", Message: "bucket not found"})
		return
	}
	switch op {
	case "b2_upload_file":
		p.b2UploadFile(w, r, st)
	case "b2_upload_part":
		p.b2UploadPart(w, r, st)
	case "b2_list_parts":
		p.b2ListPartsHTTP(w, r, st)
	default:
		writeB2Error(w, &B2Error{Status: http.StatusNotFound, Code: "not_found", Message: "unknown B2 call " + op})
	}
}

// b2Sha1 reads X-Bz-Content-Sha1, refusing the deferred forms this plane does not implement.
func b2Sha1(r *http.Request) ([]byte, *B2Error) {
	h := strings.TrimSpace(r.Header.Get("X-Bz-Content-Sha1"))
	switch {
	case h == "":
		return nil, b2Bad("Missing header: X-Bz-Content-Sha1")
	case h == "do_not_verify" || strings.HasPrefix(h, "unverified:") || h == "hex_digits_at_end":
		return nil, b2Bad("X-Bz-Content-Sha1 " + h + " is not supported by this emulator: send the 40-digit hex SHA-1 of the body")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha1.Size {
		return nil, b2Bad("X-Bz-Content-Sha1 must be 40 hex digits")
	}
	return b, nil
}

// receiveB2Body stores the body as a temporary file in dir and checks its SHA-1.
func receiveB2Body(r *http.Request, dir string) (string, string, int64, *B2Error) {
	if r.Method != http.MethodPost {
		return "", "", 0, &B2Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "use POST"}
	}
	if r.ContentLength < 0 {
		return "", "", 0, b2Bad("Missing header: Content-Length")
	}
	want, e := b2Sha1(r)
	if e != nil {
		return "", "", 0, e
	}
	h := sha1.New()
	tmp, n, err := receive(dir, r.Body, h)
	if err != nil {
		return "", "", 0, &B2Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "the request body was cut short"}
	}
	if got := h.Sum(nil); subtle.ConstantTimeCompare(got, want) != 1 {
		os.Remove(tmp)
		return "", "", 0, b2Bad("Sha1 did not match data received")
	}
	return tmp, hex.EncodeToString(want), n, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (p *Plane) b2UploadFile(w http.ResponseWriter, r *http.Request, st Storage) {
	c, e := p.b2Check(r.Header.Get("Authorization"), "u", st.ID)
	if e != nil {
		writeB2Error(w, e)
		return
	}
	raw := r.Header.Get("X-Bz-File-Name")
	name, err := url.QueryUnescape(raw) // B2 percent-encodes file names and allows + for a space
	if raw == "" || err != nil {
		writeB2Error(w, b2Bad("X-Bz-File-Name is missing or not percent-encoded"))
		return
	}
	if name != c.Subject {
		writeB2Error(w, b2Bad(fmt.Sprintf("X-Bz-File-Name %q is not the upload_filename this token was issued for", name)))
		return
	}
	dst, err := objectPath(st, name)
	if err != nil {
		writeB2Error(w, b2Bad(err.Error()))
		return
	}
	tmp, sum, n, e := receiveB2Body(r, filepath.Join(st.Dir, stagingDir, "tmp"))
	if e != nil {
		writeB2Error(w, e)
		return
	}
	if err := publish(tmp, dst); err != nil {
		writeB2Error(w, &B2Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "storing the file failed"})
		return
	}
	info := map[string]string{}
	for k, vs := range r.Header {
		if rest, ok := strings.CutPrefix(k, "X-Bz-Info-"); ok && len(vs) > 0 {
			info[strings.ToLower(rest)] = vs[0]
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "b2/x-auto" {
		ct = "application/octet-stream"
	}
	writeJSON(w, map[string]any{
		"accountId": "ferryemulator", "action": "upload", "bucketId": st.ID, "contentLength": n,
		"contentSha1": sum, "contentType": ct, "fileId": "4_z" + newID(), "fileInfo": info,
		"fileName": name, "uploadTimestamp": p.now().UnixMilli(),
	})
}

type b2LargeMeta struct {
	Key     string    `json:"key"`
	Started time.Time `json:"started"`
}

func (p *Plane) b2LargeDir(st Storage, fileID string) (string, b2LargeMeta, *B2Error) {
	var m b2LargeMeta
	if !validID(fileID) || st.Dir == "" {
		return "", m, &B2Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "No active upload for: " + fileID, err: ErrNoSuchUpload}
	}
	dir := stage(st, "b2", fileID)
	raw, err := os.ReadFile(filepath.Join(dir, "large.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil {
		return "", m, &B2Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "No active upload for: " + fileID, err: ErrNoSuchUpload}
	}
	return dir, m, nil
}

// B2StartLarge starts a B2 large file; parts are POSTed to the returned UploadURL with its token.
func (p *Plane) B2StartLarge(st Storage, key string) (B2Large, error) {
	p.Register(st)
	if _, err := objectPath(st, key); err != nil {
		return B2Large{}, fmt.Errorf("start B2 large file on storage %s: %w", st.ID, err)
	}
	id := "4_z" + newID()
	dir := stage(st, "b2", id)
	raw, _ := json.Marshal(b2LargeMeta{Key: key, Started: p.now().UTC()})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return B2Large{}, fmt.Errorf("start B2 large file %q on storage %s: %w", key, st.ID, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "large.json"), raw, 0o644); err != nil {
		return B2Large{}, fmt.Errorf("start B2 large file %q on storage %s: %w", key, st.ID, err)
	}
	return p.b2LargeURL(st, id), nil
}

// B2ResumeLarge hands out a fresh part upload URL and token for a large file
// started earlier for key (what iconik's start call does when given its
// upload_file_id): a restarted client continues it instead of starting over.
func (p *Plane) B2ResumeLarge(st Storage, key, fileID string) (B2Large, error) {
	p.Register(st)
	_, m, e := p.b2LargeDir(st, fileID)
	if e != nil {
		return B2Large{}, e
	}
	if m.Key != key {
		return B2Large{}, b2Bad("large file " + fileID + " belongs to another file")
	}
	return p.b2LargeURL(st, fileID), nil
}

func (p *Plane) b2LargeURL(st Storage, fileID string) B2Large {
	return B2Large{
		UploadFileID:       fileID,
		UploadURL:          p.baseURL() + "/_storage/b2/" + st.ID + "/b2_upload_part",
		AuthorizationToken: p.b2Token(b2Claims{Kind: "p", Storage: st.ID, Subject: fileID, Expires: p.now().Add(p.ttl).Unix()}),
	}
}

func (p *Plane) b2UploadPart(w http.ResponseWriter, r *http.Request, st Storage) {
	c, e := p.b2Check(r.Header.Get("Authorization"), "p", st.ID)
	if e != nil {
		writeB2Error(w, e)
		return
	}
	n, err := strconv.Atoi(r.Header.Get("X-Bz-Part-Number"))
	if err != nil || n < 1 || n > b2MaxParts {
		writeB2Error(w, b2Bad("X-Bz-Part-Number must be an integer between 1 and 10000"))
		return
	}
	dir, _, e := p.b2LargeDir(st, c.Subject)
	if e != nil {
		writeB2Error(w, e)
		return
	}
	tmp, sum, size, e := receiveB2Body(r, dir)
	if e != nil {
		writeB2Error(w, e)
		return
	}
	if err := storePart(dir, tmp, n, sum); err != nil {
		writeB2Error(w, &B2Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "No active upload for: " + c.Subject})
		return
	}
	writeJSON(w, map[string]any{"fileId": c.Subject, "partNumber": n, "contentLength": size, "contentSha1": sum, "uploadTimestamp": p.now().UnixMilli()})
}

// B2Part is one uploaded part of a large file, as b2_list_parts reports it.
type B2Part struct {
	FileID          string `json:"fileId"`
	PartNumber      int    `json:"partNumber"`
	ContentLength   int64  `json:"contentLength"`
	ContentSha1     string `json:"contentSha1"`
	UploadTimestamp int64  `json:"uploadTimestamp"`
}

// B2ListParts lists the parts of an unfinished large file (b2_list_parts), for resuming.
func (p *Plane) B2ListParts(st Storage, fileID string) ([]B2Part, error) {
	p.Register(st)
	dir, _, e := p.b2LargeDir(st, fileID)
	if e != nil {
		return nil, e
	}
	parts, err := listParts(dir)
	if err != nil {
		return nil, fmt.Errorf("list parts of B2 large file %s: %w", fileID, err)
	}
	out := make([]B2Part, 0, len(parts))
	for _, sp := range parts {
		out = append(out, B2Part{fileID, sp.Number, sp.Size, sp.Sum, sp.Mod.UnixMilli()})
	}
	return out, nil
}

// b2ListPartsHTTP is b2_list_parts authorised by the large file's part-upload token.
func (p *Plane) b2ListPartsHTTP(w http.ResponseWriter, r *http.Request, st Storage) {
	c, e := p.b2Check(r.Header.Get("Authorization"), "p", st.ID)
	if e != nil {
		writeB2Error(w, e)
		return
	}
	fileID := r.URL.Query().Get("fileId")
	if fileID == "" {
		fileID = c.Subject
	}
	if fileID != c.Subject {
		writeB2Error(w, &B2Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "this token does not cover file " + fileID})
		return
	}
	parts, err := p.B2ListParts(st, fileID)
	var be *B2Error
	if errors.As(err, &be) {
		writeB2Error(w, be)
		return
	} else if err != nil {
		writeB2Error(w, &B2Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "listing parts failed"})
		return
	}
	writeJSON(w, map[string]any{"parts": parts, "nextPartNumber": nil})
}

// B2FinishLarge assembles a large file from its parts: sha1s lists every part's SHA-1 (hex) in part
// order, parts are numbered 1..N without gaps, and all but the last are at least 5 MB. Refusals are
// *B2Error in B2's words.
func (p *Plane) B2FinishLarge(st Storage, fileID string, sha1s []string) error {
	p.Register(st)
	dir, m, e := p.b2LargeDir(st, fileID)
	if e != nil {
		return e
	}
	defer lockFor(dir)()
	parts, err := listParts(dir)
	if err != nil {
		return fmt.Errorf("finish B2 large file %s: %w", fileID, err)
	}
	if len(parts) < 2 || len(sha1s) < 2 {
		return b2Bad("large files must have at least 2 parts")
	}
	if len(sha1s) != len(parts) {
		return b2Bad(fmt.Sprintf("partSha1Array has %d entries but %d parts were uploaded", len(sha1s), len(parts)))
	}
	spans := make([]span, 0, len(parts))
	for i, sp := range parts {
		if sp.Number != i+1 {
			return b2Bad(fmt.Sprintf("Part number %d has not been uploaded", i+1))
		}
		if !strings.EqualFold(strings.TrimSpace(sha1s[i]), sp.Sum) {
			return b2Bad(fmt.Sprintf("Sha1 of part %d does not match partSha1Array[%d]", sp.Number, i))
		}
		if i < len(parts)-1 && sp.Size < b2MinPartSize {
			return b2Bad(fmt.Sprintf("Part number %d is smaller than the minimum part size (%d < %d bytes)", sp.Number, sp.Size, b2MinPartSize))
		}
		spans = append(spans, span{path: sp.Path, size: sp.Size})
	}
	dst, err := objectPath(st, m.Key)
	if err != nil {
		return fmt.Errorf("finish B2 large file %s: %w", fileID, err)
	}
	if _, err := assemble(dir, dst, spans); err != nil {
		return fmt.Errorf("finish B2 large file %s as %q: %w", fileID, m.Key, err)
	}
	os.RemoveAll(dir)
	return nil
}

// B2CancelLarge cancels a large file and removes its parts.
func (p *Plane) B2CancelLarge(st Storage, fileID string) error {
	p.Register(st)
	dir, _, e := p.b2LargeDir(st, fileID)
	if e != nil {
		return e
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cancel B2 large file %s: %w", fileID, err)
	}
	return nil
}
