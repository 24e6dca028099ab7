package run

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/metrics"
)

// exporter exposes a collector's running totals to Prometheus, computed at scrape time so that
// the hot path pays nothing for it.
type exporter struct {
	collector *metrics.Collector
	reqs      *prometheus.Desc
	failed    *prometheus.Desc
	dropped   *prometheus.Desc
	latency   *prometheus.Desc
	service   *prometheus.Desc
}

var _ prometheus.Collector = (*exporter)(nil)

// exportedQuantiles are the quantiles of the latency summaries.
var exportedQuantiles = []float64{0.5, 0.9, 0.95, 0.99, 0.999}

func newExporter(runID string, c *metrics.Collector) *exporter {
	labels := []string{"phase", "op"}
	run := prometheus.Labels{"run": runID}
	return &exporter{
		collector: c,
		reqs:      prometheus.NewDesc("redline_http_reqs_total", "Completed requests.", labels, run),
		failed:    prometheus.NewDesc("redline_http_req_failed_total", "Requests that failed (transport error, timeout or unexpected status).", labels, run),
		dropped:   prometheus.NewDesc("redline_dropped_iterations_total", "Arrivals not sent because no worker was free.", labels, run),
		latency:   prometheus.NewDesc("redline_http_req_duration_seconds", "Latency from the intended send time.", labels, run),
		service:   prometheus.NewDesc("redline_http_req_service_duration_seconds", "Latency from the actual send time.", labels, run),
	}
}

func (e *exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.reqs, e.failed, e.dropped, e.latency, e.service} {
		ch <- d
	}
}

func (e *exporter) Collect(ch chan<- prometheus.Metric) {
	for k, s := range e.collector.Totals() {
		e.counter(ch, e.reqs, s.Requests, k)
		e.counter(ch, e.failed, s.Failed, k)
		e.counter(ch, e.dropped, s.Dropped, k)
		e.summary(ch, e.latency, s.Latency, k)
		e.summary(ch, e.service, s.Service, k)
	}
}

func (e *exporter) counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, k metrics.Key) {
	m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), k.Phase, k.Op)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d, err)
		return
	}
	ch <- m
}

func (e *exporter) summary(ch chan<- prometheus.Metric, d *prometheus.Desc, h *metrics.Histogram, k metrics.Key) {
	q := make(map[float64]float64, len(exportedQuantiles))
	for _, x := range exportedQuantiles {
		q[x] = h.Quantile(x).Seconds()
	}
	sum := h.Mean().Seconds() * float64(h.Count())
	m, err := prometheus.NewConstSummary(d, uint64(h.Count()), sum, q, k.Phase, k.Op)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d, err)
		return
	}
	ch <- m
}

// metricsServer serves /metrics for the length of a run.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// startMetricsServer listens on addr and serves the collector's totals at /metrics. Close it
// when the run ends.
func startMetricsServer(addr, runID string, c *metrics.Collector) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newExporter(runID, c)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	// Owned by the metricsServer: ends when Close shuts the server down.
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *metricsServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server within a bounded time.
func (s *metricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("close metrics server: %w", err)
	}
	return nil
}
