package emulator

// The spec check judges the emulator's own traffic against iconik's official
// specs. It imports internal/iconik/ispec, which is the spec (iconik's
// contract) and not ferry's domain, so the emulator stays a separate iconik.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/ferryhq/ferry/internal/iconik/ispec"
)

// HeaderUncheckedRequest marks a request a test sends off-spec on purpose
// (malformed JSON, a bad enum): the spec check skips the request and checks
// the answer only when the spec declares its status.
const HeaderUncheckedRequest = "X-Iconik-Emulator-Unchecked-Request"

// undeclaredAnswer is an answer iconik gives that its specs do not declare.
type undeclaredAnswer struct {
	op      string // "GET /v1/collections/{collection_id}/" in the service's spec; "" = every operation
	status  int    // 0 = Faults.MissingRoleStatus
	message string // the one message of the list-shaped error body
}

// undeclaredAnswers are the answers CONTRACT.md documents beyond the specs.
// 429 and 5xx are not here: ispec never checks them (rate limits, outages).
var undeclaredAnswers = []undeclaredAnswer{
	// §5 Auth: 401 "Token is invalid" for a missing or unknown App-ID or token, on any operation.
	{status: http.StatusUnauthorized, message: "Token is invalid"},
	// §1 Roles: the status for a missing role is unknown; the emulator's is configurable.
	{status: 0, message: "Permission denied"},
	// §2 Collections: "404 for unknown ids in practice".
	{op: "GET /v1/collections/{collection_id}/", status: http.StatusNotFound, message: "Collection does not exist"},
}

// allowedUndeclared reports whether an answer the spec does not declare is
// one of undeclaredAnswers.
func allowedUndeclared(spec *ispec.Spec, r *http.Request, missingRole, status int, body []byte) bool {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 {
		return false
	}
	op, err := spec.Operation(r)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(undeclaredAnswers, func(a undeclaredAnswer) bool {
		want := a.status
		if want == 0 {
			want = missingRole
		}
		return want == status && a.message == e.Errors[0] && (a.op == "" || a.op == op)
	})
}

// CheckSpec wraps an emulator's handler (Server.Handler) with the spec check
// that Options.CheckSpec installs, for a test that serves the handler behind
// faults of its own making; missingRoleStatus is Faults.MissingRoleStatus
// (0 = 403). report is called once per mismatch.
func CheckSpec(next http.Handler, missingRoleStatus int, report func(mismatch error)) (http.Handler, error) {
	spec, err := ispec.Load()
	if err != nil {
		return nil, fmt.Errorf("iconik emulator: loading the specs to check traffic against: %w", err)
	}
	if missingRoleStatus == 0 {
		missingRoleStatus = http.StatusForbidden
	}
	return checkSpec(next, spec, missingRoleStatus, report), nil
}

// checkSpec wraps the emulator's handler: every /API/ request and the answer
// to it are checked with ispec, and each mismatch is passed to report. Other
// traffic (data plane, keyframes, browse page) is not iconik's API and passes
// unchecked.
func checkSpec(next http.Handler, spec *ispec.Spec, missingRole int, report func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ispec.IsAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			writeErrors(w, http.StatusBadRequest, "Could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		unchecked := r.Header.Get(HeaderUncheckedRequest) != ""
		if !unchecked {
			if err := spec.ValidateRequest(r, body); err != nil {
				report(err)
			}
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if !rec.wroteHeader && r.Context().Err() != nil {
			return // the caller left before any answer (e.g. its deadline passed during --latency)
		}
		if err := spec.ValidateResponse(r, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			if allowedUndeclared(spec, r, missingRole, rec.status, rec.body.Bytes()) {
				return
			}
			if unchecked {
				declared, derr := spec.DeclaredStatuses(r)
				if derr != nil || !slices.Contains(declared, rec.status) {
					return
				}
			}
			report(err)
		}
	})
}

// recorder passes an answer through while keeping its status and body.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (rw *recorder) WriteHeader(status int) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = status, true
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *recorder) Write(b []byte) (int, error) {
	rw.wroteHeader = true
	rw.body.Write(b)
	return rw.ResponseWriter.Write(b)
}
