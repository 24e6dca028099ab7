package corezone

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are a replica's Prometheus series, on its own registry (no global state).
type metrics struct {
	reg             *prometheus.Registry
	leader          prometheus.Gauge
	epoch           prometheus.Gauge
	commands        *prometheus.CounterVec
	probeFailures   *prometheus.CounterVec
	failovers       *prometheus.CounterVec
	failoverSeconds prometheus.Histogram
	lastFailover    *prometheus.GaugeVec
	transferSeconds *prometheus.HistogramVec
	stepBatch       prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redline_core_leader", Help: "1 while this replica leads the core zone.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redline_core_epoch", Help: "Global routing epoch applied on this replica.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_core_commands_total", Help: "Commands applied through Raft by this replica as leader.",
		}, []string{"op", "result"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_core_probe_failures_total", Help: "Failed polls of a unit primary.",
		}, []string{"unit"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redline_core_failovers_total", Help: "Automatic failovers of a unit.",
		}, []string{"unit"}),
		failoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "redline_core_failover_seconds",
			Help:    "Failover time: last answer of the dead primary to the new primary configured.",
			Buckets: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 5},
		}),
		lastFailover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "redline_core_last_failover_seconds", Help: "Duration of the last failover of a unit.",
		}, []string{"unit"}),
		transferSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "redline_core_transfer_seconds",
			Help:    "Where a cross-unit payment's time goes on the leader: try (both legs tried), decide (the decision committed in Raft), answer (the whole request, to the answer).",
			Buckets: []float64{0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1},
		}, []string{"phase"}),
		stepBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "redline_core_step_batch_steps",
			Help:    "Transfer steps per batch request to a unit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
	}
	m.reg.MustRegister(m.leader, m.epoch, m.commands, m.probeFailures, m.failovers, m.failoverSeconds, m.lastFailover, m.transferSeconds, m.stepBatch,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
