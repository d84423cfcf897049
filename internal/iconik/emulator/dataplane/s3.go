package dataplane

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

const (
	s3MinPartSize = 5 << 20 // S3: every part but the last must be at least 5 MiB
	s3MaxParts    = 10000
	s3Region      = "us-east-1"
	s3Namespace   = "http://s3.amazonaws.com/doc/2006-03-01/"
)

// s3Target is where an S3 storage's presigned URLs point: the built-in plane or an external server.
type s3Target struct {
	endpoint string // scheme://host[:port][/prefix], no trailing slash
	bucket   string
	region   string
	creds    aws.Credentials
}

func (t s3Target) objectURL(key string) string {
	return t.endpoint + "/" + httpbinding.EscapePath(t.bucket, true) + "/" + httpbinding.EscapePath(key, false)
}

func (t s3Target) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       t.region,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return t.creds, nil }),
		BaseEndpoint: aws.String(t.endpoint),
		UsePathStyle: true,
		// Checksums would add headers the uploader must then send; iconik's URLs carry none.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func (t s3Target) presignClient(now func() time.Time, ttl time.Duration) *s3.PresignClient {
	return s3.NewPresignClient(t.client(), func(o *s3.PresignOptions) {
		o.Expires = ttl
		// S3 signs the already-escaped path as is; the SDK's own default presigner sets the same option.
		o.Presigner = clockPresigner{signer: v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }), now: now}
	})
}

// s3Target returns the target for st: external when its settings name another server.
func (p *Plane) s3Target(st Storage) s3Target {
	if ext, ok := externalS3(st, p.baseURL()); ok {
		return ext.target
	}
	return s3Target{
		endpoint: p.baseURL() + "/_storage/s3",
		bucket:   st.ID,
		region:   s3Region,
		creds:    aws.Credentials{AccessKeyID: p.s3Key, SecretAccessKey: p.s3Secret, Source: "ferry-dataplane"},
	}
}

func (p *Plane) ttlSeconds() time.Duration {
	if p.ttl > maxPresignTTL {
		return maxPresignTTL
	}
	if p.ttl < time.Second {
		return time.Second
	}
	return p.ttl
}

func (p *Plane) s3UploadFields(st Storage, key string) (UploadFields, error) {
	t := p.s3Target(st)
	put, err := t.presignClient(p.now, p.ttlSeconds()).PresignPutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(t.bucket), Key: aws.String(key),
	})
	if err != nil {
		return UploadFields{}, fmt.Errorf("presign PutObject %q on storage %s: %w", key, st.ID, err)
	}
	create, err := presignV4(t.creds, t.region, http.MethodPost, t.objectURL(key)+"?uploads=", nil, p.ttlSeconds(), p.now())
	if err != nil {
		return UploadFields{}, fmt.Errorf("presign CreateMultipartUpload %q on storage %s: %w", key, st.ID, err)
	}
	return UploadFields{UploadURL: put.URL, MultipartUploadURL: create}, nil
}

// S3PartURLs presigns UploadPart URLs; md5b64 optionally binds a part to its Content-MD5 (base64),
// which the uploader must then send.
func (p *Plane) S3PartURLs(st Storage, key, uploadID string, parts []int, md5b64 map[int]string) ([]PartURL, error) {
	p.Register(st)
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("presign parts for storage %s: %w", st.ID, err)
	}
	if uploadID == "" {
		return nil, fmt.Errorf("presign parts of %q on storage %s: empty upload id", key, st.ID)
	}
	t := p.s3Target(st)
	pc := t.presignClient(p.now, p.ttlSeconds())
	out := make([]PartURL, 0, len(parts))
	for _, n := range parts {
		if n < 1 || n > s3MaxParts {
			return nil, fmt.Errorf("presign part %d of %q on storage %s: part numbers run 1..%d", n, key, st.ID, s3MaxParts)
		}
		in := &s3.UploadPartInput{Bucket: aws.String(t.bucket), Key: aws.String(key), UploadId: aws.String(uploadID), PartNumber: aws.Int32(int32(n))}
		if m := md5b64[n]; m != "" {
			if b, err := base64.StdEncoding.DecodeString(m); err != nil || len(b) != md5.Size {
				return nil, fmt.Errorf("presign part %d of %q on storage %s: checksum %q is not a base64 MD5", n, key, st.ID, m)
			}
			in.ContentMD5 = aws.String(m)
		}
		req, err := pc.PresignUploadPart(context.Background(), in)
		if err != nil {
			return nil, fmt.Errorf("presign part %d of %q on storage %s: %w", n, key, st.ID, err)
		}
		out = append(out, PartURL{Number: n, URL: req.URL})
	}
	return out, nil
}

