// Command benchthrottle reads the run directories of scenarios/consumer-lag.yaml for
// `make bench-target` and prints issue 4's figures for a throttled consumer, side by side:
//
//   - payment p99 (from the intended send time) in the throttled phase against the unthrottled
//     reference around it: the baseline phase before the throttle and the after phase, once the
//     lag has drained, merged. Their ratio is the throttle's cost (goal: within 10%, a ratio of
//     at most 1.10). A reference on both sides cancels a drift over the run; the ratio of the
//     two unthrottled phases (after / baseline) is printed beside it as the noise of the machine;
//
//   - the consumer lag at the release of the throttle and the time from the release until the
//     lag is back to the baseline phase's level (goal: within 60 s);
//
//   - the audit's event figures: events published, applied per group, lost or applied twice.
//
// Several runs (one -run each) are pooled: the latencies of a phase merged over the runs, the
// worst drain, every audit.
//
//	benchthrottle -run DIR [-run DIR...]
//
// The last line of output is a JSON summary.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/run"
)

// The phases and the operation of scenarios/consumer-lag.yaml.
const (
	baselinePhase  = "baseline"
	throttledPhase = "throttled"
	afterPhase     = "after"
	payOp          = "pay"
)

type summary struct {
	Runs           int              `json:"runs"`
	BaselineP99MS  float64          `json:"baseline_p99_ms"`
	AfterP99MS     float64          `json:"after_p99_ms"`
	ReferenceP99MS float64          `json:"reference_p99_ms"` // baseline and after merged
	ThrottledP99MS float64          `json:"throttled_p99_ms"`
	P99Ratio       float64          `json:"p99_ratio"`     // throttled / reference
	ControlRatio   float64          `json:"control_ratio"` // after / baseline: the noise
	Rounds         []round          `json:"rounds"`
	Audit          string           `json:"audit"` // "true" when every run's audit is
	AuditFigures   map[string]int64 `json:"audit_figures"`
}

// round is one run's own figures.
type round struct {
	Dir            string  `json:"dir"`
	BaselineP99MS  float64 `json:"baseline_p99_ms"`
	ThrottledP99MS float64 `json:"throttled_p99_ms"`
	AfterP99MS     float64 `json:"after_p99_ms"`
	LagAtRelease   float64 `json:"lag_at_release"`
	LagMax         float64 `json:"lag_max"`
	BaselineLagMax float64 `json:"baseline_lag_max"`
	DrainS         float64 `json:"drain_s"` // -1: not drained before the run ended
	Audit          string  `json:"audit"`
}

// dirs is a repeatable flag.
type dirs []string

func (d *dirs) String() string     { return strings.Join(*d, ",") }
func (d *dirs) Set(v string) error { *d = append(*d, v); return nil }

func main() {
	var runs dirs
	flag.Var(&runs, "run", "run directory of scenarios/consumer-lag.yaml (required; repeat to pool runs)")
	flag.Parse()
	if len(runs) == 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: benchthrottle -run DIR [-run DIR...]")
		os.Exit(2)
	}
	s, err := measure(runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchthrottle:", err)
		os.Exit(1)
	}
	for i, r := range s.Rounds {
		drain := "NOT drained before the run ended"
		if r.DrainS >= 0 {
			drain = fmt.Sprintf("back to the baseline level %.0f after %.0f s (goal <= 60)", r.BaselineLagMax, r.DrainS)
		}
		fmt.Printf("run %d: payment p99 baseline %.1f ms, throttled %.1f ms, after %.1f ms; consumer lag %.0f at release (max %.0f), %s; audit %s\n",
			i+1, r.BaselineP99MS, r.ThrottledP99MS, r.AfterP99MS, r.LagAtRelease, r.LagMax, drain, r.Audit)
	}
	fmt.Printf("payment p99 over %d run(s): unthrottled (baseline + after) %.1f ms, throttled %.1f ms, ratio %.2f (goal <= 1.10)\n",
		s.Runs, s.ReferenceP99MS, s.ThrottledP99MS, s.P99Ratio)
	fmt.Printf("noise of the machine: p99 after / baseline, both unthrottled, %.1f / %.1f ms = %.2f\n", s.AfterP99MS, s.BaselineP99MS, s.ControlRatio)
	fmt.Printf("audit %s: %s\n", s.Audit, figures(s.AuditFigures))
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func measure(runs []string) (summary, error) {
	s := summary{Runs: len(runs), Audit: "true", AuditFigures: map[string]int64{}}
	base, thr, after := metrics.NewHistogram(), metrics.NewHistogram(), metrics.NewHistogram()
	for _, dir := range runs {
		rec, err := run.ReadRecord(dir)
		if err != nil {
			return s, err
		}
		r, hs, err := measureRun(dir, rec)
		if err != nil {
			return s, err
		}
		base.Merge(hs[0])
		thr.Merge(hs[1])
		after.Merge(hs[2])
		s.Rounds = append(s.Rounds, r)
		if r.Audit != "true" {
			s.Audit = r.Audit
		}
		for k, v := range auditFigures(rec) {
			s.AuditFigures[k] = pool(k, s.AuditFigures[k], v)
		}
	}
	ref := metrics.NewHistogram()
	ref.Merge(base)
	ref.Merge(after)
	s.BaselineP99MS, s.AfterP99MS = p99(base), p99(after)
	s.ReferenceP99MS, s.ThrottledP99MS = p99(ref), p99(thr)
	s.P99Ratio = s.ThrottledP99MS / s.ReferenceP99MS
	s.ControlRatio = s.AfterP99MS / s.BaselineP99MS
	return s, nil
}

