package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of a throttle.
const (
	throttleRateMax = 1_000_000
	pausedPoll      = 20 * time.Millisecond
	// unthrottledWindows are the seconds whose best rate is the group's unthrottled rate.
	unthrottledWindows = 10
)

var errBadThrottle = errors.New("want exactly one of rate_per_s (0 to 1000000; 0 pauses) and percent (0 < percent <= 100)")

// Throttle is a group's throttle as the admin API sets and reports it: exactly one of its
// fields is set (a field left out is not a zero: {} is no throttle, not a pause).
type Throttle struct {
	RatePerS *float64 `json:"rate_per_s,omitempty"`
	Percent  *float64 `json:"percent,omitempty"`
}

// RateThrottle is a throttle to perS events per second (0: a pause).
func RateThrottle(perS float64) Throttle { return Throttle{RatePerS: &perS} }

// PercentThrottle is a throttle to percent of the group's unthrottled rate.
func PercentThrottle(percent float64) Throttle { return Throttle{Percent: &percent} }

// Validate reports whether th sets exactly one limit, within its range.
func (th Throttle) Validate() error {
	switch {
	case th.RatePerS == nil && th.Percent == nil:
		return fmt.Errorf("throttle: neither rate_per_s nor percent: %w", errBadThrottle)
	case th.RatePerS != nil && th.Percent != nil:
		return fmt.Errorf("throttle: both rate_per_s and percent: %w", errBadThrottle)
	case th.RatePerS != nil && !(*th.RatePerS >= 0 && *th.RatePerS <= throttleRateMax):
		return fmt.Errorf("throttle: rate_per_s %v: %w", *th.RatePerS, errBadThrottle)
	case th.Percent != nil && !(*th.Percent > 0 && *th.Percent <= 100):
		return fmt.Errorf("throttle: percent %v: %w", *th.Percent, errBadThrottle)
	}
	return nil
}

// values are th's rate and percent, 0 for the one not set.
func (th Throttle) values() (ratePerS, percent float64) {
	if th.RatePerS != nil {
		ratePerS = *th.RatePerS
	}
	if th.Percent != nil {
		percent = *th.Percent
	}
	return ratePerS, percent
}

// throttle limits how many events a group applies per second: nil limiter is full speed, a
// zero rate a pause.
type throttle struct {
	mu      sync.Mutex
	set     *Throttle
	lim     *rate.Limiter
	paused  bool
	limit   float64 // the effective events per second while throttled
	best    []int64 // the last unthrottled seconds' rates
	changed chan struct{}
}

func newThrottle() *throttle { return &throttle{changed: make(chan struct{})} }

// apply replaces the throttle. A percent is of the group's best rate over the last unthrottled
// seconds (at least 1 event per second).
func (t *throttle) apply(th Throttle) error {
	if err := th.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	limit, percent := th.values()
	if th.Percent != nil {
		base := int64(1)
		for _, r := range t.best {
			base = max(base, r)
		}
		limit = float64(base) * percent / 100
	}
	t.set, t.limit, t.paused = &th, limit, limit == 0
	t.lim = nil
	if limit > 0 {
		t.lim = rate.NewLimiter(rate.Limit(limit), max(1, int(limit/10)))
	}
	close(t.changed)
	t.changed = make(chan struct{})
	return nil
}

// release removes the throttle; it reports whether there was one.
func (t *throttle) release() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	had := t.set != nil
	t.set, t.lim, t.paused, t.limit = nil, nil, false, 0
	close(t.changed)
	t.changed = make(chan struct{})
	return had
}

// state returns the current throttle (nil: none) and its effective rate.
func (t *throttle) state() (*Throttle, float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.set, t.limit
}

// admit waits while paused and returns how many messages the next fetch may take.
func (t *throttle) admit(ctx context.Context, most int) (int, error) {
	for {
		t.mu.Lock()
		paused, lim, changed := t.paused, t.lim, t.changed
		t.mu.Unlock()
		if !paused {
			if lim == nil {
				return most, nil
			}
			return min(most, lim.Burst()), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-changed:
		}
	}
}

// took waits until n events fit the throttle's rate (no wait at full speed).
func (t *throttle) took(ctx context.Context, n int) {
	t.mu.Lock()
	lim, changed := t.lim, t.changed
	t.mu.Unlock()
	if lim == nil {
		return
	}
	r := lim.ReserveN(time.Now(), n)
	if !r.OK() {
		return
	}
	timer := time.NewTimer(r.Delay())
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-changed: // released or replaced: stop waiting
	case <-timer.C:
	}
}

// observe records one second's rate while unthrottled.
func (t *throttle) observe(r int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.set != nil {
		return
	}
	t.best = append(t.best, r)
	if len(t.best) > unthrottledWindows {
		t.best = t.best[1:]
	}
}
