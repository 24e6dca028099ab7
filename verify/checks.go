package verify

import "fmt"

// Results of a run check: the target's audit reports each invariant true, false or unknown.
const (
	CheckTrue    = "true"
	CheckFalse   = "false"
	CheckUnknown = "unknown"
)

// RunCheck is a check of the whole run beside the phases' criteria: one invariant of the
// target's audit after the run, say. Unknown is never a pass: a run whose audit could not
// check an invariant proves nothing about it.
type RunCheck struct {
	Name   string `json:"name"`
	Result string `json:"result"` // true, false or unknown
	Detail string `json:"detail,omitempty"`
}

// WorseCheck reports whether result a is worse than b: false, then unknown (any result neither
// true nor false, as WithChecks reads it), then true.
func WorseCheck(a, b string) bool { return checkRank(a) > checkRank(b) }

func checkRank(result string) int {
	switch result {
	case CheckTrue:
		return 0
	case CheckFalse:
		return 2
	}
	return 1
}

// WithChecks returns v with the run checks folded in: a false check fails the run, an unknown
// one makes a passing run invalid. An aborted run stays aborted.
func (v Verdict) WithChecks(checks []RunCheck) Verdict {
	v.Checks = append(v.Checks, checks...)
	var failed, unknown []string
	for _, c := range checks {
		switch c.Result {
		case CheckTrue:
		case CheckFalse:
			failed = append(failed, fmt.Sprintf("check %s: false: %s", c.Name, c.Detail))
		default:
			unknown = append(unknown, fmt.Sprintf("check %s: unknown: %s", c.Name, c.Detail))
		}
	}
	switch {
	case v.Status == StatusAborted:
		v.Reasons = append(v.Reasons, append(failed, unknown...)...)
	case len(failed) > 0:
		if v.Status != StatusFail {
			v.Reasons = nil
		}
		v.Status = StatusFail
		v.Reasons = append(v.Reasons, append(failed, unknown...)...)
	case len(unknown) > 0 && v.Status == StatusPass:
		v.Status, v.Reasons = StatusInvalid, unknown
	case len(unknown) > 0:
		v.Reasons = append(v.Reasons, unknown...)
	}
	return v
}
