package verify

import "github.com/redline-dev/redline/metrics"

// Metric names a measured quantity, k6's names where k6 has one. The set is closed: Lookup is
// the catalogue.
type Metric string

// Metrics of the catalogue. The load generator's are observed from metrics.Stats; the last five
// are reserved for the target's audit (SourceTarget) and have no data until it provides them.
const (
	HTTPReqs               Metric = "http_reqs"                 // counter: completed requests
	HTTPReqFailed          Metric = "http_req_failed"           // rate: failed / completed
	HTTPReqDuration        Metric = "http_req_duration"         // trend, ms: from the intended send time
	HTTPReqServiceDuration Metric = "http_req_service_duration" // trend, ms: from the actual send time
	HTTPReqSendLateness    Metric = "http_req_send_lateness"    // trend, ms: actual minus intended send time
	DroppedIterations      Metric = "dropped_iterations"        // counter: arrivals never sent
	Iterations             Metric = "iterations"                // counter: completed arrivals
	DataSent               Metric = "data_sent"                 // counter, bytes
	DataReceived           Metric = "data_received"             // counter, bytes
	PaymentsLost           Metric = "payments_lost"             // counter: acknowledged payments missing
	PaymentsDuplicated     Metric = "payments_duplicated"       // counter: payments applied twice
	ConsumerLag            Metric = "consumer_lag"              // gauge: messages not yet consumed
	AuditViolations        Metric = "audit_violations"          // counter: ledger invariants that failed
	ShadowLeaks            Metric = "shadow_leaks"              // counter: stress writes in production data
)

// MetricType is k6's metric type; it decides the aggregations a threshold may use.
type MetricType string

// Metric types.
const (
	Counter MetricType = "counter" // count, rate (per second)
	Rate    MetricType = "rate"    // rate: the fraction of non-zero values
	Trend   MetricType = "trend"   // avg, min, max, med, p(N)
	Gauge   MetricType = "gauge"   // value: the last value
)

// Source says who provides a metric's values.
type Source string

// Sources.
const (
	// SourceLoad is the load generator: values come from metrics.Stats.
	SourceLoad Source = "load"
	// SourceTarget is the target's audit and admin API: values come from PhaseInput.External.
	// Until a source provides one, its criteria are judged "no data" and fail.
	SourceTarget Source = "target"
)

// MetricInfo describes one metric of the catalogue.
type MetricInfo struct {
	Name   Metric
	Type   MetricType
	Unit   string // of the count, the value or the trend: "ms", "B", "" for plain numbers
	Source Source
	// Reserved marks a metric whose name plans may use now and that no source provides yet.
	Reserved bool

	// Exactly one of these observes a SourceLoad metric, by type.
	count     func(*metrics.Stats) int64              // Counter
	ratio     func(*metrics.Stats) (part, all int64)  // Rate
	histogram func(*metrics.Stats) *metrics.Histogram // Trend
}

// Lookup returns the catalogue's entry for name. It is the one place that lists metrics:
// adding one is adding a case.
func Lookup(name Metric) (MetricInfo, bool) {
	load := func(t MetricType, unit string) MetricInfo {
		return MetricInfo{Name: name, Type: t, Unit: unit, Source: SourceLoad}
	}
	reserved := func(t MetricType, unit string) MetricInfo {
		return MetricInfo{Name: name, Type: t, Unit: unit, Source: SourceTarget, Reserved: true}
	}
	var m MetricInfo
	switch name {
	case HTTPReqs, Iterations:
		m = load(Counter, "")
		m.count = func(s *metrics.Stats) int64 { return s.Requests }
	case DroppedIterations:
		m = load(Counter, "")
		m.count = func(s *metrics.Stats) int64 { return s.Dropped }
	case DataSent:
		m = load(Counter, "B")
		m.count = func(s *metrics.Stats) int64 { return s.BytesSent }
	case DataReceived:
		m = load(Counter, "B")
		m.count = func(s *metrics.Stats) int64 { return s.BytesReceived }
	case HTTPReqFailed:
		m = load(Rate, "")
		m.ratio = func(s *metrics.Stats) (int64, int64) { return s.Failed, s.Requests }
	case HTTPReqDuration:
		m = load(Trend, "ms")
		m.histogram = func(s *metrics.Stats) *metrics.Histogram { return s.Latency }
	case HTTPReqServiceDuration:
		m = load(Trend, "ms")
		m.histogram = func(s *metrics.Stats) *metrics.Histogram { return s.Service }
	case HTTPReqSendLateness:
		m = load(Trend, "ms")
		m.histogram = func(s *metrics.Stats) *metrics.Histogram { return s.Lateness }
	case PaymentsLost, PaymentsDuplicated, AuditViolations, ShadowLeaks:
		m = reserved(Counter, "")
	case ConsumerLag:
		m = reserved(Gauge, "")
	default:
		return MetricInfo{}, false
	}
	return m, true
}

// Catalogue lists every metric Lookup knows, sorted by name.
func Catalogue() []MetricInfo {
	names := []Metric{
		AuditViolations, ConsumerLag, DataReceived, DataSent, DroppedIterations, HTTPReqDuration,
		HTTPReqFailed, HTTPReqSendLateness, HTTPReqServiceDuration, HTTPReqs, Iterations,
		PaymentsDuplicated, PaymentsLost, ShadowLeaks,
	}
	out := make([]MetricInfo, 0, len(names))
	for _, n := range names {
		m, _ := Lookup(n)
		out = append(out, m)
	}
	return out
}

// Aggregations lists the aggregations a threshold on a metric of type t may use (k6's rules).
func (t MetricType) Aggregations() []Aggregation {
	switch t {
	case Counter:
		return []Aggregation{AggCount, AggRate}
	case Rate:
		return []Aggregation{AggRate}
	case Trend:
		return []Aggregation{AggAvg, AggMin, AggMax, AggMed, AggPercentile}
	case Gauge:
		return []Aggregation{AggValue}
	}
	return nil
}

// Allows reports whether a threshold on a metric of type t may use a.
func (t MetricType) Allows(a Aggregation) bool {
	for _, x := range t.Aggregations() {
		if x == a {
			return true
		}
	}
	return false
}
