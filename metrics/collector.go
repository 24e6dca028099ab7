package metrics

import (
	"slices"
	"sync"
	"time"
)

// Key names one series: a phase and an operation of its request mix.
type Key struct {
	Phase string `json:"phase"`
	Op    string `json:"op"`
}

// Window is what was recorded for one key during one interval (a second, normally).
type Window struct {
	Start time.Time     `json:"start"`
	Span  time.Duration `json:"span_ns"`
	Key
	Stats *Stats `json:"stats"`
}

// Collector folds samples and drops into running totals per key and into the current window.
// It is safe for concurrent use. Memory is bounded by the number of keys, not by run length:
// Rotate hands the closed window to the caller and recycles its memory on the next rotation.
type Collector struct {
	mu          sync.Mutex
	totals      map[Key]*Stats
	window      map[Key]*Stats
	windowStart time.Time
	spare       []*Stats // recycled window stats
	handedOut   []*Stats // stats returned by the last Rotate, recycled on the next one
}

// NewCollector returns an empty collector whose first window starts at start.
func NewCollector(start time.Time) *Collector {
	return &Collector{
		totals:      map[Key]*Stats{},
		window:      map[Key]*Stats{},
		windowStart: start,
	}
}

// Record folds one sample.
func (c *Collector) Record(s Sample) {
	k := Key{Phase: s.Phase, Op: s.Op}
	c.mu.Lock()
	c.statsLocked(k).Add(s)
	c.windowLocked(k).Add(s)
	c.mu.Unlock()
}

// Drop counts one arrival that could not be sent because no worker was free.
func (c *Collector) Drop(phase, op string) {
	k := Key{Phase: phase, Op: op}
	c.mu.Lock()
	c.statsLocked(k).Dropped++
	c.windowLocked(k).Dropped++
	c.mu.Unlock()
}

func (c *Collector) statsLocked(k Key) *Stats {
	s, ok := c.totals[k]
	if !ok {
		s = NewStats()
		c.totals[k] = s
	}
	return s
}

func (c *Collector) windowLocked(k Key) *Stats {
	s, ok := c.window[k]
	if !ok {
		if n := len(c.spare); n > 0 {
			s = c.spare[n-1]
			c.spare = c.spare[:n-1]
		} else {
			s = NewStats()
		}
		c.window[k] = s
	}
	return s
}

// Rotate closes the current window at now and starts the next. It returns the closed window's
// series sorted by key; they stay valid until the next call to Rotate, which recycles them.
func (c *Collector) Rotate(now time.Time) []Window {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.handedOut {
		s.Reset()
		c.spare = append(c.spare, s)
	}
	c.handedOut = c.handedOut[:0]
	out := make([]Window, 0, len(c.window))
	for k, s := range c.window {
		out = append(out, Window{Start: c.windowStart, Span: now.Sub(c.windowStart), Key: k, Stats: s})
		c.handedOut = append(c.handedOut, s)
	}
	clear(c.window)
	c.windowStart = now
	slices.SortFunc(out, func(a, b Window) int { return compareKeys(a.Key, b.Key) })
	return out
}

// Totals returns a copy of the running totals per key.
func (c *Collector) Totals() map[Key]*Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Key]*Stats, len(c.totals))
	for k, s := range c.totals {
		cp := NewStats()
		cp.Merge(s)
		out[k] = cp
	}
	return out
}

// Phase returns the totals of one phase, all operations merged, and of each operation.
func (c *Collector) Phase(phase string) (all *Stats, byOp map[string]*Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all, byOp = NewStats(), map[string]*Stats{}
	for k, s := range c.totals {
		if k.Phase != phase {
			continue
		}
		all.Merge(s)
		cp := NewStats()
		cp.Merge(s)
		byOp[k.Op] = cp
	}
	return all, byOp
}

func compareKeys(a, b Key) int {
	if a.Phase != b.Phase {
		if a.Phase < b.Phase {
			return -1
		}
		return 1
	}
	switch {
	case a.Op < b.Op:
		return -1
	case a.Op > b.Op:
		return 1
	}
	return 0
}
