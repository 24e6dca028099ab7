package router

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/target/corezone"
)

// Routing refresh: the table is polled every pollInterval, and re-read at once (at most once per
// refreshGap) when a unit says the router's epoch is stale or a primary stops answering.
const (
	pollInterval = 100 * time.Millisecond
	pollTimeout  = 500 * time.Millisecond
	refreshGap   = 20 * time.Millisecond
)

// table holds the latest routing table read from the core zone.
type table struct {
	core    *corezone.Client
	log     *slog.Logger
	metrics *metrics
	state   atomic.Pointer[corezone.State]
	mu      sync.Mutex // serializes reads of the core zone
	readAt  time.Time  // under mu: when the last completed read started
}

// current is the latest table, nil before the first read.
func (t *table) current() *corezone.State { return t.state.Load() }

// poll reads the table every pollInterval until ctx ends.
func (t *table) poll(ctx context.Context) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		t.refresh(ctx, time.Time{})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh reads the table unless a read that started after since has finished meanwhile:
// concurrent requests that saw the same stale epoch cause one read, not one each.
func (t *table) refresh(ctx context.Context, since time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !since.IsZero() && t.readAt.After(since) {
		return
	}
	if gap := time.Until(t.readAt.Add(refreshGap)); !since.IsZero() && gap > 0 {
		time.Sleep(gap)
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	s, err := t.core.Routing(ctx)
	if err != nil {
		t.metrics.refreshes.WithLabelValues("error").Inc()
		if ctx.Err() == nil || t.current() == nil {
			t.log.Debug("read routing", "err", err)
		}
		return
	}
	t.readAt = started
	t.metrics.refreshes.WithLabelValues("ok").Inc()
	if old := t.current(); old == nil || old.Epoch != s.Epoch {
		t.metrics.epoch.Set(float64(s.Epoch))
		t.log.Info("routing", "epoch", s.Epoch)
	}
	t.state.Store(&s)
}
