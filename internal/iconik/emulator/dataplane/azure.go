package dataplane

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

const (
	azureSASVersion = "2022-11-02"
	azureSASPerms   = "rcw" // read (Get Block List), create, write
	azureMaxBlockID = 64
)

// azureSASURL is a service-SAS-shaped URL for one blob: the signature covers the storage, the blob,
// the permissions, the expiry and the version, as Azure's string-to-sign does.
func (p *Plane) azureSASURL(st Storage, key string) string {
	se := p.now().UTC().Add(p.ttl).Format(time.RFC3339)
	q := url.Values{"sv": {azureSASVersion}, "sr": {"b"}, "sp": {azureSASPerms}, "se": {se}, "spr": {"https,http"}}
	q.Set("sig", base64.StdEncoding.EncodeToString(p.sign("azure-sas", st.ID, key, azureSASPerms, se, azureSASVersion)))
	return p.baseURL() + "/_storage/azure/" + st.ID + "/" + httpbinding.EscapePath(key, false) + "?" + q.Encode()
}

type azErr struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
	Detail  string   `xml:"AuthenticationErrorDetail,omitempty"`
}

func writeAzureError(w http.ResponseWriter, r *http.Request, status int, code, msg, detail string) {
	reqID := newID()
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("x-ms-request-id", reqID)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	io.WriteString(w, "\ufeff"+xml.Header)
	xml.NewEncoder(w).Encode(azErr{Code: code, Message: fmt.Sprintf("%s\nRequestId:%s\nTime:%s", msg, reqID, time.Now().UTC().Format(time.RFC3339Nano)), Detail: detail})
}

const azAuthFailed = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."