// S3MultipartURLs presigns CompleteMultipartUpload (POST) and AbortMultipartUpload (DELETE).
func (p *Plane) S3MultipartURLs(st Storage, key, uploadID string) (completeURL, abortURL string, err error) {
	p.Register(st)
	if err := ValidateKey(key); err != nil {
		return "", "", fmt.Errorf("presign multipart URLs for storage %s: %w", st.ID, err)
	}
	t := p.s3Target(st)
	u := t.objectURL(key) + "?uploadId=" + urlQueryEscape(uploadID)
	if completeURL, err = presignV4(t.creds, t.region, http.MethodPost, u, nil, p.ttlSeconds(), p.now()); err != nil {
		return "", "", err
	}
	if abortURL, err = presignV4(t.creds, t.region, http.MethodDelete, u, nil, p.ttlSeconds(), p.now()); err != nil {
		return "", "", err
	}
	return completeURL, abortURL, nil
}

// S3ListPartsURL presigns ListParts (GET ?uploadId) so a resumed upload can ask which parts arrived.
// The built-in plane answers with every part (up to 10000) in one response.
func (p *Plane) S3ListPartsURL(st Storage, key, uploadID string) (string, error) {
	p.Register(st)
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("presign ListParts for storage %s: %w", st.ID, err)
	}
	t := p.s3Target(st)
	return presignV4(t.creds, t.region, http.MethodGet, t.objectURL(key)+"?uploadId="+urlQueryEscape(uploadID), nil, p.ttlSeconds(), p.now())
}

// S3Abort aborts a multipart upload server-side.
func (p *Plane) S3Abort(st Storage, key, uploadID string) error {
	p.Register(st)
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("abort upload on storage %s: %w", st.ID, err)
	}
	if ext, ok := externalS3(st, p.baseURL()); ok {
		return ext.abort(key, uploadID)
	}
	if !validID(uploadID) {
		return fmt.Errorf("abort upload %q of %q on storage %s: %w", uploadID, key, st.ID, ErrNoSuchUpload)
	}
	dir := stage(st, "s3", uploadID)
	m, err := readS3Meta(dir)
	if err != nil || m.Key != key {
		return fmt.Errorf("abort upload %q of %q on storage %s: %w", uploadID, key, st.ID, ErrNoSuchUpload)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort upload %q of %q on storage %s: %w", uploadID, key, st.ID, err)
	}
	return nil
}

// ErrNoSuchUpload: the multipart upload (or B2 large file) is unknown, finished or aborted.
var ErrNoSuchUpload = errors.New("no such upload")

func urlQueryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// ---- the built-in S3 server ----

type s3Meta struct {
	Key       string    `json:"key"`
	Initiated time.Time `json:"initiated"`
}

func readS3Meta(dir string) (s3Meta, error) {
	var m s3Meta
	b, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

type s3Err struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(s3Err{Code: code, Message: msg, Resource: r.URL.Path, RequestID: newID()[:16]})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(v)
}

