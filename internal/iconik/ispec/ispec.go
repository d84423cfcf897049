package ispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvSpecDir overrides where the spec files are read from (a directory holding the eight files).
const EnvSpecDir = "FERRY_ICONIK_SPEC"

// Services are the iconik services whose specs are loaded; each file is <service>.json and is
// served under /API/<service>/.
var Services = []string{"assets", "auth", "files", "jobs", "metadata", "search", "transcode", "users"}

// Spec holds the loaded specs, one router per service.
type Spec struct {
	services map[string]*service
}

type service struct {
	doc    *openapi3.T
	router routers.Router
}

var loadOnce = sync.OnceValues(func() (*Spec, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return LoadDir(dir)
})

// Load loads the specs once per process from Dir().
func Load() (*Spec, error) { return loadOnce() }

// Dir returns the spec directory: $FERRY_ICONIK_SPEC if set, else <repo root>/../shared/iconik/spec,
// where the repo root is the nearest directory at or above the working directory holding go.mod.
func Dir() (string, error) {
	if d := os.Getenv(EnvSpecDir); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ispec: finding spec directory: %w", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "iconik", "spec"), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("ispec: no go.mod at or above %s; set %s to the spec directory", wd, EnvSpecDir)
		}
		d = parent
	}
}

// LoadDir loads <dir>/<service>.json for every service in Services.
func LoadDir(dir string) (*Spec, error) {
	s := &Spec{services: make(map[string]*service, len(Services))}
	for _, name := range Services {
		path := filepath.Join(dir, name+".json")
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("ispec: loading %s: %w", path, err)
		}
		// CONTRACT.md §1 "JSON conventions": iconik returns explicit null in fields the spec does
		// not mark nullable, so every schema is nullable. Nothing else is loosened.
		err = doc.WalkSchemas(func(_ string, sr *openapi3.SchemaRef) error {
			sr.Value.Nullable = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ispec: walking schemas of %s: %w", path, err)
		}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("ispec: building router for %s: %w", path, err)
		}
		s.services[name] = &service{doc: doc, router: router}
	}
	return s, nil
}

// Mismatch is returned when traffic does not match the spec.
type Mismatch struct {
	Method, Path string
	Status       int    // 0 for a request
	Problem      string // what does not match
}

func (m *Mismatch) Error() string {
	if m.Status != 0 {
		return fmt.Sprintf("iconik spec: %s %s -> %d: %s", m.Method, m.Path, m.Status, m.Problem)
	}
	return fmt.Sprintf("iconik spec: %s %s: %s", m.Method, m.Path, m.Problem)
}

// IsAPIPath reports whether a URL path is iconik API traffic (the only traffic ispec checks).
func IsAPIPath(p string) bool { return strings.HasPrefix(p, "/API/") }

// route finds the operation for r. Paths without a trailing slash are tried with one, because
// every spec path ends in "/" and the emulator accepts both.
func (s *Spec) route(r *http.Request) (*routers.Route, map[string]string, error) {
	p := r.URL.Path
	if !IsAPIPath(p) {
		return nil, nil, fmt.Errorf("not an iconik API path")
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(p, "/API/"), "/")
	svc := s.services[name]
	if svc == nil {
		return nil, nil, fmt.Errorf("no spec for service %q", name)
	}
	route, params, err := svc.router.FindRoute(r)
	if err != nil && !strings.HasSuffix(p, "/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path = p + "/"
		r2.URL.RawPath = ""
		route, params, err = svc.router.FindRoute(r2)
	}
	if err != nil {
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			return nil, nil, fmt.Errorf("method not declared for this path in %s.json", name)
		case errors.Is(err, routers.ErrPathNotFound):
			return nil, nil, fmt.Errorf("path not declared in %s.json", name)
		}
		return nil, nil, fmt.Errorf("routing in %s.json: %w", name, err)
	}
	return route, params, nil
}

func options() *openapi3filter.Options {
	o := &openapi3filter.Options{
		MultiError:          true,
		SkipSettingDefaults: true, // validation must not change what is checked
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
	}
	o.WithCustomSchemaErrorFunc(func(e *openapi3.SchemaError) string {
		// Short, value-free messages: a value may be a token or signed URL.
		ptr := "/" + strings.Join(e.JSONPointer(), "/")
		return fmt.Sprintf("at %s: %s", ptr, e.Reason)
	})
	return o
}

