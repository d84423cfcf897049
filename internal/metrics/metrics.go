package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of an upload (ferry_uploads_total{outcome}).
const (
	UploadCompleted = "completed" // the file is recorded complete
	UploadRefused   = "refused"   // the domain refused to record it (limits, a replaced file)
	UploadFailed    = "failed"    // its bytes failed the integrity check
	UploadCancelled = "cancelled" // terminated by the sender (tus DELETE)
)

// Metrics are ferry's metrics on their own registry. The zero of each field is not usable:
// build with New. Every method is safe for concurrent use and on a nil *Metrics (no-op), so
// a component built without metrics (a test, a tool) needs no special case.
type Metrics struct {
	reg *prometheus.Registry

	bytesReceived   prometheus.Counter
	bytesDelivered  prometheus.Counter
	bytesSettled    prometheus.Counter
	activeUploads   prometheus.Gauge
	uploads         *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	deliveryLatency prometheus.Histogram
	iconikCalls     *prometheus.CounterVec
	rateLimitWaits  prometheus.Counter
	rateLimitWaited prometheus.Counter
	notifications   *prometheus.CounterVec
}

// New builds the metrics and registers them, with Go runtime and process metrics, on a new
// registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_upload_bytes_received_total",
			Help: "Upload body bytes read from senders (tus PATCH and creation-with-upload)."}),
		bytesDelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_delivery_bytes_read_total",
			Help: "Package bytes read from the upload store to be delivered to iconik storage (a retried part is read again)."}),
		bytesSettled: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_delivered_bytes_total",
			Help: "Bytes of files delivered into iconik, counted when their delivery settles."}),
		activeUploads: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_uploads_active",
			Help: "Upload requests receiving bytes on this replica right now."}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_uploads_total",
			Help: "Uploads that ended, by outcome (completed, refused, failed, cancelled)."}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_deliveries_total",
			Help: "Deliveries that settled, by outcome (delivered, partially_failed, failed)."}, []string{"outcome"}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ferry_delivery_duration_seconds",
			Help: "Time from a delivery's creation to its settling.",
			// From a small file delivered in seconds to terabytes over a day.
			Buckets: []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600}}),
		iconikCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_iconik_requests_total",
			Help: "HTTP requests to iconik's API (each attempt), by method, route template and status (\"error\" when no answer came)."},
			[]string{"method", "route", "status"}),
		rateLimitWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_iconik_rate_limit_waits_total",
			Help: "iconik calls that waited for the per-App-ID rate limit (or a 429's pause) before being sent."}),
		rateLimitWaited: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_iconik_rate_limit_wait_seconds_total",
			Help: "Time iconik calls spent waiting for the rate limit."}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_notifications_total",
			Help: "Notification send attempts, by channel (email, slack) and outcome (sent, retrying, failed)."},
			[]string{"channel", "outcome"}),
	}
	m.reg.MustRegister(m.bytesReceived, m.bytesDelivered, m.bytesSettled, m.activeUploads, m.uploads, m.deliveries, m.deliveryLatency,
		m.iconikCalls, m.rateLimitWaits, m.rateLimitWaited, m.notifications,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Present from the start, so that a dashboard and an alert see 0 rather than nothing.
	for _, o := range []string{UploadCompleted, UploadRefused, UploadFailed, UploadCancelled} {
		m.uploads.WithLabelValues(o)
	}
	for _, o := range []string{"delivered", "partially_failed", "failed"} {
		m.deliveries.WithLabelValues(o)
	}
	return m
}

// Registry is where the metrics live: register further collectors here.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. A collector that fails is
// left out of the answer (logged by it), not the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Received counts n upload body bytes.
func (m *Metrics) Received(n int) {
	if m != nil && n > 0 {
		m.bytesReceived.Add(float64(n))
	}
}

// Delivered counts n bytes read from the store for a delivery.
func (m *Metrics) Delivered(n int) {
	if m != nil && n > 0 {
		m.bytesDelivered.Add(float64(n))
	}
}

// UploadStarted marks an upload request receiving bytes; call the returned func when it ends.
func (m *Metrics) UploadStarted() (done func()) {
	if m == nil {
		return func() {}
	}
	m.activeUploads.Inc()
	return m.activeUploads.Dec
}

// UploadEnded counts an upload's outcome (one of the Upload* constants).
func (m *Metrics) UploadEnded(outcome string) {
	if m != nil {
		m.uploads.WithLabelValues(outcome).Inc()
	}
}

// DeliverySettled counts a settled delivery by its final state, with the bytes of its files
// that were delivered, and observes how long it took.
func (m *Metrics) DeliverySettled(state string, deliveredBytes int64, took time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(state).Inc()
	if deliveredBytes > 0 {
		m.bytesSettled.Add(float64(deliveredBytes))
	}
	if took >= 0 {
		m.deliveryLatency.Observe(took.Seconds())
	}
}

// RateLimitWait counts a call that waited d for iconik's rate limit.
func (m *Metrics) RateLimitWait(d time.Duration) {
	if m != nil && d > 0 {
		m.rateLimitWaits.Inc()
		m.rateLimitWaited.Add(d.Seconds())
	}
}

// Notification counts a notification attempt by channel and outcome.
func (m *Metrics) Notification(channel, outcome string) {
	if m != nil {
		m.notifications.WithLabelValues(channel, outcome).Inc()
	}
}

// IconikCall counts one HTTP request to iconik; status 0 means no answer came.
func (m *Metrics) IconikCall(method, path string, status int) {
	if m == nil {
		return
	}
	s := "error"
	if status > 0 {
		s = strconv.Itoa(status)
	}
	m.iconikCalls.WithLabelValues(method, IconikRoute(path), s).Inc()
}

// IconikRoute turns a request path into its route template: every segment that is not a
// word of the API's own vocabulary (lower-case letters, digits after the first letter, '_'
// and '-') is an id and becomes {id}. The label set stays bounded whatever ids iconik hands
// out, and no name a sender chose can appear in it (iconik paths carry ids, not names).
func IconikRoute(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s != "" && !apiWord(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// apiWord reports whether s looks like a fixed path word ("assets", "v1", "file_sets",
// "API") rather than an id (UUIDs, hex, numbers, escaped text).
func apiWord(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z' && s == "API":
		case r == '_' || r == '-':
			if i == 0 {
				return false
			}
		case r >= '0' && r <= '9':
			// "v1" is a word, "1234" and "3f2a..." are not: a digit may only follow a letter
			// in a word of at most three characters.
			if i == 0 || len(s) > 3 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
