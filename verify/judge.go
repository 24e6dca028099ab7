package verify

import (
	"fmt"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// Validity bounds: below them a phase did not receive the load it asked for, so its latencies
// and errors say nothing about the target at that load.
const (
	AchievedRatioMin = 0.97 // achieved rate / target rate
	DroppedRatioMax  = 0.01 // dropped arrivals / arrivals
)

// JudgeMode says whether and how a phase is judged.
type JudgeMode string

// Judge modes.
const (
	JudgeOff JudgeMode = "off" // run, report, never judge (a warmup)
	JudgeSLA JudgeMode = "sla" // judge the criteria and validity
	// JudgeHeadroom judges like JudgeSLA and reports the achieved rate as a multiple of the
	// plan's expected peak: the headroom, proven when the phase passes.
	JudgeHeadroom JudgeMode = "headroom"
)

// Judged reports whether m judges the phase.
func (m JudgeMode) Judged() bool { return m == JudgeSLA || m == JudgeHeadroom }

// Status is a verdict's outcome.
type Status string

// Statuses. A phase is pass, fail, invalid or skipped; a run is pass, fail, invalid or aborted.
const (
	StatusPass    Status = "pass"
	StatusFail    Status = "fail"    // a criterion failed, or had no data
	StatusInvalid Status = "invalid" // the load was not what the plan asked for: never a pass
	StatusSkipped Status = "skipped" // not judged, or did not run
	StatusAborted Status = "aborted" // the run stopped early: a signal, a halt, abortOnFail
)

// PhaseInput is what Judge needs of one phase of a finished (or, for CheckAbort, running) run.
type PhaseInput struct {
	Name  string
	Judge JudgeMode
	// TargetRPS is the mean arrival rate the phase's profile asks for; 0 when the phase has no
	// load of its own (then only the dropped share is checked).
	TargetRPS float64
	// PeakRPS is the plan's expected peak, for a headroom phase's ratio; 0 when not set.
	PeakRPS float64
	// Duration is the phase's scheduled length without the grace period; for CheckAbort, the
	// time elapsed since the phase started.
	Duration time.Duration
	All      *metrics.Stats            // every operation merged; nil when the phase did not run
	ByOp     map[string]*metrics.Stats // per operation; an absent operation has no data
	// External holds the values of SourceTarget metrics: a counter's count, a gauge's value.
	// A metric absent here has no data.
	External map[Metric]float64
	// Faults are the phase's injected faults: one without evidence that it took effect makes
	// the phase invalid, since it did not rehearse what it claims.
	Faults []FaultCheck
}

// FaultCheck is one fault of a phase (on one target) and whether it was seen to take effect.
type FaultCheck struct {
	Name     string
	Evidence bool
	Detail   string // why there is no evidence
}

// Verdict is the judgement of a run, marshalled into report.json as:
//
//	{"status": "pass|fail|invalid|aborted",
//	 "reasons": ["phase headroom: http_req_duration p(99)<100: observed 120.5 ms", ...],
//	 "phases": [{
//	   "phase": "headroom", "judge": "off|sla|headroom", "status": "pass|fail|invalid|skipped",
//	   "reasons": ["..."], "duration_ms": 120000,
//	   "criteria": [{"metric": "http_req_duration{op:pay}", "expression": "p(99)<100",
//	                 "observed": 87.25, "unit": "ms", "ok": true,
//	                 "reason": "no data | observed 120.5 ms (only when not ok)",
//	                 "abort_on_fail": true (only when set)}],
//	   "validity": {"valid": true, "target_rps": 2200, "achieved_rps": 2198.5,
//	                "achieved_ratio": 0.9993, "achieved_ratio_min": 0.97, "arrivals": 264000,
//	                "dropped": 12, "dropped_ratio": 0.00005, "dropped_ratio_max": 0.01,
//	                "faults": 1, "faults_without_evidence": 0 (both only when the phase has faults)},
//	   "headroom": {"peak_rps": 2000, "achieved_rps": 2198.5, "ratio": 1.099, "proven": true}}]}
//
// "observed" is null when there was no data, and such a criterion is never ok. The run's
// "reasons" are never empty; a phase's are absent when it passed with criteria. "validity" is
// absent for skipped phases, "headroom" for phases not judged as headroom or without a peak.
// "unit" is "ms" for trends, "/s" or "B/s" for a counter's rate, "B" for byte counts, absent
// for plain numbers and fractions.
type Verdict struct {
	Status  Status         `json:"status"`
	Reasons []string       `json:"reasons"`
	Phases  []PhaseVerdict `json:"phases"`
	// Checks are the run's checks beside the phases' criteria (the target's audit); see
	// WithChecks.
	Checks []RunCheck `json:"checks,omitempty"`
}

// PhaseVerdict is the judgement of one phase.
type PhaseVerdict struct {
	Phase      string            `json:"phase"`
	Judge      JudgeMode         `json:"judge"`
	Status     Status            `json:"status"`
	Reasons    []string          `json:"reasons,omitempty"`
	DurationMS float64           `json:"duration_ms"`
	Criteria   []CriterionResult `json:"criteria"`
	Validity   *Validity         `json:"validity,omitempty"`
	Headroom   *Headroom         `json:"headroom,omitempty"`
}

// CriterionResult is one criterion judged on one phase.
type CriterionResult struct {
	Metric      string   `json:"metric"`     // the key, canonical: http_req_duration{op:pay}
	Expression  string   `json:"expression"` // as written: p(99)<100
	Observed    *float64 `json:"observed"`   // nil: no data
	Unit        string   `json:"unit,omitempty"`
	OK          bool     `json:"ok"`
	Reason      string   `json:"reason,omitempty"` // why not ok: "no data", "observed 120.5 ms"
	AbortOnFail bool     `json:"abort_on_fail,omitempty"`
}

// Validity holds the figures that decide whether a phase's load was the load asked for.
type Validity struct {
	Valid            bool    `json:"valid"`
	TargetRPS        float64 `json:"target_rps"`
	AchievedRPS      float64 `json:"achieved_rps"`   // completed requests per second
	AchievedRatio    float64 `json:"achieved_ratio"` // achieved / target; 0 without a target
	AchievedRatioMin float64 `json:"achieved_ratio_min"`
	Arrivals         int64   `json:"arrivals"` // sent or dropped
	Dropped          int64   `json:"dropped"`
	DroppedRatio     float64 `json:"dropped_ratio"`
	DroppedRatioMax  float64 `json:"dropped_ratio_max"`
	// Faults counts the phase's faults (per target); FaultsWithoutEvidence those never seen
	// to take effect. Both are absent for a phase without faults.
	Faults                int `json:"faults,omitempty"`
	FaultsWithoutEvidence int `json:"faults_without_evidence,omitempty"`
}

// Headroom is a headroom phase's achieved rate against the plan's expected peak.
type Headroom struct {
	PeakRPS     float64 `json:"peak_rps"`
	AchievedRPS float64 `json:"achieved_rps"`
	Ratio       float64 `json:"ratio"`  // achieved / peak: 1.1 is 10% above the expected peak
	Proven      bool    `json:"proven"` // the phase passed: the rate was sustained within the SLA
}

// Judge judges every phase on the criteria that apply to it and the run as a whole. It is a
// pure function of its inputs: a finished run's files are enough to judge it again.
//
// A judged phase is invalid when its load fell short (see Validity), else fails when any of its
// criteria fails or has no data, else passes. The run fails when a judged phase failed; else is
// invalid when a judged phase was invalid or did not run, when no phase was judged, or when a
// criterion names a phase that was not judged; else passes.
func Judge(phases []PhaseInput, criteria []Criterion) Verdict {
	v := Verdict{Phases: make([]PhaseVerdict, 0, len(phases))}
	for _, p := range phases {
		v.Phases = append(v.Phases, judgePhase(p, criteria))
	}
	v.Status, v.Reasons = overall(v.Phases, unmatched(phases, criteria))
	return v
}

// WithAbort returns v marked aborted, reason first. Phase verdicts stay as judged.
func (v Verdict) WithAbort(reason string) Verdict {
	v.Status = StatusAborted
	v.Reasons = append([]string{"aborted: " + reason}, v.Reasons...)
	return v
}

func judgePhase(p PhaseInput, criteria []Criterion) PhaseVerdict {
	pv := PhaseVerdict{
		Phase:      p.Name,
		Judge:      p.Judge,
		DurationMS: float64(p.Duration) / float64(time.Millisecond),
		Criteria:   []CriterionResult{},
	}
	switch {
	case !p.Judge.Judged():
		pv.Status, pv.Reasons = StatusSkipped, []string{"not judged"}
		return pv
	case p.All == nil:
		pv.Status, pv.Reasons = StatusSkipped, []string{"did not run"}
		return pv
	}
	var failed []string
	for _, c := range criteria {
		if !c.AppliesTo(p.Name, true) {
			continue
		}
		r := evaluate(c, p)
		pv.Criteria = append(pv.Criteria, r)
		if !r.OK {
			failed = append(failed, r.Metric+" "+r.Expression+": "+r.Reason)
		}
	}
	validity, short := validityOf(p)
	pv.Validity = &validity
	switch {
	case len(short) > 0:
		pv.Status, pv.Reasons = StatusInvalid, append(short, failed...)
	case len(failed) > 0:
		pv.Status, pv.Reasons = StatusFail, failed
	default:
		pv.Status = StatusPass
		if len(pv.Criteria) == 0 {
			pv.Reasons = []string{"no criteria: judged on validity only"}
		}
	}
	if p.Judge == JudgeHeadroom && p.PeakRPS > 0 {
		pv.Headroom = &Headroom{
			PeakRPS:     p.PeakRPS,
			AchievedRPS: validity.AchievedRPS,
			Ratio:       validity.AchievedRPS / p.PeakRPS,
			Proven:      pv.Status == StatusPass,
		}
	}
	return pv
}

// validityOf computes a phase's validity figures and the reasons it falls short, if any.
func validityOf(p PhaseInput) (Validity, []string) {
	v := Validity{
		TargetRPS:        p.TargetRPS,
		AchievedRatioMin: AchievedRatioMin,
		Arrivals:         p.All.Arrivals(),
		Dropped:          p.All.Dropped,
		DroppedRatioMax:  DroppedRatioMax,
	}
	var short []string
	if secs := p.Duration.Seconds(); secs > 0 {
		v.AchievedRPS = float64(p.All.Requests) / secs
	} else {
		short = append(short, "phase duration unknown: no rate can be computed")
	}
	if p.TargetRPS > 0 {
		v.AchievedRatio = v.AchievedRPS / p.TargetRPS
		if v.AchievedRatio < AchievedRatioMin {
			short = append(short, fmt.Sprintf("achieved %s/s, %s%% of the target %s/s (at least %s%% needed)",
				formatNumber(v.AchievedRPS), formatPercent(v.AchievedRatio),
				formatNumber(p.TargetRPS), formatPercent(AchievedRatioMin)))
		}
	}
	if v.Arrivals > 0 {
		v.DroppedRatio = float64(v.Dropped) / float64(v.Arrivals)
	}
	if v.DroppedRatio > DroppedRatioMax {
		short = append(short, fmt.Sprintf("dropped %d of %d arrivals, %s%% (at most %s%% allowed)",
			v.Dropped, v.Arrivals, formatPercent(v.DroppedRatio), formatPercent(DroppedRatioMax)))
	}
	v.Faults = len(p.Faults)
	for _, f := range p.Faults {
		if !f.Evidence {
			v.FaultsWithoutEvidence++
			short = append(short, fmt.Sprintf("fault %s: no evidence that it took effect (%s)", f.Name, f.Detail))
		}
	}
	v.Valid = len(short) == 0
	return v, short
}

// unmatched returns a reason for each criterion scoped to a phase that was not judged here.
func unmatched(phases []PhaseInput, criteria []Criterion) []string {
	judged := map[string]bool{}
	for _, p := range phases {
		judged[p.Name] = judged[p.Name] || p.Judge.Judged()
	}
	var out []string
	for _, c := range criteria {
		if c.Key.Phase != "" && !judged[c.Key.Phase] {
			out = append(out, fmt.Sprintf("criterion %s: phase %q is not a judged phase of this run", c, c.Key.Phase))
		}
	}
	return out
}

// overall folds the phase verdicts into the run's status and reasons.
func overall(phases []PhaseVerdict, unmatched []string) (Status, []string) {
	var failed, invalid []string
	judged, criteria := 0, 0
	for _, pv := range phases {
		if !pv.Judge.Judged() {
			continue
		}
		judged++
		criteria += len(pv.Criteria)
		for _, r := range pv.Reasons {
			line := "phase " + pv.Phase + ": " + r
			switch pv.Status {
			case StatusFail:
				failed = append(failed, line)
			case StatusInvalid, StatusSkipped:
				invalid = append(invalid, line)
			}
		}
	}
	invalid = append(invalid, unmatched...)
	switch {
	case len(failed) > 0:
		return StatusFail, append(failed, invalid...)
	case len(invalid) > 0:
		return StatusInvalid, invalid
	case judged == 0:
		return StatusInvalid, []string{"no phase was judged: nothing was verified"}
	}
	return StatusPass, []string{fmt.Sprintf("%s passed, %s held",
		plural(judged, "judged phase", "judged phases"), plural(criteria, "criterion", "criteria"))}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func formatPercent(ratio float64) string { return formatNumber(ratio * 100) }
