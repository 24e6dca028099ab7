package unit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/redline-dev/redline/target/ledger"
)

// metrics are one replica's Prometheus series, in its own registry (several replicas run in one
// test process).
type metrics struct {
	reg          *prometheus.Registry
	payments     *prometheus.CounterVec
	batchOps     prometheus.Histogram
	replicateSec prometheus.Histogram
	entriesSent  prometheus.Counter
	entriesApply prometheus.Counter
	staleRefused prometheus.Counter
	fenced       prometheus.Counter
	epoch        prometheus.Gauge
	role         *prometheus.GaugeVec
	lastSeq      prometheus.Gauge

	eventsPublished prometheus.Counter
	tccSteps        *prometheus.CounterVec
	catchUps        *prometheus.CounterVec
	catchUpPulled   prometheus.Counter
	catchUpRewound  prometheus.Counter
	// A catch-up's snapshot bytes, counted as they arrive and as the install reads them: the
	// progress of the one phase that moves nothing else (last seq, role) for seconds.
	snapshotDownloaded prometheus.Counter
	snapshotInstalled  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycell_payments_total", Help: "Payments answered, by status."}, []string{"status"}),
		batchOps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "paycell_group_commit_ops", Help: "Business writes per group-committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		replicateSec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "paycell_replicate_seconds", Help: "Round trip of one replication batch to the standby.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		entriesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_replicated_entries_total", Help: "Entries the standby confirmed (primary side)."}),
		entriesApply: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_applied_entries_total", Help: "Entries applied from the primary (standby side)."}),
		staleRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_stale_epoch_refusals_total", Help: "Writes and batches refused under a stale epoch."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_fenced_total", Help: "Times this primary learned a newer epoch replaced it."}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paycell_epoch", Help: "The replica's configuration epoch."}),
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paycell_role", Help: "1 for the replica's current role."}, []string{"role"}),
		lastSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paycell_last_seq", Help: "Last seq of the replica's history."}),
		eventsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_events_published_total", Help: "Outbox events the relay published and JetStream acknowledged."}),
		tccSteps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycell_tcc_steps_total", Help: "Cross-unit transfer steps answered, by step and the leg's state."}, []string{"step", "state"}),
		catchUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paycell_catchups_total", Help: "Catch-ups completed, by what they started from: own_history, rewound or snapshot."}, []string{"base"}),
		catchUpPulled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_catchup_pulled_entries_total", Help: "Entries catch-ups pulled from the primary's log."}),
		catchUpRewound: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_catchup_rewound_entries_total", Help: "Entries catch-ups undid: a tail of this replica's history the primary never held."}),
		snapshotDownloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_catchup_snapshot_downloaded_bytes_total", Help: "Bytes of primaries' snapshots catch-ups downloaded, as they arrived."}),
		snapshotInstalled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paycell_catchup_snapshot_installed_bytes_total", Help: "Bytes of downloaded snapshots catch-ups read into the books, as they went."}),
	}
	m.reg.MustRegister(m.payments, m.batchOps, m.replicateSec, m.entriesSent, m.entriesApply,
		m.staleRefused, m.fenced, m.epoch, m.role, m.lastSeq, m.eventsPublished, m.tccSteps,
		m.catchUps, m.catchUpPulled, m.catchUpRewound, m.snapshotDownloaded, m.snapshotInstalled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) setView(v view) {
	m.epoch.Set(float64(v.Epoch))
	for _, r := range []string{ledger.RolePrimary, ledger.RoleStandby, ledger.RoleCatchingUp} {
		val := 0.0
		if r == v.Role {
			val = 1
		}
		m.role.WithLabelValues(r).Set(val)
	}
}

func (m *metrics) batch(ops, entries int) { m.batchOps.Observe(float64(ops)) }

func (m *metrics) replicated(d time.Duration, entries int) {
	m.replicateSec.Observe(d.Seconds())
	m.entriesSent.Add(float64(entries))
}

func (m *metrics) applied(entries int) { m.entriesApply.Add(float64(entries)) }

func (m *metrics) caughtUp(base string, pulled int64) {
	m.catchUps.WithLabelValues(base).Inc()
	m.catchUpPulled.Add(float64(pulled))
}

// byteCounter is an io.Writer that counts what it is given into a counter.
type byteCounter struct{ c prometheus.Counter }

func (b byteCounter) Write(p []byte) (int, error) {
	b.c.Add(float64(len(p)))
	return len(p), nil
}
