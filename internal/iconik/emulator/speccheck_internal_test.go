package emulator

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/ispec"
)

// TestSpecCheckJudgesTrafficAndAllowsOnlyDocumentedExtras runs the check in
// front of a stand-in handler whose answers are data, so both sides of every
// rule are exercised: what must be reported is, what CONTRACT.md documents
// beyond the specs is not.
func TestSpecCheckJudgesTrafficAndAllowsOnlyDocumentedExtras(t *testing.T) {
	spec, err := ispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	const user = `{"id": "8f1c2bde-0000-1000-8000-000000000001", "email": "a@b.example", "first_name": "A", "type": "POWER", "status": "ACTIVE"}`
	coll := "/API/assets/v1/collections/8f1c2bde-0000-1000-8000-000000000002/"
	cases := []struct {
		name, method, path, body string
		unchecked                bool
		status                   int
		answer                   string
		reported                 string // "" = no mismatch; else a part of a reported one
	}{
		{name: "valid request and answer", method: "GET", path: "/API/users/v1/users/current/", status: 200, answer: user},
		{name: "answer off the schema", method: "GET", path: "/API/users/v1/users/current/", status: 200, answer: `{"id": 5}`, reported: "/id"},
		{name: "request with a bad enum", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "t", "type": "MOVIE"}`, status: 400, answer: `{"errors": {"type": "bad"}}`, reported: "/type"},
		{name: "request off-spec on purpose", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "t", "type": "MOVIE"}`, unchecked: true, status: 400, answer: `{"errors": {"type": "bad"}}`},
		{name: "off-spec on purpose, declared answer still checked", method: "GET", path: "/API/users/v1/users/current/", unchecked: true, status: 200, answer: `{"id": 5}`, reported: "/id"},
		{name: "path the spec does not have", method: "GET", path: "/API/assets/v1/nothing/here/", status: 404, answer: `{"errors": ["x"]}`, reported: "not declared"},
		{name: "missing role answered with the configured status", method: "POST", path: "/API/jobs/v1/jobs/", body: `{"title": "t", "type": "TRANSFER", "status": "STARTED"}`, status: 418, answer: `{"errors": ["Permission denied"]}`},
		{name: "undeclared status with another message", method: "POST", path: "/API/jobs/v1/jobs/", body: `{"title": "t", "type": "TRANSFER", "status": "STARTED"}`, status: 418, answer: `{"errors": ["I am a teapot"]}`, reported: "418 not declared"},
		{name: "bad token on any operation", method: "GET", path: "/API/users/v1/users/current/", status: 401, answer: `{"errors": ["Token is invalid"]}`},
		{name: "unknown collection is 404 in practice", method: "GET", path: coll, status: 404, answer: `{"errors": ["Collection does not exist"]}`},
		{name: "404 only where CONTRACT.md says so", method: "POST", path: "/API/jobs/v1/jobs/", body: `{"title": "t", "type": "TRANSFER", "status": "STARTED"}`, status: 404, answer: `{"errors": ["Collection does not exist"]}`, reported: "404 not declared"},
		{name: "rate limited", method: "GET", path: "/API/users/v1/users/current/", status: 429, answer: `{"errors": ["Too many requests"]}`},
		{name: "server error", method: "GET", path: "/API/users/v1/users/current/", status: 503, answer: `<html>proxy</html>`},
		{name: "not the API", method: "PUT", path: "/_storage/s3/x/y", body: "bytes", status: 200, answer: "<xml/>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.answer))
			})
			h := checkSpec(next, spec, 418, func(err error) { got = append(got, err.Error()) })
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("App-ID", "app")
			req.Header.Set("Auth-Token", "token")
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.unchecked {
				req.Header.Set(HeaderUncheckedRequest, "deliberate")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Body.String() != tc.answer {
				t.Fatalf("the check changed the answer: %d %q", rec.Code, rec.Body.String())
			}
			switch {
			case tc.reported == "" && len(got) != 0:
				t.Fatalf("reported %q, want nothing", got)
			case tc.reported != "" && !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, tc.reported) }):
				t.Fatalf("reported %q, want a mismatch naming %q", got, tc.reported)
			}
		})
	}
}
