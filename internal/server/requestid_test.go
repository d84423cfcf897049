package server

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestEveryRequestHasAnIDInItsAnswerItsErrorsAndItsLogLines: each request gets an id (a sane
// incoming X-Request-Id is kept, anything else replaced by a generated one), echoed in the
// X-Request-Id header, inside JSON error answers (API and tus alike), and in every log line
// the request writes, through the process logger.
func TestEveryRequestHasAnIDInItsAnswerItsErrorsAndItsLogLines(t *testing.T) {
	var logs testbed.Buffer
	logger := NewLoggerTo(&logs, config.Config{LogLevel: "debug"})
	h := startHarness(t, t.TempDir(), Options{Logger: logger}, nil)
	tok := h.token
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	cases := []struct {
		name, method, path, incoming string
		hdr                          []string
		status                       int
		keep                         bool // the incoming id is kept
	}{
		{"API error, sane id kept", "GET", "/api/v1/packages/nope", "trace-42.a:b_c", []string{"Authorization", "Bearer " + tok}, 404, true},
		{"no id: one is generated", "GET", "/api/v1/portals", "", []string{"Authorization", "Bearer nonsense"}, 401, false},
		{"log-forging id replaced", "GET", "/api/v1/portals", "x\" level=ERROR msg=forged", nil, 401, false},
		{"overlong id replaced", "GET", "/nothing-here", strings.Repeat("a", 200), nil, 404, false},
		{"tus refusal carries it too", "POST", "/uploads/", "tus-refusal-1", []string{"Tus-Resumable", "1.0.0", "Upload-Length", "5",
			"Authorization", "Bearer unknown-upload-token"}, 401, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := append([]string(nil), c.hdr...)
			if c.incoming != "" {
				hdr = append(hdr, "X-Request-Id", c.incoming)
			}
			resp, body := h.req(c.method, c.path, nil, hdr...)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
			}
			id := resp.Header.Get("X-Request-Id")
			if c.keep && id != c.incoming {
				t.Fatalf("X-Request-Id = %q, want the incoming %q kept", id, c.incoming)
			}
			if !c.keep && !generated.MatchString(id) {
				t.Fatalf("X-Request-Id = %q, want a generated id", id)
			}
			var e struct {
				Error struct{ Code, Message, RequestID string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
				t.Fatalf("error answer %s: %v", body, err)
			}
			var raw map[string]map[string]any
			_ = json.Unmarshal(body, &raw)
			if raw["error"]["request_id"] != id {
				t.Fatalf("error answer %s: request_id is not %q", body, id)
			}
		})
	}

	// A request that logs (a refused upload logs at ingest and tusd level): every line it
	// writes carries its id.
	resp, _ := h.req("POST", "/uploads/", nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5", "X-Request-Id", "logged-req-7")
	if resp.Header.Get("X-Request-Id") != "logged-req-7" {
		t.Fatalf("X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
	}
	var mine, without []string
	for _, l := range logs.Lines() {
		if strings.Contains(l, "/uploads/") && strings.Contains(l, "method=POST") || strings.Contains(l, "logged-req-7") {
			mine = append(mine, l)
			if !strings.Contains(l, "request_id=logged-req-7") {
				without = append(without, l)
			}
		}
	}
	if len(mine) == 0 {
		t.Fatalf("the request logged nothing:\n%s", strings.Join(logs.Lines(), "\n"))
	}
	if len(without) > 0 {
		t.Fatalf("log lines of the request without request_id=logged-req-7:\n%s", strings.Join(without, "\n"))
	}
	// The API's contract documents the field.
	resp, doc := h.req("GET", "/api/v1/openapi.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(doc), `"request_id"`) {
		t.Fatalf("the OpenAPI document does not describe request_id in its error schema")
	}
}