func (p *Plane) checkSAS(q url.Values, sid, key string) (string, bool) {
	sig, se, sp, sv := q.Get("sig"), q.Get("se"), q.Get("sp"), q.Get("sv")
	if sig == "" {
		return "no SAS signature", false
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || subtle.ConstantTimeCompare(got, p.sign("azure-sas", sid, key, sp, se, sv)) != 1 {
		return "Signature did not match.", false
	}
	exp, err := time.Parse(time.RFC3339, se)
	if err != nil {
		return "se is not an ISO 8601 time", false
	}
	if now := p.now().UTC(); now.After(exp) {
		return fmt.Sprintf("Signed expiry time [%s] must be after signed start time and current time [%s]", se, now.Format(time.RFC1123)), false
	}
	return "", true
}

// azureBlob is the on-disk state of one blob's blocks.
type azureBlob struct {
	st   Storage
	key  string
	dir  string // staging: blocks/ (uncommitted) and committed.json
	path string // the blob itself
}

type azBlock struct {
	ID   string `json:"id"` // base64, as the client named it
	Size int64  `json:"size"`
}

func (b azureBlob) blockFile(id string) string {
	raw, _ := base64.StdEncoding.DecodeString(id)
	return filepath.Join(b.dir, "blocks", hex.EncodeToString(raw))
}

func (b azureBlob) committed() []azBlock {
	var out []azBlock
	if raw, err := os.ReadFile(filepath.Join(b.dir, "committed.json")); err == nil {
		json.Unmarshal(raw, &out)
	}
	return out
}

func (b azureBlob) uncommitted() []azBlock {
	ents, _ := os.ReadDir(filepath.Join(b.dir, "blocks"))
	var out []azBlock
	for _, e := range ents {
		raw, err := hex.DecodeString(e.Name())
		if err != nil {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out = append(out, azBlock{ID: base64.StdEncoding.EncodeToString(raw), Size: fi.Size()})
		}
	}
	return out
}

func (p *Plane) serveAzure(w http.ResponseWriter, r *http.Request, sid, key string) {
	if p.shouldFail() {
		w.Header().Set("Connection", "close")
		writeAzureError(w, r, http.StatusServiceUnavailable, "ServerBusy", "The server is busy.", "")
		return
	}
	st, ok := p.storage(sid)
	if !ok || st.Dir == "" {
		writeAzureError(w, r, http.StatusNotFound, "ContainerNotFound", "The specified container does not exist.", "")
		return
	}
	q := r.URL.Query()
	if detail, ok := p.checkSAS(q, sid, key); !ok {
		writeAzureError(w, r, http.StatusForbidden, "AuthenticationFailed", azAuthFailed, detail)
		return
	}
	fp, err := objectPath(st, key)
	if err != nil {
		writeAzureError(w, r, http.StatusBadRequest, "InvalidResourceName", "The specifed resource name contains invalid characters.", "")
		return
	}
	sum := sha256.Sum256([]byte(key))
	b := azureBlob{st: st, key: key, dir: stage(st, "azure", hex.EncodeToString(sum[:16])), path: fp}
	perm := q.Get("sp")
	need := "w"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		need = "r"
	}
	if !strings.Contains(perm, need) && !(need == "w" && strings.Contains(perm, "c")) {
		writeAzureError(w, r, http.StatusForbidden, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.", "")
		return
	}
	w.Header().Set("x-ms-request-id", newID())
	w.Header().Set("x-ms-version", azureSASVersion)
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	comp := q.Get("comp")
	switch {
	case r.Method == http.MethodPut && comp == "":
		p.azurePutBlob(w, r, b)
	case r.Method == http.MethodPut && comp == "block":
		p.azurePutBlock(w, r, b, q.Get("blockid"))
	case r.Method == http.MethodPut && comp == "blocklist":
		p.azurePutBlockList(w, r, b)
	case r.Method == http.MethodGet && comp == "blocklist":
		p.azureGetBlockList(w, r, b, q.Get("blocklisttype"))
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && comp == "":
		f, err := os.Open(b.path)
		if err != nil {
			writeAzureError(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.Header().Set("x-ms-blob-type", "BlockBlob")
		http.ServeContent(w, r, "", fi.ModTime(), f)
	default:
		writeAzureError(w, r, http.StatusBadRequest, "UnsupportedQueryParameter", "One of the query parameters specified in the request URI is not supported.", "")
	}
}

// receiveAzureBody stores the body in dir and checks an optional Content-MD5.
func receiveAzureBody(w http.ResponseWriter, r *http.Request, dir string) (string, []byte, bool) {
	want, valid := checkContentMD5(r)
	if !valid {
		writeAzureError(w, r, http.StatusBadRequest, "InvalidMd5", "The MD5 value specified in the request is invalid.", "")
		return "", nil, false
	}
	if r.ContentLength < 0 {
		writeAzureError(w, r, http.StatusLengthRequired, "MissingContentLengthHeader", "The Content-Length header was not specified.", "")
		return "", nil, false
	}
	h := md5.New()
	tmp, _, err := receive(dir, r.Body, h)
	if err != nil {
		writeAzureError(w, r, http.StatusBadRequest, "InvalidInput", "The request body was cut short.", "")
		return "", nil, false
	}
	sum := h.Sum(nil)
	if want != nil && !bytes.Equal(want, sum) {
		os.Remove(tmp)
		writeAzureError(w, r, http.StatusBadRequest, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 value calculated by the server.", "")
		return "", nil, false
	}
	return tmp, sum, true
}

func azureWritten(w http.ResponseWriter, sum []byte) {
	w.Header().Set("ETag", `"0x`+strings.ToUpper(hex.EncodeToString(sum[:8]))+`"`)
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("x-ms-request-server-encrypted", "false")
	w.WriteHeader(http.StatusCreated)
}

func (p *Plane) azurePutBlob(w http.ResponseWriter, r *http.Request, b azureBlob) {
	if r.Header.Get("x-ms-blob-type") != "BlockBlob" {
		writeAzureError(w, r, http.StatusBadRequest, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type (only BlockBlob is supported).", "")
		return
	}
	tmp, sum, ok := receiveAzureBody(w, r, filepath.Join(b.st.Dir, stagingDir, "tmp"))
	if !ok {
		return
	}
	defer lockFor(b.dir)()
	if err := publish(tmp, b.path); err != nil {
		writeAzureError(w, r, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.", "")
		return
	}
	// Put Blob replaces the blob and discards its blocks, committed and uncommitted.
	os.RemoveAll(b.dir)
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum))
	azureWritten(w, sum)
}

func (p *Plane) azurePutBlock(w http.ResponseWriter, r *http.Request, b azureBlob, id string) {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(raw) == 0 || len(raw) > azureMaxBlockID {
		writeAzureError(w, r, http.StatusBadRequest, "InvalidQueryParameterValue", "Value for one of the query parameters specified in the request URI is invalid: blockid must be base64 of at most 64 bytes.", "")
		return
	}
	for _, u := range b.uncommitted() {
		if len(u.ID) != len(id) {
			writeAzureError(w, r, http.StatusBadRequest, "InvalidBlobOrBlock", "The specified blob or block content is invalid: block ids of one blob must have the same length.", "")
			return
		}
	}
	tmp, sum, ok := receiveAzureBody(w, r, filepath.Join(b.dir, "blocks"))
	if !ok {
		return
	}
	if err := os.Rename(tmp, b.blockFile(id)); err != nil {
		os.Remove(tmp)
		writeAzureError(w, r, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.", "")
		return
	}
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum))
	w.WriteHeader(http.StatusCreated)
}

// blockRef is one entry of a Put Block List body, in order.
type blockRef struct{ list, id string } // list: Latest | Committed | Uncommitted

func parseBlockList(r io.Reader) ([]blockRef, error) {
	dec := xml.NewDecoder(r)
	var out []blockRef
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "BlockList" {
				return nil, fmt.Errorf("root element %s, want BlockList", t.Name.Local)
			}
			if depth == 2 {
				switch t.Name.Local {
				case "Latest", "Committed", "Uncommitted":
				default:
					return nil, fmt.Errorf("unknown element %s", t.Name.Local)
				}
				var id string
				if err := dec.DecodeElement(&id, &t); err != nil {
					return nil, err
				}
				depth--
				out = append(out, blockRef{t.Name.Local, strings.TrimSpace(id)})
			}
		case xml.EndElement:
			depth--
		}
	}
}

func (p *Plane) azurePutBlockList(w http.ResponseWriter, r *http.Request, b azureBlob) {
	refs, err := parseBlockList(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeAzureError(w, r, http.StatusBadRequest, "InvalidXmlDocument", "XML specified is not syntactically valid: "+err.Error(), "")
		return
	}
	defer lockFor(b.dir)()
	committed := map[string]span{}
	var off int64
	for _, c := range b.committed() {
		committed[c.ID] = span{path: b.path, off: off, size: c.Size}
		off += c.Size
	}
	uncommitted := map[string]azBlock{}
	for _, u := range b.uncommitted() {
		uncommitted[u.ID] = u
	}
	spans := make([]span, 0, len(refs))
	list := make([]azBlock, 0, len(refs))
	for _, ref := range refs {
		var s span
		var ok bool
		if ref.list != "Committed" {
			var u azBlock
			if u, ok = uncommitted[ref.id]; ok {
				s = span{path: b.blockFile(ref.id), size: u.Size}
			}
		}
		if !ok && ref.list != "Uncommitted" {
			s, ok = committed[ref.id]
		}
		if !ok {
			writeAzureError(w, r, http.StatusBadRequest, "InvalidBlockList", "The specified block list is invalid.", "")
			return
		}
		spans = append(spans, s)
		list = append(list, azBlock{ID: ref.id, Size: s.size})
	}
	h := md5.New()
	for _, blk := range list {
		h.Write([]byte(blk.ID))
	}
	if _, err := assemble(filepath.Join(b.st.Dir, stagingDir, "tmp"), b.path, spans); err != nil {
		writeAzureError(w, r, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.", "")
		return
	}
	// Committing discards every uncommitted block.
	os.RemoveAll(filepath.Join(b.dir, "blocks"))
	raw, _ := json.Marshal(list)
	os.MkdirAll(b.dir, 0o755)
	os.WriteFile(filepath.Join(b.dir, "committed.json"), raw, 0o644)
	azureWritten(w, h.Sum(nil))
}

func (p *Plane) azureGetBlockList(w http.ResponseWriter, r *http.Request, b azureBlob, listType string) {
	type block struct {
		Name string
		Size int64
	}
	type blocks struct {
		Block []block
	}
	res := struct {
		XMLName     xml.Name `xml:"BlockList"`
		Committed   *blocks  `xml:"CommittedBlocks,omitempty"`
		Uncommitted *blocks  `xml:"UncommittedBlocks,omitempty"`
	}{}
	listType = strings.ToLower(listType)
	if listType == "" {
		listType = "committed"
	}
	fi, statErr := os.Stat(b.path)
	unc := b.uncommitted()
	if statErr != nil && len(unc) == 0 {
		writeAzureError(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	if listType == "committed" || listType == "all" {
		res.Committed = &blocks{}
		for _, c := range b.committed() {
			res.Committed.Block = append(res.Committed.Block, block{c.ID, c.Size})
		}
	}
	if listType == "uncommitted" || listType == "all" {
		res.Uncommitted = &blocks{}
		for _, u := range unc {
			res.Uncommitted.Block = append(res.Uncommitted.Block, block{u.ID, u.Size})
		}
	}
	if statErr == nil {
		w.Header().Set("x-ms-blob-content-length", strconv.FormatInt(fi.Size(), 10))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}
