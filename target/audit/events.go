package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
)

// Limits of the event audit.
const (
	// SettleMax bounds how long an online audit waits for the pipeline to go quiet (every
	// committed event published and applied, no lag) before it judges what it sees: right after
	// load, the relays and consumers are still catching up, which is not a defect.
	SettleMax = 15 * time.Second
	// settleStill ends the wait early: a pipeline whose figures did not move for that long is
	// stuck (a part down, a defect), not draining. It outlasts a consumer's ack wait: the events
	// a killed consumer had fetched come back only then.
	settleStill = consumer.AckWait + 2*time.Second
	// settleEvery is the pause between two looks at an unsettled pipeline.
	settleEvery = 500 * time.Millisecond
	// streamEventsMax bounds the distinct event ids one stream scan remembers.
	streamEventsMax = 4_000_000
)

// ErrStreamTooLarge is a stream with more events than an audit remembers.
var ErrStreamTooLarge = errors.New("stream too large to audit")

// Pipeline is where an online audit reads the event pipeline: the broker and the consumer
// groups' processes.
type Pipeline struct {
	NATS      string     `json:"nats"`
	Consumers []Consumer `json:"consumers"`
	// Stream is the stream to audit: empty for production's, events.ShadowStream for the
	// shadow plane's (shadow.go).
	Stream string `json:"stream,omitempty"`
}

// Consumer is one running consumer group to audit.
type Consumer struct {
	Group string `json:"group"`
	Addr  string `json:"addr"` // host:port of its HTTP API
}