// measureRun returns one run's figures and its baseline, throttled and after latencies.
func measureRun(dir string, rec *run.Record) (round, [3]*metrics.Histogram, error) {
	r := round{Dir: dir}
	var hs [3]*metrics.Histogram
	var phases [3]run.Phase
	for i, name := range []string{baselinePhase, throttledPhase, afterPhase} {
		p, ok := phase(rec, name)
		if !ok {
			return r, hs, fmt.Errorf("%s: phase %q did not run: not a run of scenarios/consumer-lag.yaml", dir, name)
		}
		st, ok := p.ByOp[payOp]
		if !ok || st.Requests == 0 || st.Latency == nil {
			return r, hs, fmt.Errorf("%s: phase %s: no %q requests", dir, p.Name, payOp)
		}
		phases[i], hs[i] = p, st.Latency
	}
	base, thr := phases[0], phases[1]
	r.BaselineP99MS, r.ThrottledP99MS, r.AfterP99MS = p99(hs[0]), p99(hs[1]), p99(hs[2])
	lag, err := lagSeries(dir)
	if err != nil {
		return r, hs, err
	}
	r.BaselineLagMax = -1
	for _, p := range lag {
		if inside(p.at, base) {
			r.BaselineLagMax = max(r.BaselineLagMax, p.value)
		}
		r.LagMax = max(r.LagMax, p.value)
	}
	if r.BaselineLagMax < 0 {
		return r, hs, fmt.Errorf("%s: no consumer lag sampled in the baseline phase: not a run on the built-in target", dir)
	}
	// The release is the throttled phase's end (the fault lasts the whole phase); drained is the
	// first sample after it at or under the baseline's worst lag.
	r.DrainS = -1
	released := thr.Ended
	for _, p := range lag {
		if p.at.Before(released) {
			r.LagAtRelease = p.value
			continue
		}
		if p.value <= r.BaselineLagMax {
			r.DrainS = p.at.Sub(released).Seconds()
			break
		}
	}
	if rec.Audit == nil {
		return r, hs, fmt.Errorf("%s: the run has no audit: not a run on the built-in target", dir)
	}
	r.Audit = rec.Audit.Verdict
	return r, hs, nil
}

// pool adds one run's audit figure to the runs' before it: counts add up, a maximum (max_lag_*,
// drain_ms_*) is the worst run's.
func pool(name string, sum, v int64) int64 {
	base := name[strings.LastIndex(name, ".")+1:]
	if strings.HasPrefix(base, "max_") || strings.HasPrefix(base, "drain_ms") {
		return max(sum, v)
	}
	return sum + v
}

// auditFigures are the audit's event figures. A rehearsal's payments carry the stress marker:
// their events are the shadow plane's (checks named shadow.<name>); production's are reported
// beside them, prefixed.
func auditFigures(rec *run.Record) map[string]int64 {
	out := map[string]int64{}
	for _, c := range rec.Audit.Checks {
		name, plane := strings.CutPrefix(c.Name, "shadow.")
		if !strings.HasPrefix(name, "events") && name != "lag_drained" {
			continue
		}
		for k, v := range c.Figures {
			if !plane {
				k = "production." + k
			}
			out[k] = v
		}
	}
	return out
}

func phase(rec *run.Record, name string) (run.Phase, bool) {
	for _, p := range rec.Phases {
		if p.Name == name && p.Ran() {
			return p, true
		}
	}
	return run.Phase{}, false
}

func p99(h *metrics.Histogram) float64 {
	return float64(h.Percentile(99)) / float64(time.Millisecond)
}

func inside(t time.Time, p run.Phase) bool { return !t.Before(p.Started) && t.Before(p.Ended) }

type sample struct {
	at    time.Time
	value float64
}

// lagSeries sums the consumer groups' lag gauges per sampling instant, in time order.
func lagSeries(dir string) ([]sample, error) {
	f, err := os.Open(filepath.Join(dir, "timeline.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One sampling instant's gauges share its time exactly; two instants can be milliseconds
	// apart (a phase's last sample and the next phase's first), so they are not bucketed.
	sums := map[int64]float64{} // Unix ns → the sum
	err = metrics.ReadTimeline(f, func(e metrics.Entry) error {
		if g := e.Gauge; g != nil && strings.HasPrefix(g.Name, run.ConsumerLagGauge) {
			sums[g.Time.UnixNano()] += g.Value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]sample, 0, len(sums))
	for t, v := range sums {
		out = append(out, sample{time.Unix(0, t), v})
	}
	slices.SortFunc(out, func(a, b sample) int { return a.at.Compare(b.at) })
	return out, nil
}

func figures(m map[string]int64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
