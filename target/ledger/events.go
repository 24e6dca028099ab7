package ledger

import (
	"fmt"
	"hash/fnv"
)

// The event invariants (part 2): every committed payment's event published once, applied once
// by every consumer group, and no lag left.
const (
	CheckEventsPublishedOnce = "events_published_once"
	CheckEventsAppliedOnce   = "events_applied_once"
	CheckLagDrained          = "lag_drained"
)

// Digest is an order-independent fingerprint of a set of events (id and payment key): two sets
// with the same count and sum are the same set, but for a 2^-64 chance.
type Digest struct {
	Count int64  `json:"count"`
	Sum   uint64 `json:"sum"`
}

// Add folds one event into d.
func (d *Digest) Add(id, key string) {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(key))
	d.Count++
	d.Sum += h.Sum64()
}

// Merge folds another digest (another unit's) into d.
func (d *Digest) Merge(o Digest) { d.Count, d.Sum = d.Count+o.Count, d.Sum+o.Sum }

// Group is the audit's view of one consumer group.
type Group struct {
	Name    string `json:"name"`
	Inbox   Digest `json:"inbox"`   // the events in the group's inbox
	Applied int64  `json:"applied"` // effects applied (one per inbox row when exactly once)
	Lag     int64  `json:"lag"`
	MaxLag  int64  `json:"max_lag"`
	DrainMS int64  `json:"drain_ms"` // the last drain after a throttle, 0 when none
	Error   string `json:"error,omitempty"`
}

// Events is the audit's view of the event pipeline: every unit's outbox (committed payments),
// the stream's distinct events and messages, and each consumer group.
type Events struct {
	Outbox         Digest  `json:"outbox"`
	Stream         Digest  `json:"stream"`
	StreamMessages int64   `json:"stream_messages"`
	Groups         []Group `json:"groups"`
	Error          string  `json:"error,omitempty"`
}

// EvaluateEvents judges the event invariants.
func EvaluateEvents(ev Events) []Check {
	pub := &judge{figures: map[string]int64{"events_committed": ev.Outbox.Count,
		"events_published": ev.Stream.Count, "stream_messages": ev.StreamMessages}}
	switch {
	case ev.Error != "":
		pub.unknown("no stream figures: %s", ev.Error)
	case ev.Stream != ev.Outbox:
		pub.fail("the stream's %d distinct events are not the %d committed payments' events", ev.Stream.Count, ev.Outbox.Count)
	}
	if ev.Error == "" && ev.StreamMessages != ev.Stream.Count {
		pub.fail("%d messages for %d distinct events: some published twice", ev.StreamMessages, ev.Stream.Count)
	}
	app := &judge{figures: map[string]int64{}}
	lag := &judge{figures: map[string]int64{}}
	for _, g := range ev.Groups {
		app.add("consumed_"+g.Name, g.Inbox.Count)
		lag.add("lag_"+g.Name, g.Lag)
		lag.add("max_lag_"+g.Name, g.MaxLag)
		lag.add("drain_ms_"+g.Name, g.DrainMS)
		if g.Error != "" {
			app.unknown("group %s: %s", g.Name, g.Error)
			lag.unknown("group %s: %s", g.Name, g.Error)
			continue
		}
		if ev.Error != "" {
			app.unknown("group %s: no outbox figures to compare its %d events with: %s", g.Name, g.Inbox.Count, ev.Error)
		} else if g.Inbox != ev.Outbox {
			app.fail("group %s applied %d events, not the %d committed", g.Name, g.Inbox.Count, ev.Outbox.Count)
		}
		if g.Applied != g.Inbox.Count {
			app.fail("group %s applied %d effects for %d events", g.Name, g.Applied, g.Inbox.Count)
		}
		if g.Lag != 0 {
			lag.fail("group %s still has %d events pending", g.Name, g.Lag)
		}
	}
	return []Check{
		pub.check(CheckEventsPublishedOnce, fmt.Sprintf("%d committed payments, each published once", ev.Outbox.Count)),
		app.check(CheckEventsAppliedOnce, fmt.Sprintf("every event applied once by each of %d groups", len(ev.Groups))),
		lag.check(CheckLagDrained, "no group has events pending"),
	}
}
