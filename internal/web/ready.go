package web

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds one readiness probe: a database that does not answer in time is not ready.
const readyTimeout = 3 * time.Second

// ReadyCheck is one thing /readyz looked at. Message says what is wrong in words an operator
// acts on; it never names a server path or a secret (the route is public).
type ReadyCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// ReadyReport is what /readyz answers: ready when every check passed.
type ReadyReport struct {
	Checks []ReadyCheck `json:"checks"`
	// Upload store space in bytes, the figures /metrics exports as ferry_upload_store_free_bytes,
	// ferry_disk_reserve_bytes and ferry_upload_promised_bytes; nil where the platform cannot tell.
	UploadStoreFreeBytes *int64 `json:"upload_store_free_bytes,omitempty"`
	DiskReserveBytes     int64  `json:"disk_reserve_bytes"`
	PromisedBytes        int64  `json:"upload_promised_bytes"`
}

// Ready reports whether every check passed.
func (r ReadyReport) Ready() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// readyz is the readiness probe: 200 when the server can take uploads and record them,
// 503 with the failing checks otherwise. /healthz stays the liveness probe (the process
// answers): a full disk is a reason to send traffic elsewhere, not to restart.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.opt.Ready == nil {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": []ReadyCheck{}})
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	rep := s.opt.Ready(ctx)
	status, code := "ready", http.StatusOK
	if !rep.Ready() {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, struct {
		Status string `json:"status"`
		ReadyReport
	}{status, rep})
	return nil
}