// OnlineWithEvents is Online plus the event invariants over the pipeline p. It waits up to
// SettleMax for the pipeline to drain; a part that does not answer makes the invariants that
// need it unknown.
func OnlineWithEvents(ctx context.Context, client *http.Client, targets []Target, p Pipeline) (Report, error) {
	rep, err := Online(ctx, client, targets)
	if err != nil {
		return rep, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	gather := func(ctx context.Context) ledger.Events {
		ev := ledger.Events{}
		ev.Outbox, ev.Error = onlineOutbox(ctx, client, targets, rep.Units)
		if ev.Error == "" {
			ev.Stream, ev.StreamMessages, ev.Error = streamOnline(ctx, p.NATS, cmp.Or(p.Stream, events.Stream))
		}
		for _, c := range p.Consumers {
			var g ledger.Group
			if err := get(ctx, client, "http://"+c.Addr+"/internal/audit", &g); err != nil {
				g = ledger.Group{Error: err.Error()}
			}
			g.Name = c.Group
			ev.Groups = append(ev.Groups, g)
		}
		return ev
	}
	return rep.withEvents(settle(ctx, gather, quiet)), nil
}

// settle gathers until quiet says so, the figures stop moving for settleStill, SettleMax passed
// or ctx ended, and returns the last figures gathered.
func settle[T any](ctx context.Context, gather func(context.Context) T, quiet func(T) bool) T {
	deadline := time.Now().Add(SettleMax)
	var last string
	moved := time.Now()
	for {
		v := gather(ctx)
		if now := fmt.Sprintf("%+v", v); now != last {
			last, moved = now, time.Now()
		}
		if quiet(v) || time.Now().After(deadline) || time.Since(moved) >= settleStill || ctx.Err() != nil {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-time.After(settleEvery):
		}
	}
}

// quiet reports whether every committed event is published once and applied by every group.
func quiet(ev ledger.Events) bool {
	if ev.Error != "" || ev.Stream != ev.Outbox || ev.StreamMessages != ev.Stream.Count || len(ev.Groups) == 0 {
		return false
	}
	for _, g := range ev.Groups {
		if g.Error != "" || g.Inbox != ev.Outbox || g.Lag != 0 {
			return false
		}
	}
	return true
}

// withEvents adds the event invariants and their figures to r.
func (r Report) withEvents(ev ledger.Events) Report {
	if len(ev.Groups) == 0 {
		ev.Groups = []ledger.Group{{Name: "-", Error: "no consumer group to audit"}}
	}
	r.Events = &ev
	r.Checks = append(r.Checks, ledger.EvaluateEvents(ev)...)
	r.Verdict = ledger.Overall(r.Checks)
	return r
}

// onlineOutbox folds every unit's outbox, read from its authoritative primary.
func onlineOutbox(ctx context.Context, client *http.Client, targets []Target, units []ledger.Unit) (ledger.Digest, string) {
	var total ledger.Digest
	for _, u := range units {
		p, ok := ledger.Authoritative(u.Replicas)
		if !ok {
			return total, fmt.Sprintf("unit %s has no authoritative primary: its outbox is not read", u.Name)
		}
		var a auditAnswer
		addr := addrOf(targets, u.Replicas[p])
		if err := get(ctx, client, "http://"+addr+"/internal/audit?outbox_only=1", &a); err != nil {
			return total, err.Error()
		}
		if a.Outbox == nil {
			return total, fmt.Sprintf("unit %s answered no outbox", u.Name)
		}
		total.Merge(*a.Outbox)
	}
	return total, ""
}

// streamOnline reads the stream through the broker at url.
func streamOnline(ctx context.Context, url, stream string) (ledger.Digest, int64, string) {
	if url == "" {
		return ledger.Digest{}, 0, "no broker to read the stream from"
	}
	nc, err := nats.Connect(url, nats.Name("paycell-audit"), nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return ledger.Digest{}, 0, fmt.Sprintf("connect to broker: %v", err)
	}
	defer nc.Close()
	return streamDigest(ctx, nc, stream)
}

// streamDigest folds the stream's distinct events and counts its messages.
func streamDigest(ctx context.Context, nc *nats.Conn, stream string) (ledger.Digest, int64, string) {
	js, err := jetstream.New(nc)
	if err != nil {
		return ledger.Digest{}, 0, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, ReplicaTimeout)
	defer cancel()
	var d ledger.Digest
	seen := map[string]struct{}{}
	tooMany := false
	n, err := events.ScanStream(ctx, js, stream, func(e events.Event, msgID string) {
		if e.ID == "" || msgID != e.ID {
			return // undecodable or mislabelled: counted as a message, never as an event
		}
		if _, dup := seen[e.ID]; dup {
			return
		}
		if len(seen) >= streamEventsMax {
			tooMany = true
			return
		}
		seen[e.ID] = struct{}{}
		d.Add(e.ID, e.Key)
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return d, 0, "" // nothing was ever published
	case err != nil:
		return d, n, err.Error()
	case tooMany:
		return d, n, fmt.Sprintf("%d distinct events or more: %v", streamEventsMax, ErrStreamTooLarge)
	}
	return d, n, ""
}

// offlineEvents gathers the event figures from a stopped target's data directory: outboxes
// from the units' authoritative databases, the stream from the embedded broker's files
// (DATA/broker), the groups' inboxes from DATA/consumers/<group>. A target started without
// the pipeline (neither directory) has no event figures: ok is false. Lag offline is the
// committed events a group has not applied; max lag and drain time are not kept on disk.
func offlineEvents(ctx context.Context, dataDir string, srv sqldb.Server, units []ledger.Unit, dbs map[string]*storage.DB) (ev ledger.Events, ok bool) {
	brokerDir, consumersDir := filepath.Join(dataDir, "broker"), filepath.Join(dataDir, "consumers")
	_, errB := os.Stat(brokerDir)
	_, errC := os.Stat(consumersDir)
	if errB != nil && errC != nil {
		return ev, false
	}
	for _, u := range units {
		p, found := ledger.Authoritative(u.Replicas)
		db := dbs[u.Name+"/"+u.Replicas[max(p, 0)].Replica]
		if !found || db == nil {
			ev.Error = fmt.Sprintf("unit %s has no authoritative primary: its outbox is not read", u.Name)
			break
		}
		d, err := db.OutboxDigest(ctx, u.Name)
		if err != nil {
			ev.Error = err.Error()
			break
		}
		ev.Outbox.Merge(d)
	}
	if ev.Error == "" {
		ev.Stream, ev.StreamMessages, ev.Error = streamOffline(ctx, brokerDir)
	}
	for _, name := range events.Groups() {
		g, err := consumer.ReadFigures(ctx, srv.Place(filepath.Join(consumersDir, name), consumer.FileName, "consumer", name))
		g.Name = name
		if err != nil {
			g.Error = err.Error()
		}
		g.Lag = max(ev.Outbox.Count-g.Inbox.Count, 0)
		ev.Groups = append(ev.Groups, g)
	}
	return ev, true
}

// streamOffline reads the stream from the embedded broker's files.
func streamOffline(ctx context.Context, brokerDir string) (ledger.Digest, int64, string) {
	if _, err := os.Stat(brokerDir); err != nil {
		return ledger.Digest{}, 0, "no embedded broker's files (an external broker is not read offline)"
	}
	b, err := events.OpenStore(brokerDir)
	if err != nil {
		return ledger.Digest{}, 0, err.Error()
	}
	defer b.Close()
	nc, err := b.ConnectInProcess()
	if err != nil {
		return ledger.Digest{}, 0, err.Error()
	}
	defer nc.Close()
	return streamDigest(ctx, nc, events.Stream)
}
