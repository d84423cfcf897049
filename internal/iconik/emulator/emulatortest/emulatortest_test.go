package emulatortest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// recTB records Errorf instead of failing the test.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestStartFailsTheTestOnTrafficOffTheSpec: a test that only calls Start
// gets the check; an off-spec request from any client fails it, a valid one
// and a request marked as deliberately off-spec do not.
func TestStartFailsTheTestOnTrafficOffTheSpec(t *testing.T) {
	cases := []struct {
		name, body string
		deliberate bool
		failures   int
	}{
		{name: "valid", body: `{"title": "fine"}`},
		{name: "bad enum", body: `{"title": "bad", "type": "MOVIE"}`, failures: 1},
		{name: "bad enum on purpose", body: `{"title": "bad", "type": "MOVIE"}`, deliberate: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recTB{TB: t}
			e := emulatortest.Start(rec, emulator.Options{})
			cred := e.Cred("admin")
			req, _ := http.NewRequest("POST", e.URL+"/API/assets/v1/assets/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("App-ID", cred.AppID)
			req.Header.Set("Auth-Token", cred.Token)
			if tc.deliberate {
				req.Header.Set(emulator.HeaderUncheckedRequest, "deliberate")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.errs) != tc.failures {
				t.Fatalf("test failures %q, want %d", rec.errs, tc.failures)
			}
		})
	}
}
