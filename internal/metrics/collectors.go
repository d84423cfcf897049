package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Space is the upload store's space as ingest reports it (free bytes, the reserve uploads
// never take, and what unfinished uploads still have to send).
type Space struct {
	Free, Reserve, Promised int64
	Known                   bool // false where the platform cannot tell free space
}

// WatchSpace exports the upload store's space, read once per scrape by read.
func (m *Metrics) WatchSpace(read func() (Space, error), log *slog.Logger) {
	m.reg.MustRegister(&spaceCollector{read: read, log: log})
}

var (
	freeDesc     = prometheus.NewDesc("ferry_upload_store_free_bytes", "Free bytes of the upload store's file system (the data directory).", nil, nil)
	reserveDesc  = prometheus.NewDesc("ferry_disk_reserve_bytes", "Bytes uploads never take (--disk-reserve): the database's headroom.", nil, nil)
	promisedDesc = prometheus.NewDesc("ferry_upload_promised_bytes", "Bytes that unfinished uploads still have to send.", nil, nil)
)

type spaceCollector struct {
	read func() (Space, error)
	log  *slog.Logger
}

func (c *spaceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- freeDesc
	ch <- reserveDesc
	ch <- promisedDesc
}

func (c *spaceCollector) Collect(ch chan<- prometheus.Metric) {
	sp, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading the upload store's free space", "err", err)
		return
	}
	if sp.Known {
		ch <- prometheus.MustNewConstMetric(freeDesc, prometheus.GaugeValue, float64(sp.Free))
	}
	ch <- prometheus.MustNewConstMetric(reserveDesc, prometheus.GaugeValue, float64(sp.Reserve))
	ch <- prometheus.MustNewConstMetric(promisedDesc, prometheus.GaugeValue, float64(sp.Promised))
}

// riverStates are River's job states: every one is exported (0 when no job is in it), so the
// label set is fixed.
var riverStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

var queueDesc = prometheus.NewDesc("ferry_river_jobs", "River jobs (deliveries, notifications) by state, counted at scrape time.", []string{"state"}, nil)

// queueTimeout bounds what a scrape costs the database: one grouped count over River's job
// table (River's cleaner keeps it to about a day of finished jobs), given up after
// queueTimeout; a scrape then goes on without the queue figures.
const queueTimeout = 2 * time.Second

// WatchQueue exports River's queue depth by state, as count reads it (db.RiverJobCountByState:
// one grouped count over River's job table, the same on SQLite and PostgreSQL).
func (m *Metrics) WatchQueue(count func(context.Context) (map[string]int64, error), log *slog.Logger) {
	m.reg.MustRegister(&queueCollector{count: count, log: log})
}

type queueCollector struct {
	count func(context.Context) (map[string]int64, error)
	log   *slog.Logger
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		c.log.Warn("metrics: counting River jobs", "err", err)
		return
	}
	for _, s := range riverStates {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