func (p *Plane) serveS3(w http.ResponseWriter, r *http.Request, sid, key string) {
	if p.shouldFail() {
		// Answer before reading the body, as an overloaded S3 front end does.
		w.Header().Set("Connection", "close")
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	}
	st, ok := p.storage(sid)
	if !ok || st.Dir == "" {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	if e := verifyPresigned(r, p.s3Key, p.s3Secret, p.now()); e != nil {
		writeS3Error(w, r, e.status, e.code, e.message)
		return
	}
	if err := ValidateKey(key); err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
		return
	}
	q := r.URL.Query()
	_, hasUploads := q["uploads"]
	uploadID := q.Get("uploadId")
	switch {
	case r.Method == http.MethodPost && hasUploads:
		p.s3Create(w, r, st, key)
	case r.Method == http.MethodPut && uploadID != "" && q.Get("partNumber") != "":
		p.s3UploadPart(w, r, st, key, uploadID, q.Get("partNumber"))
	case r.Method == http.MethodPost && uploadID != "":
		p.s3Complete(w, r, st, key, uploadID)
	case r.Method == http.MethodDelete && uploadID != "":
		if err := p.S3Abort(st, key, uploadID); err != nil {
			writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && uploadID != "":
		p.s3ListParts(w, r, st, key, uploadID)
	case r.Method == http.MethodPut && uploadID == "":
		p.s3Put(w, r, st, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		p.s3Get(w, r, st, key)
	default:
		writeS3Error(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
}

func (p *Plane) s3Create(w http.ResponseWriter, r *http.Request, st Storage, key string) {
	id := newID()
	dir := stage(st, "s3", id)
	b, _ := json.Marshal(s3Meta{Key: key, Initiated: p.now().UTC()})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "creating the upload failed")
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "upload.json"), b, 0o644); err != nil {
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "creating the upload failed")
		return
	}
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{NS: s3Namespace, Bucket: st.ID, Key: key, UploadID: id})
}

