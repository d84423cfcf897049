package dataplane

// GCS parallel composite uploads, as the XML API serves them: every part is its own (temporary)
// object written with a signed PUT, a signed compose request (PUT ?compose with a <ComposeRequest>
// naming up to 32 source objects) concatenates sources into one object in the order listed, and
// signed DELETEs remove the temporary objects afterwards.

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

// GCSMaxComposeSources is GCS's limit on the source objects of one compose request.
const GCSMaxComposeSources = 32

// GCSObject holds the signed XML-API URLs of one object: PUT the bytes to UploadURL,
// GET (or HEAD) DownloadURL, DELETE DeleteURL.
type GCSObject struct {
	Key, UploadURL, DownloadURL, DeleteURL string
}

// NoSuchObjectError reports a source object that does not exist (GCS answers 404 NoSuchKey).
type NoSuchObjectError struct{ Key string }

func (e *NoSuchObjectError) Error() string { return fmt.Sprintf("object %q does not exist", e.Key) }

// gcsObjectURL signs one XML-API request on key: method is the HTTP verb the URL is good for
// ("COMPOSE" for a compose request, whose signed subject also binds the content type).
func (p *Plane) gcsObjectURL(st Storage, key, method, contentType string) string {
	date, exp := p.now().UTC().Format(amzDateFormat), strconv.Itoa(int(p.ttl/time.Second))
	sig := hex.EncodeToString(p.sign("gcs-object", st.ID, gcsSubject(method, contentType, key), date, exp))
	u := p.baseURL() + "/_storage/gcs/" + st.ID + "/" + httpbinding.EscapePath(key, false) + "?"
	if method == "COMPOSE" {
		u += "compose&"
	}
	return u + "X-Goog-Date=" + date + "&X-Goog-Expires=" + exp + "&X-Goog-Signature=" + sig
}

// gcsSubject is what a GCS object URL's signature covers; the lengths keep it unambiguous.
func gcsSubject(method, contentType, key string) string {
	return fmt.Sprintf("%s:%d:%s:%s", method, len(contentType), contentType, key)
}

// GCSObjectURLs returns signed PUT, GET and DELETE URLs for key in a GCS storage.
func (p *Plane) GCSObjectURLs(st Storage, key string) (GCSObject, error) {
	p.Register(st)
	if err := p.gcsCheck(st, key); err != nil {
		return GCSObject{}, fmt.Errorf("signing GCS object URLs: %w", err)
	}
	return GCSObject{
		Key:         key,
		UploadURL:   p.gcsObjectURL(st, key, http.MethodPut, ""),
		DownloadURL: p.gcsObjectURL(st, key, http.MethodGet, ""),
		DeleteURL:   p.gcsObjectURL(st, key, http.MethodDelete, ""),
	}, nil
}

// GCSComposeURL returns a signed compose URL writing key: PUT it with a body
// <ComposeRequest><Component><Name>source key</Name></Component>...</ComposeRequest> (1 to 32
// components, concatenated in that order). A non-empty contentType is signed: the request must
// carry it as its Content-Type, as with a real signed URL whose signed headers include it.
func (p *Plane) GCSComposeURL(st Storage, key, contentType string) (string, error) {
	p.Register(st)
	if err := p.gcsCheck(st, key); err != nil {
		return "", fmt.Errorf("signing a GCS compose URL: %w", err)
	}
	if strings.ContainsAny(contentType, "\r\n") {
		return "", fmt.Errorf("signing a GCS compose URL for %q: content type holds a line break", key)
	}
	return p.gcsObjectURL(st, key, "COMPOSE", contentType), nil
}

// GCSCompose concatenates 1 to 32 existing source objects, in order, into key (server side,
// as iconik does for POST .../multipart/). A source may be key itself. A missing source is a
// *NoSuchObjectError. It returns the composed object's size.
func (p *Plane) GCSCompose(st Storage, key string, sources []string) (int64, error) {
	p.Register(st)
	if err := p.gcsCheck(st, key); err != nil {
		return 0, fmt.Errorf("composing a GCS object: %w", err)
	}
	n, err := p.gcsCompose(st, key, sources)
	if err != nil {
		return 0, fmt.Errorf("composing %q in storage %s: %w", key, st.ID, err)
	}
	return n, nil
}

// GCSDelete removes objects of a GCS storage; objects already gone are not an error. Directories
// left empty under the storage are removed too, so temporary parts leave nothing behind.
func (p *Plane) GCSDelete(st Storage, keys ...string) error {
	p.Register(st)
	for _, key := range keys {
		if err := p.gcsCheck(st, key); err != nil {
			return fmt.Errorf("deleting a GCS object: %w", err)
		}
		fp, _ := objectPath(st, key)
		if err := os.Remove(fp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("deleting %q in storage %s: %w", key, st.ID, err)
		}
		pruneEmptyDirs(st.Dir, filepath.Dir(fp))
	}
	return nil
}

func (p *Plane) gcsCheck(st Storage, key string) error {
	if !strings.EqualFold(st.Method, MethodGCS) {
		return fmt.Errorf("storage %s is %s, not GCS", st.ID, st.Method)
	}
	if st.Dir == "" {
		return fmt.Errorf("storage %s has no directory", st.ID)
	}
	return ValidateKey(key)
}

// pruneEmptyDirs removes dir and its parents while they are empty, stopping at root.
func pruneEmptyDirs(root, dir string) {
	root = filepath.Clean(root)
	for dir = filepath.Clean(dir); dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty (or gone): stop
			return
		}
	}
}

