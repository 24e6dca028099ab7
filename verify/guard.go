package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadGuard is wrapped by every error of ParseGuard.
var ErrBadGuard = errors.New("bad abort condition")

// Limits of a guard.
const (
	guardBytesMax = 256
	GuardForMax   = time.Hour // the longest "for" a guard may wait
)

// Guard is an abort condition (a plan's abortWhen): when its expression holds on every
// per-second window for its For duration, the run stops. Unlike a threshold, the expression
// says what is bad: "http_req_failed rate>0.2 for 10s".
type Guard struct {
	Source string
	Key    Key
	Breach Threshold // holds when the window is bad
	For    time.Duration
}

// String returns the guard as written.
func (g Guard) String() string { return g.Source }

// ParseGuard parses an abort condition:
//
//	guard = ws* key ws+ threshold [ ws+ "for" ws+ duration ] ws*
//
// with key and threshold as ParseKey and ParseThreshold read them (the aggregation must suit
// the metric) and duration as Go writes them (10s, 1m30s), at most GuardForMax.
func ParseGuard(s string) (Guard, error) {
	if len(s) > guardBytesMax {
		return Guard{}, fmt.Errorf("%w: longer than %d bytes", ErrBadGuard, guardBytesMax)
	}
	src := strings.TrimSpace(s)
	g := Guard{Source: src}
	expr := src
	if i := strings.LastIndex(src, " for "); i >= 0 {
		d, err := time.ParseDuration(strings.TrimSpace(src[i+5:]))
		if err != nil || d < 0 || d > GuardForMax {
			return Guard{}, fmt.Errorf("%w: %q: want \"for\" and a duration up to %s, like 10s", ErrBadGuard, src, GuardForMax)
		}
		g.For, expr = d, strings.TrimSpace(src[:i])
	}
	keyEnd := strings.IndexAny(expr, " \t")
	if open := strings.IndexByte(expr, '{'); open >= 0 && (keyEnd < 0 || open < keyEnd) {
		keyEnd = strings.IndexByte(expr, '}') + 1
	}
	if keyEnd <= 0 || keyEnd >= len(expr) {
		return Guard{}, fmt.Errorf("%w: %q: want \"metric aggregation>number [for duration]\", like \"http_req_failed rate>0.2 for 10s\"", ErrBadGuard, src)
	}
	k, err := ParseKey(expr[:keyEnd])
	if err != nil {
		return Guard{}, fmt.Errorf("%w: %w", ErrBadGuard, err)
	}
	t, err := ParseThreshold(expr[keyEnd:])
	if err != nil {
		return Guard{}, fmt.Errorf("%w: %w", ErrBadGuard, err)
	}
	if _, err := NewCriterion(k, t); err != nil {
		return Guard{}, fmt.Errorf("%w: %w", ErrBadGuard, err)
	}
	g.Key, g.Breach = k, t
	return g, nil
}

// GuardState is where a guard stands in a running phase: breaching since when.
type GuardState struct {
	Breaching bool
	Since     time.Duration // offset in the phase where the breach began
	Observed  float64       // the last window's value
	Unit      string
}

// Step evaluates the guard on one window of a running phase: window holds that window's
// stats (All, ByOp) with Duration its span; end is the window's end as an offset in the phase.
// It returns the new state and whether the guard trips. A window without data ends a breach.
func (g Guard) Step(st GuardState, window PhaseInput, end time.Duration) (GuardState, bool) {
	if g.Key.Phase != "" && g.Key.Phase != window.Name {
		return GuardState{}, false
	}
	m, ok := Lookup(g.Key.Metric)
	if !ok {
		return GuardState{}, false
	}
	c := Criterion{Key: g.Key, Threshold: g.Breach}
	v, ok := observe(m, c, window)
	if !ok || !g.Breach.Holds(v) {
		return GuardState{}, false
	}
	if !st.Breaching {
		st = GuardState{Breaching: true, Since: end - window.Duration}
	}
	st.Observed, st.Unit = v, unitOf(m, g.Breach.Aggregation)
	return st, end-st.Since >= g.For
}

// Reason says why a tripped guard stops the run.
func (g Guard) Reason(phase string, st GuardState) string {
	s := fmt.Sprintf("phase %s: abortWhen %s: observed %s", phase, g.Source, withUnit(st.Observed, st.Unit))
	if g.For > 0 {
		s += " for " + g.For.String()
	}
	return s
}
