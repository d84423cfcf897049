package emulator_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
)

// client talks to the emulator as one credential. Every request and response
// goes through ispec: valid requests are checked whole (request and response);
// deliberately bad requests (raw) get their response checked whenever the
// spec declares its status, and otherwise must carry iconik's error shape.
type client struct {
	t    testing.TB
	e    *emulatortest.Emulator
	cred emulator.Credential
	http *http.Client
	spec *ispec.Spec
	// rawHTTP sends requests that skip request validation (nil = default client).
	rawHTTP *http.Client
}

func newClient(t testing.TB, e *emulatortest.Emulator, name string) *client {
	t.Helper()
	spec, err := ispec.Load()
	if err != nil {
		t.Fatalf("loading iconik spec: %v", err)
	}
	return &client{t: t, e: e, cred: e.Cred(name), http: &http.Client{Transport: ispectest.Transport(t, nil)}, spec: spec}
}

func (c *client) as(name string) *client {
	cc := *c
	cc.cred = c.e.Cred(name)
	return &cc
}

// reply is a decoded response.
type reply struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r reply) str(k string) string { s, _ := r.Body[k].(string); return s }

func (r reply) objects() []map[string]any {
	var out []map[string]any
	objs, _ := r.Body["objects"].([]any)
	for _, o := range objs {
		m, _ := o.(map[string]any)
		out = append(out, m)
	}
	return out
}

func (c *client) newRequest(method, path string, body []byte) *http.Request {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.e.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("App-ID", c.cred.AppID)
	req.Header.Set("Auth-Token", c.cred.Token)
	return req
}

// do sends a valid request through the ispec transport.
func (c *client) do(method, path string, body any) reply {
	c.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	if method == http.MethodPatch {
		// iconik's PATCH bodies reuse the full schemas, required fields
		// included, yet PATCH is partial (CONTRACT.md §2): only the response
		// is checked.
		return c.raw(method, path, string(raw), nil)
	}
	return c.send(c.http, c.newRequest(method, path, raw))
}

func (c *client) send(hc *http.Client, req *http.Request) reply {
	c.t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			c.t.Fatalf("%s %s: response is not JSON: %v: %s", req.Method, req.URL.Path, err, raw)
		}
		r.Body, _ = v.(map[string]any)
	}
	return r
}

// raw sends a request that may be deliberately invalid (bad JSON, missing
// fields, bad token): the request is not checked against the spec; the
// response is, when its status is declared, and must be iconik's error shape
// when it is a 4xx.
func (c *client) raw(method, path, body string, header http.Header) reply {
	c.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	req := c.newRequest(method, path, b)
	for k, v := range header {
		req.Header[k] = v
	}
	// Deliberately off-spec: the emulator's own spec check must not count it.
	req.Header.Set(emulator.HeaderUncheckedRequest, "deliberate")
	hc := c.rawHTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	r := c.send(hc, req)
	declared, err := c.spec.DeclaredStatuses(req)
	if err != nil {
		c.t.Fatalf("%s %s: no spec operation: %v", method, path, err)
	}
	if slices.Contains(declared, r.Status) {
		if err := c.spec.ValidateResponse(req, r.Status, r.Header, r.Raw); err != nil {
			c.t.Errorf("%v", err)
		}
	}
	if r.Status >= 400 {
		if _, ok := r.Body["errors"]; !ok {
			c.t.Errorf("%s %s -> %d: body %s is not iconik's {\"errors\": ...}", method, path, r.Status, r.Raw)
		}
	}
	return r
}

func (c *client) must(want int, r reply, what string) reply {
	c.t.Helper()
	if r.Status != want {
		c.t.Fatalf("%s: status %d, want %d: %s", what, r.Status, want, r.Raw)
	}
	return r
}

// waitJob polls a job until it leaves READY/STARTED.
func (c *client) waitJob(id string) reply {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.must(200, c.do("GET", "/API/jobs/v1/jobs/"+id+"/", nil), "get job")
		if st := r.str("status"); st != "READY" && st != "STARTED" {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s still %s after 60s", id, r.str("status"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *client) storageID(name string) string {
	c.t.Helper()
	r := c.must(200, c.do("GET", "/API/files/v1/storages/?name="+name, nil), "find storage")
	objs := r.objects()
	if len(objs) != 1 {
		c.t.Fatalf("storage %s: %d matches", name, len(objs))
	}
	return objs[0]["id"].(string)
}

// newFile creates asset, format, file set and file on a storage.
func (c *client) newFile(storage, dir, name string, size int) (assetID string, file reply) {
	c.t.Helper()
	sid := c.storageID(storage)
	a := c.must(201, c.do("POST", "/API/assets/v1/assets/", map[string]any{"title": name, "type": "ASSET"}), "create asset")
	assetID = a.str("id")
	f := c.must(201, c.do("POST", "/API/files/v1/assets/"+assetID+"/formats/", map[string]any{
		"name": "ORIGINAL", "metadata": []any{map[string]any{"internet_media_type": "application/octet-stream"}}, "storage_methods": []string{"S3"}}), "create format")
	fs := c.must(201, c.do("POST", "/API/files/v1/assets/"+assetID+"/file_sets/", map[string]any{
		"format_id": f.str("id"), "storage_id": sid, "base_dir": dir, "name": name, "component_ids": []string{}}), "create file set")
	file = c.must(201, c.do("POST", "/API/files/v1/assets/"+assetID+"/files/", map[string]any{
		"original_name": name, "directory_path": dir, "size": size, "type": "FILE", "storage_id": sid,
		"file_set_id": fs.str("id"), "format_id": f.str("id")}), "create file")
	return assetID, file
}

// putS3 uploads data with a file's S3 upload_url (a presigned PUT).
func putS3(t *testing.T, url string, data []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest("PUT", url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func httptestServer(t *testing.T, s *emulator.Server) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	s.SetBaseURL(srv.URL)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient2(t *testing.T) (*http.Client, *ispec.Spec) {
	t.Helper()
	spec, err := ispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: ispectest.Transport(t, nil)}, spec
}

func decodePNG(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
