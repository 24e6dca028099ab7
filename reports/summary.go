package reports

import (
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/verify"
)

// K6Summary is summary.json: the shape of k6's end-of-test summary (handleSummary data), so
// that tools made for k6 (k6-html-reporter, k6-junit, k6-summary's textSummary) read a
// Redline run. Values follow k6's units: trends in milliseconds, counters' rate per second of
// the whole run, a rate metric's passes = non-zero values (for http_req_failed: failed requests).
type K6Summary struct {
	RootGroup K6Group             `json:"root_group"`
	Options   K6Options           `json:"options"`
	State     K6State             `json:"state"`
	Metrics   map[string]K6Metric `json:"metrics"`
}

// K6Group is k6's group: Redline has only the root group.
type K6Group struct {
	Name   string    `json:"name"`
	Path   string    `json:"path"`
	ID     string    `json:"id"`
	Groups []K6Group `json:"groups"`
	Checks []any     `json:"checks"`
}

// K6Options are the summary options k6 echoes.
type K6Options struct {
	SummaryTrendStats []string `json:"summaryTrendStats"`
	SummaryTimeUnit   string   `json:"summaryTimeUnit"`
	NoColor           bool     `json:"noColor"`
}

// K6State is the run state k6 echoes.
type K6State struct {
	IsStdOutTTY       bool    `json:"isStdOutTTY"`
	IsStdErrTTY       bool    `json:"isStdErrTTY"`
	TestRunDurationMs float64 `json:"testRunDurationMs"`
}

// K6Metric is one metric or sub-metric of the summary.
type K6Metric struct {
	Type       string                 `json:"type"`
	Contains   string                 `json:"contains"`
	Values     map[string]float64     `json:"values"`
	Thresholds map[string]K6Threshold `json:"thresholds,omitempty"`
}

// K6Threshold is a threshold's outcome: ok means it held on every phase it judged.
type K6Threshold struct {
	OK bool `json:"ok"`
}

// k6RootGroupID is the MD5 of the empty string: k6's id of the root group.
const k6RootGroupID = "d41d8cd98f00b204e9800998ecf8427e"

var k6TrendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"}

// Summary builds summary.json: every load metric over the whole run, plus each sub-metric a
// criterion names ({phase:x}, {op:y}), with the criteria's outcomes as thresholds.
func Summary(rec *run.Record, v verify.Verdict) K6Summary {
	all := metrics.NewStats()
	for _, p := range rec.Phases {
		if p.Ran() {
			all.Merge(p.All)
		}
	}
	dur := rec.Ended.Sub(rec.Started)
	s := K6Summary{
		RootGroup: K6Group{ID: k6RootGroupID, Groups: []K6Group{}, Checks: []any{}},
		Options:   K6Options{SummaryTrendStats: k6TrendStats},
		State:     K6State{TestRunDurationMs: ms(dur)},
		Metrics:   map[string]K6Metric{},
	}
	for _, info := range verify.Catalogue() {
		if m, ok := k6Metric(info, all, dur); ok {
			s.Metrics[string(info.Name)] = m
		}
	}
	for key, outcome := range thresholdOutcomes(v) {
		k, err := verify.ParseKey(key)
		if err != nil {
			continue // the verdict came from a parsed plan: its keys parse
		}
		info, _ := verify.Lookup(k.Metric)
		m, ok := s.Metrics[key]
		if !ok {
			m, ok = k6Metric(info, statsFor(rec, k), phaseDuration(rec, k.Phase, dur))
			if !ok {
				m = K6Metric{Type: string(info.Type), Contains: contains(info), Values: map[string]float64{}}
			}
		}
		m.Thresholds = outcome
		s.Metrics[key] = m
	}
	return s
}

// thresholdOutcomes folds criterion results by key and expression: a threshold is ok when it
// held on every phase that judged it.
func thresholdOutcomes(v verify.Verdict) map[string]map[string]K6Threshold {
	out := map[string]map[string]K6Threshold{}
	for _, pv := range v.Phases {
		for _, c := range pv.Criteria {
			if out[c.Metric] == nil {
				out[c.Metric] = map[string]K6Threshold{}
			}
			prev, seen := out[c.Metric][c.Expression]
			out[c.Metric][c.Expression] = K6Threshold{OK: c.OK && (!seen || prev.OK)}
		}
	}
	return out
}

// statsFor merges the stats a key selects: one phase or all, one operation or all.
func statsFor(rec *run.Record, k verify.Key) *metrics.Stats {
	out := metrics.NewStats()
	for _, p := range rec.Phases {
		if !p.Ran() || k.Phase != "" && p.Name != k.Phase {
			continue
		}
		switch {
		case k.Op == "":
			out.Merge(p.All)
		case p.ByOp[k.Op] != nil:
			out.Merge(p.ByOp[k.Op])
		}
	}
	return out
}

func phaseDuration(rec *run.Record, phase string, whole time.Duration) time.Duration {
	if phase == "" {
		return whole
	}
	for _, p := range rec.Phases {
		if p.Name == phase {
			return p.Scheduled
		}
	}
	return whole
}

func contains(info verify.MetricInfo) string {
	switch info.Unit {
	case "ms":
		return "time"
	case "B":
		return "data"
	}
	return "default"
}

// k6Metric computes a load metric's summary values; false for metrics the load does not observe.
func k6Metric(info verify.MetricInfo, s *metrics.Stats, dur time.Duration) (K6Metric, bool) {
	m := K6Metric{Type: string(info.Type), Contains: contains(info)}
	perSecond := func(n int64) float64 {
		if dur <= 0 {
			return 0
		}
		return float64(n) / dur.Seconds()
	}
	counter := func(n int64) map[string]float64 {
		return map[string]float64{"count": float64(n), "rate": perSecond(n)}
	}
	trend := func(h *metrics.Histogram) map[string]float64 {
		return map[string]float64{
			"avg": ms(h.Mean()), "min": ms(h.Min()), "med": ms(h.Percentile(50)), "max": ms(h.Max()),
			"p(90)": ms(h.Percentile(90)), "p(95)": ms(h.Percentile(95)), "p(99)": ms(h.Percentile(99)),
		}
	}
	switch info.Name {
	case verify.HTTPReqs, verify.Iterations:
		m.Values = counter(s.Requests)
	case verify.DroppedIterations:
		m.Values = counter(s.Dropped)
	case verify.DataSent:
		m.Values = counter(s.BytesSent)
	case verify.DataReceived:
		m.Values = counter(s.BytesReceived)
	case verify.HTTPReqFailed:
		m.Values = map[string]float64{"rate": s.FailedRate(), "passes": float64(s.Failed), "fails": float64(s.Requests - s.Failed)}
	case verify.HTTPReqDuration:
		m.Values = trend(s.Latency)
	case verify.HTTPReqServiceDuration:
		m.Values = trend(s.Service)
	case verify.HTTPReqSendLateness:
		m.Values = trend(s.Lateness)
	default:
		return K6Metric{}, false
	}
	return m, true
}
