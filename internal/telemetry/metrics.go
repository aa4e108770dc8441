package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds carefront's collectors on a registry of its own (no global
// state, so tests and several servers in one process do not collide).
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	auditRecords *prometheus.CounterVec
	auditCommit  prometheus.Histogram
	auditBatch   prometheus.Histogram
	auditOK      prometheus.Gauge
	auditTail    prometheus.Gauge
}

// NewMetrics registers the collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carefront_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carefront_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		auditRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carefront_audit_records_total",
			Help: "Audit records by result (committed or failed).",
		}, []string{"result"}),
		auditCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carefront_audit_commit_seconds",
			Help:    "Time to commit one group of audit records.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		auditBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carefront_audit_commit_records",
			Help:    "Audit records per group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		auditOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carefront_audit_verify_ok",
			Help: "1 when the last scheduled audit trail verification passed, 0 when it failed or could not run.",
		}),
		auditTail: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carefront_audit_unsigned_records",
			Help: "Audit records no signed checkpoint covered at the last scheduled verification.",
		}),
	}
	m.Registry.MustRegister(m.httpRequests, m.httpDuration, m.auditRecords, m.auditCommit, m.auditBatch, m.auditOK, m.auditTail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveHTTP records one request. route must be the mux pattern (e.g.
// "GET /results/{code}") or "unmatched", never the raw path.
func (m *Metrics) ObserveHTTP(route, method string, code int, took time.Duration) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(took.Seconds())
}

// ObserveAudit records one group commit of the audit writer.
func (m *Metrics) ObserveAudit(records int, took time.Duration, err error) {
	result := "committed"
	if err != nil {
		result = "failed"
	}
	m.auditRecords.WithLabelValues(result).Add(float64(records))
	m.auditCommit.Observe(took.Seconds())
	m.auditBatch.Observe(float64(records))
}

// ObserveAuditVerify records the outcome of a scheduled verification.
func (m *Metrics) ObserveAuditVerify(ok bool, unsigned int64) {
	if ok {
		m.auditOK.Set(1)
	} else {
		m.auditOK.Set(0)
	}
	m.auditTail.Set(float64(unsigned))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
