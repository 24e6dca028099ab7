// Command benchthrottle reads the run directory of scenarios/consumer-lag.yaml for
// `make bench-target` and prints issue 4's figures for a throttled consumer, side by side:
//
//   - payment p99 (from the intended send time) in the baseline phase and in the throttled phase,
//     and their ratio (goal: within 10%, a ratio of at most 1.10);
//
//   - the consumer lag at the release of the throttle and the time from the release until the
//     lag is back to the baseline phase's level (goal: within 60 s);
//
//   - the audit's event figures: events published, applied per group, lost or applied twice.
//
//     benchthrottle -run DIR
//
// The last line of output is a JSON summary.
package main

import (
	"encoding/json"
	"errors"
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

// The phases and the fault of scenarios/consumer-lag.yaml.
const (
	baselinePhase  = "baseline"
	throttledPhase = "throttled"
	payOp          = "pay"
)

type summary struct {
	BaselineP99MS  float64          `json:"baseline_p99_ms"`
	ThrottledP99MS float64          `json:"throttled_p99_ms"`
	P99Ratio       float64          `json:"p99_ratio"`
	LagAtRelease   float64          `json:"lag_at_release"`
	LagMax         float64          `json:"lag_max"`
	BaselineLagMax float64          `json:"baseline_lag_max"`
	DrainS         float64          `json:"drain_s"` // -1: not drained before the run ended
	Audit          string           `json:"audit"`
	AuditFigures   map[string]int64 `json:"audit_figures"`
}

func main() {
	dir := flag.String("run", "", "run directory of scenarios/consumer-lag.yaml (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: benchthrottle -run DIR")
		os.Exit(2)
	}
	s, err := measure(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchthrottle:", err)
		os.Exit(1)
	}
	fmt.Printf("payment p99: baseline %.1f ms, throttled %.1f ms, ratio %.2f (goal <= 1.10)\n", s.BaselineP99MS, s.ThrottledP99MS, s.P99Ratio)
	if s.DrainS < 0 {
		fmt.Printf("consumer lag: %.0f at release (max %.0f); NOT drained to the baseline level %.0f before the run ended\n", s.LagAtRelease, s.LagMax, s.BaselineLagMax)
	} else {
		fmt.Printf("consumer lag: %.0f at release (max %.0f); back to the baseline level %.0f after %.0f s (goal <= 60)\n", s.LagAtRelease, s.LagMax, s.BaselineLagMax, s.DrainS)
	}
	fmt.Printf("audit %s: %s\n", s.Audit, figures(s.AuditFigures))
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func measure(dir string) (summary, error) {
	rec, err := run.ReadRecord(dir)
	if err != nil {
		return summary{}, err
	}
	var s summary
	base, ok1 := phase(rec, baselinePhase)
	thr, ok2 := phase(rec, throttledPhase)
	if !ok1 || !ok2 {
		return s, fmt.Errorf("%s: phases %q and %q did not both run: not a run of scenarios/consumer-lag.yaml", dir, baselinePhase, throttledPhase)
	}
	s.BaselineP99MS, err = p99(base)
	if err != nil {
		return s, err
	}
	s.ThrottledP99MS, err = p99(thr)
	if err != nil {
		return s, err
	}
	s.P99Ratio = s.ThrottledP99MS / s.BaselineP99MS
	lag, err := lagSeries(dir)
	if err != nil {
		return s, err
	}
	s.BaselineLagMax = -1
	for _, p := range lag {
		if inside(p.at, base) {
			s.BaselineLagMax = max(s.BaselineLagMax, p.value)
		}
		s.LagMax = max(s.LagMax, p.value)
	}
	if s.BaselineLagMax < 0 {
		return s, errors.New("no consumer lag sampled in the baseline phase: not a run on the built-in target")
	}
	// The release is the throttled phase's end (the fault lasts the whole phase); drained is the
	// first sample after it at or under the baseline's worst lag.
	s.DrainS = -1
	released := thr.Ended
	for _, p := range lag {
		if p.at.Before(released) {
			s.LagAtRelease = p.value
			continue
		}
		if p.value <= s.BaselineLagMax {
			s.DrainS = p.at.Sub(released).Seconds()
			break
		}
	}
	if rec.Audit == nil {
		return s, errors.New("the run has no audit: not a run on the built-in target")
	}
	s.Audit = rec.Audit.Verdict
	s.AuditFigures = map[string]int64{}
	// A rehearsal's payments carry the stress marker: their events are the shadow plane's
	// (checks named shadow.<name>); production's are reported beside them, prefixed.
	for _, c := range rec.Audit.Checks {
		name, plane := strings.CutPrefix(c.Name, "shadow.")
		if !strings.HasPrefix(name, "events") && name != "lag_drained" {
			continue
		}
		for k, v := range c.Figures {
			if !plane {
				k = "production." + k
			}
			s.AuditFigures[k] = v
		}
	}
	return s, nil
}

func phase(rec *run.Record, name string) (run.Phase, bool) {
	for _, p := range rec.Phases {
		if p.Name == name && p.Ran() {
			return p, true
		}
	}
	return run.Phase{}, false
}

func p99(p run.Phase) (float64, error) {
	st, ok := p.ByOp[payOp]
	if !ok || st.Requests == 0 {
		return 0, fmt.Errorf("phase %s: no %q requests", p.Name, payOp)
	}
	return float64(st.Latency.Percentile(99)) / float64(time.Millisecond), nil
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
	sums := map[time.Time]float64{}
	err = metrics.ReadTimeline(f, func(e metrics.Entry) error {
		if g := e.Gauge; g != nil && strings.HasPrefix(g.Name, run.ConsumerLagGauge) {
			sums[g.Time.Truncate(100*time.Millisecond)] += g.Value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]sample, 0, len(sums))
	for t, v := range sums {
		out = append(out, sample{t, v})
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
