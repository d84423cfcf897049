package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// scrape is one parsed answer of /metrics.
type scrape map[string]*dto.MetricFamily

func (h *harness) scrape() scrape {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// value sums the samples of name whose labels include every pair of want (a histogram
// counts its observations); -1 when the family is absent.
func (s scrape) value(name string, want ...string) float64 {
	f := s[name]
	if f == nil {
		return -1
	}
	var sum float64
metrics:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue metrics
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// labels lists the values label takes in name's samples.
func (s scrape) labels(name, label string) []string {
	var out []string
	for _, m := range s[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// newMetricsE2E is the real App with a connection to an emulator, a slow iconik rate limit
// (so calls wait for it), deliveries that give up at a file's first failure (stored files
// beginning with "FAIL" cannot be read) and email kept in the outbox.
func newMetricsE2E(t *testing.T) (*harness, string) {
	t.Helper()
	h := startHarness(t, t.TempDir(), Options{Iconik: iconik.Options{RateLimit: 10}, Delivery: giveUpOnFAIL}, nil)
	emu := emulatortest.Start(t, emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	connID := connectEmulator(t, h, emu)
	h.startJobs()
	return h, connID
}

// waitDeliverySettled waits (bounded) until the package's only delivery settles.
func (h *harness) waitDeliverySettled(pkgID string) web.Delivery {
	h.t.Helper()
	deadline := time.Now().Add(e2eBound)
	for {
		var list struct {
			Deliveries []web.Delivery `json:"deliveries"`
		}
		resp, body := h.req("GET", "/api/v1/packages/"+pkgID+"/deliveries", nil, h.admin()...)
		h.mustJSON(resp, body, 200, &list)
		if len(list.Deliveries) == 1 {
			switch d := list.Deliveries[0]; d.State {
			case "delivered", "partially_failed", "failed":
				return d
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the delivery of %s did not settle: %s", pkgID, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsArePresentAndMoveWithUploadsDeliveriesAndNotifications scrapes /metrics from a
// running server, parses it with Prometheus' own text parser, and checks that each metric is
// there from the start and moves when its event happens: an upload in flight and finished,
// a delivery to the emulator, a failed delivery, the notifications they send, and iconik
// calls that waited for the rate limit.
func TestMetricsArePresentAndMoveWithUploadsDeliveriesAndNotifications(t *testing.T) {
	h, connID := newMetricsE2E(t)
	before := h.scrape()
	for _, name := range []string{
		"ferry_upload_bytes_received_total", "ferry_delivery_bytes_read_total", "ferry_delivered_bytes_total", "ferry_uploads_active",
		"ferry_uploads_total", "ferry_deliveries_total", "ferry_delivery_duration_seconds",
		"ferry_iconik_requests_total", "ferry_iconik_rate_limit_waits_total", "ferry_iconik_rate_limit_wait_seconds_total",
		"ferry_river_jobs", "ferry_upload_store_free_bytes", "ferry_disk_reserve_bytes", "ferry_upload_promised_bytes",
	} {
		if before.value(name) < 0 {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if before.value("ferry_upload_store_free_bytes") <= 0 {
		t.Errorf("free bytes of the data directory: %v", before.value("ferry_upload_store_free_bytes"))
	}
	if got := before.labels("ferry_river_jobs", "state"); len(got) != 8 {
		t.Errorf("River job states exported: %v, want all 8", got)
	}

	h.portal(map[string]any{"name": "Shoot", "slug": "shoot", "active": true, "password": "letmein", "connection_ids": []string{connID},
		"recipients": []string{"producer@example.com"}})

	// An upload in flight counts as active until its body has arrived.
	good := h.newPackage("shoot")
	data := bytes.Repeat([]byte("ferry metrics "), 1<<16) // 896 KiB
	h.holdUploadOpen(good.UploadToken, "clip.mov", data, func() {
		if got := h.scrape().value("ferry_uploads_active"); got != 1 {
			t.Errorf("ferry_uploads_active during an upload = %v, want 1", got)
		}
	})
	h.upload(good.UploadToken, "notes/readme.txt", []byte("hello"))
	var resp *http.Response
	var body []byte
	resp, body = h.req("POST", "/p/shoot/packages/"+good.Package.ID+"/finalize", nil, "Authorization", "Bearer "+good.UploadToken)
	h.mustJSON(resp, body, 200, nil)

	// An upload whose bytes do not match the SHA-256 its sender declared, and one the sender
	// cancels (tus termination) before sending anything.
	other := h.newPackage("shoot")
	resp, body = h.tusUpload(other.UploadToken, map[string]string{"relativePath": "wrong.mov", "sha256": strings.Repeat("ab", 32)}, []byte("not those bytes"))
	if resp.StatusCode < 400 {
		t.Fatalf("an upload with the wrong SHA-256: %d %s", resp.StatusCode, body)
	}
	resp, body = h.req("POST", "/uploads/", nil, "Tus-Resumable", "1.0.0", "Upload-Length", "10", "Authorization", "Bearer "+other.UploadToken,
		"Upload-Metadata", "relativePath "+base64.StdEncoding.EncodeToString([]byte("never.mov")))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	resp, body = h.req("DELETE", loc[strings.Index(loc, "/uploads/"):], nil, "Tus-Resumable", "1.0.0", "Authorization", "Bearer "+other.UploadToken)
	if resp.StatusCode != 204 {
		t.Fatalf("terminate: %d %s", resp.StatusCode, body)
	}

	bad := h.newPackage("shoot")
	h.upload(bad.UploadToken, "broken.mov", []byte("FAIL: these bytes cannot be read back"))
	resp, body = h.req("POST", "/p/shoot/packages/"+bad.Package.ID+"/finalize", nil, "Authorization", "Bearer "+bad.UploadToken)
	h.mustJSON(resp, body, 200, nil)

	if d := h.waitDeliverySettled(good.Package.ID); d.State != "delivered" {
		t.Fatalf("good package: %+v", d)
	}
	if d := h.waitDeliverySettled(bad.Package.ID); d.State != "failed" {
		t.Fatalf("bad package: %+v", d)
	}
	// Each settled delivery mails the recipient (outbox here): wait for both.
	h.notifications(good.Package.ID, "transfer", 1)
	h.notifications(bad.Package.ID, "transfer", 1)

	after := h.scrape()
	moved := func(name string, atLeast float64, labels ...string) {
		t.Helper()
		if d := after.value(name, labels...) - max(before.value(name, labels...), 0); d < atLeast {
			t.Errorf("%s%v moved by %v, want at least %v", name, labels, d, atLeast)
		}
	}
	moved("ferry_upload_bytes_received_total", float64(len(data)+5))
	moved("ferry_uploads_total", 3, "outcome", "completed")
	moved("ferry_uploads_total", 1, "outcome", "failed")
	moved("ferry_uploads_total", 1, "outcome", "cancelled")
	moved("ferry_deliveries_total", 1, "outcome", "delivered")
	moved("ferry_deliveries_total", 1, "outcome", "failed")
	moved("ferry_delivery_duration_seconds", 2)
	moved("ferry_delivery_bytes_read_total", float64(len(data)+5))
	// The failed package's bytes were never delivered: exactly the good package's count.
	if d := after.value("ferry_delivered_bytes_total") - before.value("ferry_delivered_bytes_total"); d != float64(len(data)+5) {
		t.Errorf("ferry_delivered_bytes_total moved by %v, want %d", d, len(data)+5)
	}
	moved("ferry_iconik_requests_total", 1, "method", "POST", "route", "/API/assets/v1/assets/", "status", "201")
	moved("ferry_iconik_rate_limit_waits_total", 1)
	moved("ferry_notifications_total", 2, "channel", "email", "outcome", "sent")
	if after.value("ferry_uploads_active") != 0 {
		t.Errorf("ferry_uploads_active after the uploads = %v", after.value("ferry_uploads_active"))
	}
	if after.value("ferry_river_jobs", "state", "completed") < 2 {
		t.Errorf("ferry_river_jobs{state=completed} = %v after two deliveries", after.value("ferry_river_jobs", "state", "completed"))
	}
	// Route templates, not URLs: no id ever reaches a label.
	for _, r := range after.labels("ferry_iconik_requests_total", "route") {
		if uuidish.MatchString(r) {
			t.Errorf("iconik route label %q looks like it holds an id", r)
		}
	}
}

var uuidish = regexp.MustCompile(`[0-9a-f]{8}-?[0-9a-f]{4}`)

// holdUploadOpen creates an upload and sends its PATCH on a raw connection, runs during
// while half of the body is on the wire, then sends the rest and checks the answer.
func (h *harness) holdUploadOpen(tok, relPath string, data []byte, during func()) {
	h.t.Helper()
	t := h.t
	req, _ := http.NewRequest("POST", h.srv.URL+"/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", fmt.Sprint(len(data)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Upload-Metadata", "relativePath "+base64.StdEncoding.EncodeToString([]byte(relPath)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	path := loc[strings.Index(loc, "/uploads/"):]
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n"+
		"Content-Type: application/offset+octet-stream\r\nAuthorization: Bearer %s\r\n\r\n", path, len(data), tok)
	half := len(data) / 2
	if _, err := conn.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	// The handler has the request once the server counts it; wait for that (bounded).
	deadline := time.Now().Add(time.Minute)
	for h.scrape().value("ferry_uploads_active") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	during()
	if _, err := conn.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("the held upload did not finish: %+v %v", resp, err)
	}
}
