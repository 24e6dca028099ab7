package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of this package.
var (
	ErrBadThreshold  = errors.New("bad threshold")
	ErrBadKey        = errors.New("bad threshold key")
	ErrUnknownMetric = errors.New("unknown metric")
	ErrAggregation   = errors.New("aggregation not allowed")
)

// Criterion is one threshold on one key: a line of the plan's SLA.
type Criterion struct {
	Key       Key
	Threshold Threshold
	// AbortOnFail stops the run as soon as the running totals breach the threshold.
	AbortOnFail bool
	// DelayAbortEval is how long into a phase abort evaluation waits, so that a few slow first
	// requests cannot abort a run. Unlike k6, it counts from the phase's start, not the test's:
	// criteria are judged per phase.
	DelayAbortEval time.Duration
}

// NewCriterion checks that t's aggregation suits k's metric (k6's rules per metric type).
func NewCriterion(k Key, t Threshold) (Criterion, error) {
	m, ok := Lookup(k.Metric)
	if !ok {
		return Criterion{}, fmt.Errorf("%w %q", ErrUnknownMetric, k.Metric)
	}
	if !m.Type.Allows(t.Aggregation) {
		var want []string
		for _, a := range m.Type.Aggregations() {
			if a == AggPercentile {
				want = append(want, "p(N)")
				continue
			}
			want = append(want, string(a))
		}
		return Criterion{}, fmt.Errorf("%w: %s on %s, a %s metric (want %s)",
			ErrAggregation, t.Label(), m.Name, m.Type, strings.Join(want, ", "))
	}
	return Criterion{Key: k, Threshold: t}, nil
}

// String returns the criterion as "key expression": http_req_duration{phase:x} p(99)<100.
func (c Criterion) String() string { return c.Key.String() + " " + c.Threshold.String() }

// AppliesTo reports whether c judges the phase: a criterion without a phase tag judges every
// judged phase; one with a phase tag judges that phase only, and only when it is judged.
func (c Criterion) AppliesTo(phase string, judged bool) bool {
	return judged && (c.Key.Phase == "" || c.Key.Phase == phase)
}

// Suggest returns the catalogue's metric nearest to name by edit distance, or "" when none is
// close: for "did you mean" messages.
func Suggest(name string) Metric {
	best, bestDist := Metric(""), 3 // at most two edits away
	for _, m := range Catalogue() {
		if d := editDistance(name, string(m.Name)); d < bestDist {
			best, bestDist = m.Name, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance, bounded by the short names it compares.
func editDistance(a, b string) int {
	if len(a) > metricNameBytesMax || len(b) > metricNameBytesMax {
		return metricNameBytesMax
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// metricNameBytesMax bounds the names Suggest compares.
const metricNameBytesMax = 64