func (p *Plane) gcsCompose(st Storage, key string, sources []string) (int64, error) {
	if len(sources) == 0 {
		return 0, errors.New("a compose request needs at least one source object")
	}
	if len(sources) > GCSMaxComposeSources {
		return 0, fmt.Errorf("the number of source components provided (%d) exceeds the maximum (%d)", len(sources), GCSMaxComposeSources)
	}
	dst, err := objectPath(st, key)
	if err != nil {
		return 0, err
	}
	spans := make([]span, 0, len(sources))
	for _, src := range sources {
		sp, err := objectPath(st, src)
		if err != nil {
			return 0, fmt.Errorf("source %q: %w", src, err)
		}
		if fi, err := os.Stat(sp); err != nil || !fi.Mode().IsRegular() {
			return 0, &NoSuchObjectError{Key: src}
		}
		spans = append(spans, span{path: sp, size: -1})
	}
	defer lockFor(st.Dir + "/gcs-object/" + key)()
	// assemble writes a temporary file first, so a source that is also the destination is read whole.
	return assemble(filepath.Join(st.Dir, stagingDir, "gcs-compose"), dst, spans)
}

type gcsXMLErr struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
	Details string   `xml:"Details,omitempty"`
}

// writeGCSXMLError answers in the XML API's error shape.
func writeGCSXMLError(w http.ResponseWriter, r *http.Request, status int, code, msg, details string) {
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(gcsXMLErr{Code: code, Message: msg, Details: details})
}

type composeRequest struct {
	XMLName    xml.Name `xml:"ComposeRequest"`
	Components []struct {
		Name string `xml:"Name"`
	} `xml:"Component"`
}

// serveGCSObject serves the XML API's object calls on /_storage/gcs/<sid>/<key>: PUT (upload),
// PUT ?compose, GET/HEAD (download), DELETE. POST (resumable start) is serveGCSStart's.
func (p *Plane) serveGCSObject(w http.ResponseWriter, r *http.Request, st Storage, key string) {
	q := r.URL.Query()
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	_, compose := q["compose"]
	ct := ""
	if compose {
		if r.Method != http.MethodPut {
			writeGCSXMLError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "A compose request is a PUT.", "")
			return
		}
		method, ct = "COMPOSE", r.Header.Get("Content-Type")
	}
	if status, code, msg := p.checkGoogSig(q, "gcs-object", st.ID, gcsSubject(method, ct, key)); status != 0 {
		if compose && code == "SignatureDoesNotMatch" {
			msg += " (a compose URL binds the Content-Type it was signed with)"
		}
		writeGCSXMLError(w, r, status, code, msg, "")
		return
	}
	if err := ValidateKey(key); err != nil {
		writeGCSXMLError(w, r, http.StatusBadRequest, "InvalidArgument", "Invalid argument.", err.Error())
		return
	}
	fp, _ := objectPath(st, key)
	switch {
	case compose:
		p.serveGCSCompose(w, r, st, key)
	case r.Method == http.MethodPut:
		p.serveGCSPut(w, r, st, key, fp)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		f, err := os.Open(fp)
		if err != nil {
			writeGCSXMLError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "No such object: "+st.ID+"/"+key)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			writeGCSXMLError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "No such object: "+st.ID+"/"+key)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", fi.ModTime(), f)
	case r.Method == http.MethodDelete:
		if _, err := os.Stat(fp); err != nil {
			writeGCSXMLError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "No such object: "+st.ID+"/"+key)
			return
		}
		if err := p.GCSDelete(st, key); err != nil {
			writeGCSXMLError(w, r, http.StatusInternalServerError, "InternalError", "Deleting the object failed.", "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeGCSXMLError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", "")
	}
}

func (p *Plane) serveGCSPut(w http.ResponseWriter, r *http.Request, st Storage, key, fp string) {
	var want []byte
	if v := r.Header.Get("Content-MD5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			writeGCSXMLError(w, r, http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.", "")
			return
		}
		want = b
	}
	h := md5.New()
	tmp, _, err := receive(filepath.Join(st.Dir, stagingDir, "gcs-put"), r.Body, h)
	if err != nil {
		writeGCSXMLError(w, r, http.StatusBadRequest, "IncompleteBody", "The request body was cut short.", "")
		return
	}
	sum := h.Sum(nil)
	if want != nil && string(want) != string(sum) {
		os.Remove(tmp)
		writeGCSXMLError(w, r, http.StatusBadRequest, "BadDigest", "The MD5 you specified did not match what we received.", "")
		return
	}
	unlock := lockFor(st.Dir + "/gcs-object/" + key)
	err = publish(tmp, fp)
	unlock()
	if err != nil {
		writeGCSXMLError(w, r, http.StatusInternalServerError, "InternalError", "Storing the object failed.", "")
		return
	}
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum)+`"`)
	w.Header().Set("x-goog-hash", "md5="+base64.StdEncoding.EncodeToString(sum))
	w.WriteHeader(http.StatusOK)
}

func (p *Plane) serveGCSCompose(w http.ResponseWriter, r *http.Request, st Storage, key string) {
	var req composeRequest
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeGCSXMLError(w, r, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.", err.Error())
		return
	}
	sources := make([]string, 0, len(req.Components))
	for _, c := range req.Components {
		sources = append(sources, c.Name)
	}
	n, err := p.gcsCompose(st, key, sources)
	var missing *NoSuchObjectError
	switch {
	case errors.As(err, &missing):
		writeGCSXMLError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "Source object "+missing.Key+" does not exist.")
		return
	case err != nil:
		writeGCSXMLError(w, r, http.StatusBadRequest, "InvalidArgument", "Invalid argument.", err.Error())
		return
	}
	w.Header().Set("x-goog-stored-content-length", strconv.FormatInt(n, 10))
	w.Header().Set("ETag", `"`+newID()+`"`) // a composite object has no MD5 (GCS gives it a CRC32C only)
	w.WriteHeader(http.StatusOK)
}
