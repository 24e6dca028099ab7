package verify

import (
	"math"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// evaluate judges one criterion on one phase. A value that cannot be observed is never ok.
func evaluate(c Criterion, p PhaseInput) CriterionResult {
	r := CriterionResult{
		Metric:      c.Key.String(),
		Expression:  c.Threshold.String(),
		AbortOnFail: c.AbortOnFail,
	}
	m, ok := Lookup(c.Key.Metric)
	if !ok {
		r.Reason = "unknown metric"
		return r
	}
	r.Unit = unitOf(m, c.Threshold.Aggregation)
	v, ok := observe(m, c, p)
	if !ok {
		r.Reason = "no data"
		return r
	}
	r.Observed = &v
	r.OK = c.Threshold.Holds(v)
	if !r.OK {
		r.Reason = "observed " + withUnit(v, r.Unit)
	}
	return r
}

// observe aggregates the criterion's metric over the phase; false when there is no data.
func observe(m MetricInfo, c Criterion, p PhaseInput) (float64, bool) {
	t := c.Threshold
	if m.Source == SourceTarget {
		v, ok := p.External[m.Name]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false // a broken source is no data, and never reaches report.json as NaN
		}
		if m.Type == Counter && t.Aggregation == AggRate {
			return perSecond(v, p.Duration)
		}
		return v, true
	}
	s := p.All
	if c.Key.Op != "" {
		s = p.ByOp[c.Key.Op]
	}
	if s == nil {
		return 0, false
	}
	switch m.Type {
	case Counter:
		n := float64(m.count(s))
		if t.Aggregation == AggRate {
			return perSecond(n, p.Duration)
		}
		return n, true
	case Rate:
		part, all := m.ratio(s)
		if all == 0 {
			return 0, false
		}
		return float64(part) / float64(all), true
	case Trend:
		return aggregateTrend(m.histogram(s), t)
	}
	return 0, false
}

func perSecond(n float64, d time.Duration) (float64, bool) {
	if d <= 0 {
		return 0, false
	}
	return n / d.Seconds(), true
}

// aggregateTrend reduces a histogram to milliseconds; an empty one has no data.
func aggregateTrend(h *metrics.Histogram, t Threshold) (float64, bool) {
	if h == nil || h.Count() == 0 {
		return 0, false
	}
	var d time.Duration
	switch t.Aggregation {
	case AggAvg:
		d = h.Mean()
	case AggMin:
		d = h.Min()
	case AggMax:
		d = h.Max()
	case AggMed:
		d = h.Percentile(50)
	case AggPercentile:
		d = h.Percentile(t.Percentile)
	default:
		return 0, false
	}
	return float64(d) / float64(time.Millisecond), true
}

// unitOf is the unit of an aggregated value: a counter's rate is per second, a rate metric's a
// fraction.
func unitOf(m MetricInfo, a Aggregation) string {
	switch {
	case m.Type == Counter && a == AggRate:
		if m.Unit == "" {
			return "/s"
		}
		return m.Unit + "/s"
	case m.Type == Rate:
		return ""
	}
	return m.Unit
}

// withUnit writes v and its unit: "120.5 ms", "2000/s", "0.02".
func withUnit(v float64, unit string) string {
	switch {
	case unit == "":
		return formatNumber(v)
	case unit[0] == '/':
		return formatNumber(v) + unit
	}
	return formatNumber(v) + " " + unit
}
