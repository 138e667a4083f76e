// Package metrics is what an operator reads of a running service, in the
// Prometheus format (prometheus/client_golang; architecture log, entry
// 53): API requests by route and status with their latency, commands by
// type and outcome, http step attempts by outcome and error name with
// their duration, the change feed's lag, and the cleanup's runs. Every
// method is safe on a nil *Metrics (it records nothing), so a component
// built without metrics needs no branch.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the service's collectors in a registry of its own.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	commands     *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	attemptTime  *prometheus.HistogramVec
	feedLag      prometheus.Histogram
	cleanupRuns  *prometheus.CounterVec
	cleanupFound prometheus.Counter
}

// New returns the collectors, registered with the process and Go
// runtime's own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflowd_http_requests_total",
			Help: "API requests answered, by route, method and status."}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "workflowd_http_request_duration_seconds",
			Help: "Time to answer an API request (a live stream: until it ends), by route and method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"route", "method"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflowd_commands_total",
			Help: "Commands by type and outcome: accepted (at the API), applied, rejected, duplicate (a redelivery), dropped (a stale system command)."}, []string{"type", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflowd_step_attempts_total",
			Help: "Attempts of http steps by outcome (succeeded, failed) and error name (docs/api.md, \"Failures\")."}, []string{"step_type", "outcome", "error"}),
		attemptTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "workflowd_step_attempt_duration_seconds",
			Help: "Duration of http step attempts, by outcome.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"step_type", "outcome"}),
		feedLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "workflowd_change_feed_lag_seconds",
			Help: "Time from an event's append to the projector's handling of it.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		cleanupRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflowd_cleanup_runs_total",
			Help: "Cleanup runs by result (ok, error)."}, []string{"result"}),
		cleanupFound: prometheus.NewCounter(prometheus.CounterOpts{Name: "workflowd_cleanup_commands_issued_total",
			Help: "Commands the cleanup issued for due work (timeouts, timers, retries, lost work)."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.commands, m.attempts, m.attemptTime, m.feedLag, m.cleanupRuns, m.cleanupFound,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request records one API answer.
func (m *Metrics) Request(route, method string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, method, http.StatusText(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(took.Seconds())
}

// Command outcomes.
const (
	Accepted  = "accepted"
	Applied   = "applied"
	Rejected  = "rejected"
	Duplicate = "duplicate"
	Dropped   = "dropped"
)

// Command records a command of type typ reaching outcome.
func (m *Metrics) Command(typ, outcome string) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(typ, outcome).Inc()
}

// Attempt records an http step attempt: errName "" when it succeeded.
func (m *Metrics) Attempt(stepType, errName string, took time.Duration) {
	if m == nil {
		return
	}
	outcome := "succeeded"
	if errName != "" {
		outcome = "failed"
	}
	m.attempts.WithLabelValues(stepType, outcome, errName).Inc()
	m.attemptTime.WithLabelValues(stepType, outcome).Observe(took.Seconds())
}

// FeedLag records how long after its append an event was projected.
func (m *Metrics) FeedLag(lag time.Duration) {
	if m == nil || lag < 0 {
		return
	}
	m.feedLag.Observe(lag.Seconds())
}

// CleanupRun records a cleanup run and the commands it issued.
func (m *Metrics) CleanupRun(issued int, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.cleanupRuns.WithLabelValues(result).Inc()
	m.cleanupFound.Add(float64(issued))
}