// checkContentMD5 parses an optional Content-MD5 header.
func checkContentMD5(r *http.Request) ([]byte, bool) {
	h := r.Header.Get("Content-MD5")
	if h == "" {
		return nil, true
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(b) != md5.Size {
		return nil, false
	}
	return b, true
}

// receiveS3Body stores the request body as a temporary file in dir and checks Content-MD5.
func receiveS3Body(w http.ResponseWriter, r *http.Request, dir string) (tmp string, sum []byte, n int64, ok bool) {
	want, valid := checkContentMD5(r)
	if !valid {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
		return "", nil, 0, false
	}
	if r.ContentLength < 0 {
		writeS3Error(w, r, http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
		return "", nil, 0, false
	}
	h := md5.New()
	tmp, n, err := receive(dir, r.Body, h)
	if err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
		return "", nil, 0, false
	}
	sum = h.Sum(nil)
	if want != nil && subtle.ConstantTimeCompare(want, sum) != 1 {
		os.Remove(tmp)
		writeS3Error(w, r, http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		return "", nil, 0, false
	}
	return tmp, sum, n, true
}

func partName(n int, sumHex string) string { return fmt.Sprintf("p%05d-%s", n, sumHex) }

// parsePartName reverses partName.
func parsePartName(name string) (int, string, bool) {
	num, sum, ok := strings.Cut(strings.TrimPrefix(name, "p"), "-")
	if !ok || !strings.HasPrefix(name, "p") {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", false
	}
	return n, sum, true
}

type storedPart struct {
	Number int
	Sum    string // hex
	Size   int64
	Path   string
	Mod    time.Time
}

// listParts reads a staging directory's parts, sorted by number.
func listParts(dir string) ([]storedPart, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []storedPart
	for _, e := range ents {
		n, sum, ok := parsePartName(e.Name())
		if !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // replaced while listing
		}
		out = append(out, storedPart{Number: n, Sum: sum, Size: fi.Size(), Path: filepath.Join(dir, e.Name()), Mod: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// storePart publishes tmp as part n, replacing any earlier upload of the same part number.
func storePart(dir, tmp string, n int, sumHex string) error {
	name := partName(n, sumHex)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	olds, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("p%05d-*", n)))
	for _, o := range olds {
		if filepath.Base(o) != name {
			os.Remove(o)
		}
	}
	return nil
}

func (p *Plane) s3Upload(w http.ResponseWriter, r *http.Request, st Storage, key, uploadID string) (string, bool) {
	if !validID(uploadID) {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
		return "", false
	}
	dir := stage(st, "s3", uploadID)
	m, err := readS3Meta(dir)
	if err != nil || m.Key != key {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
		return "", false
	}
	return dir, true
}

func (p *Plane) s3UploadPart(w http.ResponseWriter, r *http.Request, st Storage, key, uploadID, partNumber string) {
	n, err := strconv.Atoi(partNumber)
	if err != nil || n < 1 || n > s3MaxParts {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		return
	}
	dir, ok := p.s3Upload(w, r, st, key, uploadID)
	if !ok {
		return
	}
	tmp, sum, _, ok := receiveS3Body(w, r, dir)
	if !ok {
		return
	}
	sumHex := hex.EncodeToString(sum)
	if err := storePart(dir, tmp, n, sumHex); err != nil {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
		return
	}
	w.Header().Set("ETag", `"`+sumHex+`"`)
	w.WriteHeader(http.StatusOK)
}

type completeBody struct {
	Parts []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

func (p *Plane) s3Complete(w http.ResponseWriter, r *http.Request, st Storage, key, uploadID string) {
	dir, ok := p.s3Upload(w, r, st, key, uploadID)
	if !ok {
		return
	}
	defer lockFor(dir)() // two racing completions must not both assemble
	if _, err := os.Stat(dir); err != nil {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
		return
	}
	var body completeBody
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body); err != nil || len(body.Parts) == 0 {
		writeS3Error(w, r, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		return
	}
	stored, err := listParts(dir)
	if err != nil {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	byNum := map[int]storedPart{}
	for _, sp := range stored {
		byNum[sp.Number] = sp
	}
	spans := make([]span, 0, len(body.Parts))
	etagMD5 := md5.New()
	prev := 0
	for i, bp := range body.Parts {
		if bp.PartNumber <= prev {
			writeS3Error(w, r, http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
			return
		}
		prev = bp.PartNumber
		sp, ok := byNum[bp.PartNumber]
		if !ok || strings.Trim(bp.ETag, `" `) != sp.Sum {
			writeS3Error(w, r, http.StatusBadRequest, "InvalidPart", fmt.Sprintf("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. (part %d)", bp.PartNumber))
			return
		}
		if i < len(body.Parts)-1 && sp.Size < s3MinPartSize {
			writeS3Error(w, r, http.StatusBadRequest, "EntityTooSmall", fmt.Sprintf("Your proposed upload is smaller than the minimum allowed object size. (part %d is %d bytes; minimum 5 MiB)", bp.PartNumber, sp.Size))
			return
		}
		raw, _ := hex.DecodeString(sp.Sum)
		etagMD5.Write(raw)
		spans = append(spans, span{path: sp.Path, size: sp.Size})
	}
	dst, err := objectPath(st, key)
	if err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
		return
	}
	if _, err := assemble(dir, dst, spans); err != nil {
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error assembling the object. Please try again.")
		return
	}
	os.RemoveAll(dir)
	etag := fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etagMD5.Sum(nil)), len(body.Parts))
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{NS: s3Namespace, Location: p.baseURL() + r.URL.Path, Bucket: st.ID, Key: key, ETag: etag})
}

func (p *Plane) s3ListParts(w http.ResponseWriter, r *http.Request, st Storage, key, uploadID string) {
	dir, ok := p.s3Upload(w, r, st, key, uploadID)
	if !ok {
		return
	}
	stored, err := listParts(dir)
	if err != nil {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	type part struct {
		PartNumber   int
		LastModified string
		ETag         string
		Size         int64
	}
	res := struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		NS                   string   `xml:"xmlns,attr"`
		Bucket               string
		Key                  string
		UploadID             string `xml:"UploadId"`
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Parts                []part `xml:"Part"`
	}{NS: s3Namespace, Bucket: st.ID, Key: key, UploadID: uploadID, MaxParts: s3MaxParts}
	for _, sp := range stored {
		res.Parts = append(res.Parts, part{sp.Number, sp.Mod.UTC().Format(time.RFC3339), `"` + sp.Sum + `"`, sp.Size})
		res.NextPartNumberMarker = sp.Number
	}
	writeXML(w, http.StatusOK, res)
}

func (p *Plane) s3Put(w http.ResponseWriter, r *http.Request, st Storage, key string) {
	dst, err := objectPath(st, key)
	if err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
		return
	}
	if r.ContentLength > 5<<30 {
		writeS3Error(w, r, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
		return
	}
	tmp, sum, _, ok := receiveS3Body(w, r, filepath.Join(st.Dir, stagingDir, "tmp"))
	if !ok {
		return
	}
	if err := publish(tmp, dst); err != nil {
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error storing the object. Please try again.")
		return
	}
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum)+`"`)
	w.WriteHeader(http.StatusOK)
}

func (p *Plane) s3Get(w http.ResponseWriter, r *http.Request, st Storage, key string) {
	fp, err := objectPath(st, key)
	if err != nil {
		writeS3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
		return
	}
	f, err := os.Open(fp)
	if err != nil {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		writeS3Error(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
