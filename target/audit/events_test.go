package audit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// pipeline is a unit pair whose relay publishes to an embedded broker, and the three consumer
// groups, all in this process; everything but the pair lives in dir.
type pipeline struct {
	pair   *unittest.Pair
	broker *events.Broker
	dir    string
	stops  []func()
	pipe   audit.Pipeline
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	pl := &pipeline{dir: t.TempDir()}
	b, err := events.StartBroker(events.BrokerConfig{DataDir: filepath.Join(pl.dir, "broker"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	pl.broker = b
	pl.pipe.NATS = b.URL()
	pl.pair = unittest.StartPair(t, unittest.Options{NATS: b.URL()})
	if err := os.Symlink(filepath.Join(pl.pair.DataDir, "units"), filepath.Join(pl.dir, "units")); err != nil {
		t.Fatal(err)
	}
	for _, g := range events.Groups() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		cfg := consumer.Config{Group: g, DataDir: filepath.Join(pl.dir, "consumers", g), NATS: b.URL(), Listener: ln}
		go func() { done <- consumer.Run(ctx, cfg) }() // ends with cancel
		pl.stops = append(pl.stops, func() { cancel(); <-done })
		pl.pipe.Consumers = append(pl.pipe.Consumers, audit.Consumer{Group: g, Addr: ln.Addr().String()})
	}
	t.Cleanup(pl.stop)
	return pl
}

// stop ends the consumers, then the broker; the pair stays (the test's cleanup ends it).
func (pl *pipeline) stop() {
	for _, stop := range pl.stops {
		stop()
	}
	pl.stops = nil
	if pl.broker != nil {
		pl.broker.Close()
		pl.broker = nil
	}
}

func (pl *pipeline) targets() []audit.Target {
	var ts []audit.Target
	for _, name := range []string{"r1", "r2"} {
		ts = append(ts, audit.Target{Unit: pl.pair.Unit, Replica: name, Addr: pl.pair.Replicas[name].Addr()})
	}
	return ts
}

func verdicts(rep audit.Report) map[string]ledger.Verdict {
	m := map[string]ledger.Verdict{}
	for _, c := range rep.Checks {
		m[c.Name] = c.Verdict
	}
	return m
}

var eventChecks = []string{ledger.CheckEventsPublishedOnce, ledger.CheckEventsAppliedOnce, ledger.CheckLagDrained}

func TestEventsOnlineAndOffline(t *testing.T) {
	pl := startPipeline(t)
	ctx := context.Background()
	p := pl.pair
	if _, err := p.Client.Open(ctx, p.Primary().Addr(), p.Epoch(), []ledger.Account{{UID: 1, BalanceMinor: 10_000}, {UID: 2}}); err != nil {
		t.Fatal(err)
	}
	const payments = 40
	for i := range payments {
		if _, _, err := p.Client.Pay(ctx, p.Primary().Addr(), p.Epoch(), ledger.Payment{Key: fmt.Sprintf("k%d", i), FromUID: 1, ToUID: 2, AmountMinor: 7}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.OnlineWithEvents(ctx, nil, pl.targets(), pl.pipe)
	if err != nil {
		t.Fatal(err)
	}
	v := verdicts(rep)
	for _, name := range eventChecks {
		if v[name] != ledger.True {
			t.Errorf("online %s: %s; checks %+v", name, v[name], rep.Checks)
		}
	}
	if rep.Verdict != ledger.True || rep.Events == nil || rep.Events.Outbox.Count != payments || len(rep.Events.Groups) != 3 {
		t.Fatalf("online: verdict %s, events %+v", rep.Verdict, rep.Events)
	}

	// A consumer group that does not answer: applied once and lag unknown, never true.
	gone := pl.pipe
	gone.Consumers = append([]audit.Consumer{{Group: "ledger", Addr: "127.0.0.1:1"}}, pl.pipe.Consumers[1:]...)
	rep, err = audit.OnlineWithEvents(ctx, nil, pl.targets(), gone)
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(rep); v[ledger.CheckEventsAppliedOnce] != ledger.Unknown || v[ledger.CheckLagDrained] != ledger.Unknown || rep.Verdict != ledger.Unknown {
		t.Errorf("ledger group unreachable: %v, overall %s", v, rep.Verdict)
	}

	pl.stop()
	off, err := audit.Offline(ctx, pl.dir)
	if err != nil {
		t.Fatal(err)
	}
	v = verdicts(off)
	for _, name := range eventChecks {
		if v[name] != ledger.True {
			t.Errorf("offline %s: %s; checks %+v", name, v[name], off.Checks)
		}
	}
	if off.Events == nil || off.Events.StreamMessages != payments {
		t.Errorf("offline events: %+v", off.Events)
	}

	// Without the broker's files the stream cannot be read offline: unknown, never true.
	if err := os.RemoveAll(filepath.Join(pl.dir, "broker")); err != nil {
		t.Fatal(err)
	}
	off, err = audit.Offline(ctx, pl.dir)
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(off); v[ledger.CheckEventsPublishedOnce] != ledger.Unknown || off.Verdict != ledger.Unknown {
		t.Errorf("offline without the broker: %v, overall %s", v, off.Verdict)
	}
}

func TestOfflineWithoutPipeline(t *testing.T) {
	// A pair that never ran the pipeline has no event figures, and no event checks.
	p := unittest.StartPair(t, unittest.Options{})
	rep := p.AuditOffline(t)
	if rep.Events != nil || len(rep.Checks) != 8 { // the ledger's seven and the leak invariant
		t.Errorf("no pipeline: events %+v, %d checks", rep.Events, len(rep.Checks))
	}
}
