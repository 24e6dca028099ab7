package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redline-dev/redline/internal/nearest"
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

// Suggest returns the catalogue's metric nearest to name, at most two edits away, or "" when
// none is close: for "did you mean" messages.
func Suggest(name string) Metric {
	infos := Catalogue()
	names := make([]string, len(infos))
	for i, m := range infos {
		names[i] = string(m.Name)
	}
	return Metric(nearest.Name(name, names))
}
