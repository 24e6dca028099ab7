package verify

import "fmt"

// Abort is a breach of a criterion marked abortOnFail, found in a running phase's totals.
type Abort struct {
	Phase     string
	Criterion Criterion
	Observed  float64
	Unit      string
}

// Reason says why the run stops, for the verdict and the log.
func (a Abort) Reason() string {
	return fmt.Sprintf("phase %s: %s (abortOnFail): observed %s", a.Phase, a.Criterion, withUnit(a.Observed, a.Unit))
}

// CheckAbort evaluates the abortOnFail criteria that apply to a running phase on its running
// totals, and returns the first one breached. The runner calls it periodically (each second,
// after rotating the collector's window) with running.Duration set to the time elapsed in the
// phase and running.All/ByOp to the phase's totals so far (metrics.Collector.Phase); on true it
// stops the run and records Judge(...).WithAbort(abort.Reason()).
//
// Only a definite breach aborts: a criterion without data yet, or whose DelayAbortEval has not
// elapsed since the phase started, never does. Validity is not checked while running.
func CheckAbort(running PhaseInput, criteria []Criterion) (Abort, bool) {
	if running.All == nil || !running.Judge.Judged() {
		return Abort{}, false
	}
	for _, c := range criteria {
		if !c.AbortOnFail || !c.AppliesTo(running.Name, true) || running.Duration < c.DelayAbortEval {
			continue
		}
		r := evaluate(c, running)
		if r.Observed != nil && !r.OK {
			return Abort{Phase: running.Name, Criterion: c, Observed: *r.Observed, Unit: r.Unit}, true
		}
	}
	return Abort{}, false
}
