package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailhq/trail"
)

// metrics are the server's collectors; the engine's counters are read at
// scrape time by engineCollector.
type metrics struct {
	requests  *prometheus.CounterVec   // by route and status
	latency   *prometheus.HistogramVec // by route
	rejected  *prometheus.CounterVec   // by reason
	appended  prometheus.Counter
	audited   *prometheus.CounterVec // read records, by outcome
	batchSize prometheus.Histogram
	integrity prometheus.Counter // reads refused: stored bytes that do not match the tree
}

func newMetrics(reg *prometheus.Registry, l *trail.Log) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trail_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_http_rejected_total", Help: "Requests refused, by reason.",
		}, []string{"reason"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_http_appended_events_total", Help: "Events acknowledged over HTTP (first receipts and repeats).",
		}),
		audited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_read_records_total", Help: "Read records appended to trail/access and trail/break-glass, by outcome.",
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_http_batch_events", Help: "Events per POST /v1/batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		integrity: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_integrity_failures_total",
			Help: "Reads refused because a stored record does not match the Merkle tree: tampering or disk damage.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.rejected, m.appended, m.audited, m.batchSize, m.integrity, engineCollector{l}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: nil})
}

// instrument counts requests and their latency under the route's name.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	lat := s.metrics.latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		lat.Observe(time.Since(start).Seconds())
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush of the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// engineCollector exposes the engine's Stats.
type engineCollector struct{ l *trail.Log }

var (
	descSize       = prometheus.NewDesc("trail_log_events", "Events durable and acknowledged (the log's size).", nil, nil)
	descApplied    = prometheus.NewDesc("trail_index_applied_events", "Events reflected in the query index.", nil, nil)
	descQueued     = prometheus.NewDesc("trail_queue_events", "Events accepted and not yet resolved.", nil, nil)
	descQueueLimit = prometheus.NewDesc("trail_queue_limit_events", "Bound on queued events.", nil, nil)
	descSync       = prometheus.NewDesc("trail_fsync_duration_seconds", "Latency of each group commit's fsync.", nil, nil)
	descBatch      = prometheus.NewDesc("trail_commit_batch_events", "Events made durable by each fsync.", nil, nil)
	descCPSize     = prometheus.NewDesc("trail_checkpoint_size", "Tree size of the latest signed checkpoint.", nil, nil)
	descCPTime     = prometheus.NewDesc("trail_checkpoint_timestamp_seconds", "When the latest checkpoint was signed (Unix time; 0 before the first of this process).", nil, nil)
	descFailed     = prometheus.NewDesc("trail_failed", "1 when the engine stopped acknowledging after a storage failure.", nil, nil)
	descStore      = prometheus.NewDesc("trail_store_info", "1, labelled with the store (files or postgres) and, for PostgreSQL, its replication mode: none, asynchronous, synchronous (only synchronous replication keeps every acknowledged event across a failover) or unknown.", []string{"kind", "replication"}, nil)
	descQueries    = prometheus.NewDesc("trail_queries_running", "Queries running (event queries, searches, tails' pages).", nil, nil)
	descQueryRecs  = prometheus.NewDesc("trail_query_records_read_total", "Records queries have read, whether they matched or not.", nil, nil)
	descHeads      = prometheus.NewDesc("trail_stream_heads_cached", "Streams whose last event the sequencer holds in memory (bounded by --max-stream-heads).", nil, nil)
	engineDescs    = []*prometheus.Desc{descSize, descApplied, descQueued, descQueueLimit, descSync, descBatch, descCPSize, descCPTime, descFailed, descStore, descQueries, descQueryRecs, descHeads}
)

var _ prometheus.Collector = engineCollector{}

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range engineDescs {
		ch <- d
	}
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.CounterValue, float64(s.Size))
	gauge(descApplied, float64(s.Applied))
	gauge(descQueued, float64(s.Queued))
	gauge(descQueueLimit, float64(s.QueueLimit))
	ch <- constHistogram(descSync, s.Syncs)
	ch <- constHistogram(descBatch, s.Batches)
	gauge(descCPSize, float64(s.CheckpointSize))
	var t float64
	if !s.CheckpointTime.IsZero() {
		t = float64(s.CheckpointTime.UnixNano()) / 1e9
	}
	gauge(descCPTime, t)
	failed := 0.0
	if s.Err != nil {
		failed = 1
	}
	gauge(descFailed, failed)
	gauge(descQueries, float64(s.Queries))
	ch <- prometheus.MustNewConstMetric(descQueryRecs, prometheus.CounterValue, float64(s.QueryRecords))
	gauge(descHeads, float64(s.StreamHeads))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info := c.l.Store(ctx)
	ch <- prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, 1, info.Kind, info.Mode)
}

func constHistogram(d *prometheus.Desc, h trail.HistogramSnapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}
