package unit_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

func startBroker(t *testing.T) (*events.Broker, jetstream.JetStream) {
	t.Helper()
	b, err := events.StartBroker(events.BrokerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	nc, js, _, err := events.Connect(context.Background(), b.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return b, js
}

// streamKeys reads the stream: the payment key of every message, by event id, and the count of
// messages per payment key.
func streamKeys(t *testing.T, js jetstream.JetStream) (byID map[string]string, perKey map[string]int) {
	t.Helper()
	byID, perKey = map[string]string{}, map[string]int{}
	if _, err := events.Scan(context.Background(), js, func(e events.Event, id string) {
		byID[id] = e.Key
		perKey[e.Key]++
	}); err != nil {
		t.Fatal(err)
	}
	return byID, perKey
}

func waitStream(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events in the stream", n), func() bool {
		st, err := js.Stream(context.Background(), events.Stream)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs >= uint64(n)
	})
}

// TestRelayPublishesOnceAcrossFailover: every acknowledged payment's event reaches the stream
// once, with its id as Nats-Msg-Id, before and after the primary is killed and the standby
// promoted (the new primary's relay resumes from the stream and republishes into the duplicate
// window, which drops the repeats).
func TestRelayPublishesOnceAcrossFailover(t *testing.T) {
	b, js := startBroker(t)
	p := unittest.StartPair(t, unittest.Options{NATS: b.URL()})
	seed(t, p, 8, 1_000)
	w := unittest.NewWitness()
	if un := payMany(t, p, p.Primary().Addr(), p.Epoch(), "before", 40, w, 5*time.Second); len(un) > 0 {
		t.Fatalf("%d unacknowledged", len(un))
	}
	waitStream(t, js, 40)
	p.Primary().Kill()
	primary := p.Failover(t)
	if un := payMany(t, p, primary.Addr(), p.Epoch(), "after", 40, w, 5*time.Second); len(un) > 0 {
		t.Fatalf("%d unacknowledged after failover", len(un))
	}
	waitStream(t, js, 80)
	time.Sleep(100 * time.Millisecond) // a republished duplicate would land now
	byID, perKey := streamKeys(t, js)
	if len(byID) != 80 || len(perKey) != 80 {
		t.Fatalf("stream: %d ids, %d keys, want 80 each", len(byID), len(perKey))
	}
	for key, n := range perKey {
		if n != 1 {
			t.Errorf("payment %s published %d times", key, n)
		}
	}
}

// TestPublishBeforeCommit: with the standby unreachable the primary's batches never become
// acknowledged; killed then, it leaves nothing behind when it publishes after the commit, and
// events of payments that never happened with the publish-before-commit defect.
func TestPublishBeforeCommit(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) {
			b, js := startBroker(t)
			opts := unittest.Options{NATS: b.URL()}
			if defect {
				opts.Defects = []unit.Defect{unit.DefectPublishBeforeCommit}
			}
			p := unittest.StartPair(t, opts)
			seed(t, p, 8, 1_000)
			w := unittest.NewWitness()
			old := p.Primary()
			if un := payMany(t, p, old.Addr(), p.Epoch(), "warm", 1, w, 5*time.Second); len(un) > 0 {
				t.Fatal("warm-up payment unacknowledged")
			}
			waitStream(t, js, 1) // the relay is connected
			p.Link.Pause()
			unacked := payMany(t, p, old.Addr(), p.Epoch(), "during", 20, w, 300*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			old.Kill() // the wrong moment: committed on the primary, never replicated
			primary := p.Failover(t)
			p.Link.Resume()
			for _, pay := range unacked {
				pay.AmountMinor = 2 // a different payment under a fresh key
				pay.Key = "after-" + pay.Key
				if status, _, err := p.Client.Pay(context.Background(), primary.Addr(), p.Epoch(), pay); err != nil || status != http.StatusOK {
					t.Fatalf("pay %s: %d %v", pay.Key, status, err)
				}
			}
			waitStream(t, js, 21)
			time.Sleep(200 * time.Millisecond)
			byID, _ := streamKeys(t, js)
			orphans := 0
			for _, key := range byID {
				if status, o, _ := p.Client.Payment(context.Background(), primary.Addr(), key); status != http.StatusOK || o.Status != ledger.StatusCommitted {
					orphans++
				}
			}
			if defect != (orphans > 0) {
				t.Fatalf("defect=%v: %d events of payments that were never committed (of %d)", defect, orphans, len(byID))
			}
		})
	}
}
