package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
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

var errBadThrottle = errors.New("want rate_per_s >= 0 or 0 < percent <= 100")

// Throttle is a group's throttle as the admin API sets and reports it.
type Throttle struct {
	RatePerS float64 `json:"rate_per_s,omitempty"`
	Percent  float64 `json:"percent,omitempty"`
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
	if th.RatePerS < 0 || th.RatePerS > throttleRateMax || th.Percent < 0 || th.Percent > 100 ||
		math.IsNaN(th.RatePerS) || math.IsNaN(th.Percent) {
		return fmt.Errorf("throttle %+v: %w", th, errBadThrottle)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := th.RatePerS
	if th.Percent > 0 {
		base := int64(1)
		for _, r := range t.best {
			base = max(base, r)
		}
		limit = float64(base) * th.Percent / 100
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
