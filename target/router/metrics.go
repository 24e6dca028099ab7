package router

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the router's Prometheus series, on its own registry.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	epoch     prometheus.Gauge
	inflight  prometheus.Gauge
	// batchPayments is the size of each batch of payments sent to a unit.
	batchPayments prometheus.Histogram
	// batchQueued is the payments waiting in the lanes for a batch.
	batchQueued prometheus.Gauge
	planes      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_router_requests_total", Help: "Business requests answered, by route and status code.",
		}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "redline_router_request_seconds",
			Help:    "Time to answer a business request, forwarding included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
		}, []string{"route"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_router_retries_total", Help: "Forwards retried after a routing refresh, by reason.",
		}, []string{"reason"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_router_routing_reads_total", Help: "Reads of the routing table from the core zone.",
		}, []string{"result"}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redline_router_routing_epoch", Help: "Epoch of the routing table in use.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redline_router_inflight_requests", Help: "Business requests being answered.",
		}),
		batchPayments: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "redline_router_batch_payments",
			Help:    "Payments per batch request to a unit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		batchQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redline_router_batch_queued_payments", Help: "Payments waiting for a batch to their unit.",
		}),
		planes: newPlaneCounter(),
	}
	m.reg.MustRegister(m.requests, m.seconds, m.retries, m.refreshes, m.epoch, m.inflight, m.batchPayments, m.batchQueued, m.planes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