func (s *Spec) requestInput(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := s.route(r)
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(context.Background())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	if len(body) == 0 {
		r2.Body = http.NoBody
	}
	return &openapi3filter.RequestValidationInput{
		Request: r2, PathParams: params, Route: route, Options: options(),
	}, nil
}

// ValidateRequest checks r (with its body given separately, as r.Body may be consumed) against
// the spec: the operation exists, required headers and parameters are present and well-typed,
// and the JSON body matches the request schema. It returns *Mismatch on a mismatch.
func (s *Spec) ValidateRequest(r *http.Request, body []byte) error {
	in, err := s.requestInput(r, body)
	if err != nil {
		return &Mismatch{Method: r.Method, Path: r.URL.Path, Problem: err.Error()}
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return &Mismatch{Method: r.Method, Path: r.URL.Path, Problem: describe(err)}
	}
	return nil
}

// ValidateResponse checks a response to r against the spec. A status the operation does not
// declare is a mismatch (the "default" response does not count as declaring it), except 429 and
// 5xx: the specs never declare them but iconik sends them (rate limiting, outages), and their
// bodies may come from proxies, so they are not checked at all.
func (s *Spec) ValidateResponse(r *http.Request, status int, header http.Header, body []byte) error {
	mismatch := func(problem string) error {
		return &Mismatch{Method: r.Method, Path: r.URL.Path, Status: status, Problem: problem}
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return nil
	}
	in, err := s.requestInput(r, nil)
	if err != nil {
		return mismatch(err.Error())
	}
	responses := in.Route.Operation.Responses
	if responses == nil || responses.Status(status) == nil {
		var declared []string
		if responses != nil {
			for k := range responses.Map() {
				if k != "default" {
					declared = append(declared, k)
				}
			}
		}
		slices.Sort(declared)
		return mismatch(fmt.Sprintf("status %d not declared (declared: %s)", status, strings.Join(declared, " ")))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                in.Options,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return mismatch(describe(err))
	}
	return nil
}

// describe flattens kin-openapi's nested errors into one line per problem. It never prints
// values (they may be tokens or signed URLs), only locations and reasons.
func describe(err error) string {
	var lines []string
	var walk func(prefix string, err error)
	walk = func(prefix string, err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, x := range e {
				walk(prefix, x)
			}
		case *openapi3filter.RequestError:
			p := prefix
			switch {
			case e.Parameter != nil:
				p += fmt.Sprintf("%s parameter %q: ", e.Parameter.In, e.Parameter.Name)
			case e.RequestBody != nil:
				p += "request body "
			}
			if e.Err == nil {
				lines = append(lines, p+e.Reason)
				return
			}
			if e.Reason != "" && e.Reason != e.Err.Error() && !isSchemaOrMulti(e.Err) {
				p += e.Reason + ": "
			}
			walk(p, e.Err)
		case *openapi3filter.ResponseError:
			if e.Err == nil {
				lines = append(lines, prefix+e.Reason)
				return
			}
			walk(prefix+"response body ", e.Err)
		case *openapi3.SchemaError:
			ptr := "/" + strings.Join(e.JSONPointer(), "/")
			lines = append(lines, fmt.Sprintf("%sat %s: %s", prefix, ptr, e.Reason))
		default:
			lines = append(lines, prefix+err.Error())
		}
	}
	walk("", err)
	return strings.Join(lines, "; ")
}

func isSchemaOrMulti(err error) bool {
	switch err.(type) {
	case openapi3.MultiError, *openapi3.SchemaError:
		return true
	}
	return false
}

// Operation names the spec operation r routes to ("POST /v1/assets/" in assets.json), for
// messages and tests.
func (s *Spec) Operation(r *http.Request) (string, error) {
	route, _, err := s.route(r)
	if err != nil {
		return "", err
	}
	return route.Method + " " + route.Path, nil
}

// DeclaredStatuses lists the statuses the operation of r declares (without "default").
func (s *Spec) DeclaredStatuses(r *http.Request) ([]int, error) {
	route, _, err := s.route(r)
	if err != nil {
		return nil, err
	}
	var out []int
	for k := range route.Operation.Responses.Map() {
		if n, err := strconv.Atoi(k); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}
