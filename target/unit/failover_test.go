package unit_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// payMany sends n payments from uid 0 to uid 1 (keys prefix-i), each with its own deadline,
// records the acknowledged ones in w, and returns the keys that were not acknowledged.
func payMany(t *testing.T, p *unittest.Pair, addr string, epoch int64, prefix string, n int, w *unittest.Witness, timeout time.Duration) []ledger.Payment {
	t.Helper()
	var mu sync.Mutex
	var unacked []ledger.Payment
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // ends with its request's deadline
			defer wg.Done()
			pay := ledger.Payment{Key: fmt.Sprintf("%s-%d", prefix, i), FromUID: int64(i % 4), ToUID: int64(4 + i%4), AmountMinor: 1}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			status, o, err := p.Client.Pay(ctx, addr, epoch, pay)
			if err == nil && status == http.StatusOK {
				w.Ack(o)
				return
			}
			mu.Lock()
			unacked = append(unacked, pay)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return unacked
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Limits of waitProgress.
const (
	// stallMax fails a wait whose progress stood still that long. A catch-up's snapshot phase
	// moves neither the replica's role nor its last seq while it downloads and installs the
	// primary's whole books (9 s for 2,000 entries under -race, 16 workers paying, on 2 shared
	// cores; over 20 s on CI), so a wait on a catch-up watches its snapshot byte counters too.
	stallMax = 20 * time.Second
	// progressWaitMax bounds a wait that keeps moving: a catch-up chasing a primary that grows
	// as fast as it pulls never ends.
	progressWaitMax = 120 * time.Second
	// The condition is checked every progressPoll, the progress looked at every progressLook:
	// a look reads a replica's state and metrics, work the catch-up it waits for competes with
	// under -race.
	progressPoll = 20 * time.Millisecond
	progressLook = time.Second
)

// waitProgress waits until cond holds for as long as progress, a fingerprint of what the wait
// watches, keeps changing: it fails when progress stood still for stallMax, or after
// progressWaitMax in all. A fixed timeout judges speed: a catch-up copies the whole history,
// which grows with the writer's rate and the length of the load.
func waitProgress(t *testing.T, what string, cond func() bool, progress func() string) {
	t.Helper()
	start := time.Now()
	last, moved, looked := progress(), start, start
	for !cond() {
		now := time.Now()
		if now.Sub(looked) >= progressLook {
			if p := progress(); p != last {
				last, moved = p, now
			}
			looked = now
		}
		switch {
		case now.Sub(moved) > stallMax:
			t.Fatalf("waiting for %s: no progress for %v (at %s), %v in all", what, stallMax, last, now.Sub(start).Round(time.Millisecond))
		case now.Sub(start) > progressWaitMax:
			t.Fatalf("waiting for %s: not there after %v though still moving (at %s)", what, progressWaitMax, last)
		}
		time.Sleep(progressPoll)
	}
}

func verdictOf(t *testing.T, rep auditReport, name string) ledger.Verdict {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			t.Logf("%s = %s: %s %v", c.Name, c.Verdict, c.Detail, c.Figures)
			return c.Verdict
		}
	}
	t.Fatalf("no check %s", name)
	return ""
}

// TestPrimaryKillAsyncReplication kills a primary while its standby is unreachable. With
// synchronous replication nothing it held was acknowledged, the client retries and the audit is
// true; with the async-replication defect acknowledged payments are lost, the client's own
// read-back sees it, and so does the audit.
func TestPrimaryKillAsyncReplication(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) {
			p := pairWith(t, unit.DefectAsyncReplication, defect)
			seed(t, p, 8, 1_000)
			w := unittest.NewWitness()
			old := p.Primary()
			if un := payMany(t, p, old.Addr(), p.Epoch(), "before", 20, w, 5*time.Second); len(un) > 0 {
				t.Fatalf("%d payments unacknowledged with a healthy standby", len(un))
			}
			p.Link.Pause()
			unacked := payMany(t, p, old.Addr(), p.Epoch(), "during", 20, w, 300*time.Millisecond)
			old.Kill()
			primary := p.Failover(t)
			p.Link.Resume()
			for _, pay := range unacked { // the client retries what it was not told, same keys
				status, o, err := p.Client.Pay(context.Background(), primary.Addr(), p.Epoch(), pay)
				if err != nil || status != http.StatusOK {
					t.Fatalf("retry %s: %d %v", pay.Key, status, err)
				}
				w.Ack(o)
			}
			missing := w.Check(context.Background(), p.Client, primary.Addr())
			rep := p.AuditOffline(t)
			got := verdictOf(t, rep, ledger.CheckAcknowledgedOnce)
			if !defect {
				if len(unacked) != 20 || len(missing) != 0 || got != ledger.True {
					t.Fatalf("sync: %d unacked (want 20), %d missing %v, acknowledged_present_once %s", len(unacked), len(missing), missing, got)
				}
				expectAllTrue(t, p)
				return
			}
			if len(missing) == 0 {
				t.Errorf("async: the client's read-back found nothing lost")
			}
			if got != ledger.False {
				t.Errorf("async: acknowledged_present_once = %s, want false", got)
			}
			// The old primary comes back and catches up from the new one: the loss stays on record.
			old.Start(ledger.RoleCatchingUp, p.Epoch(), "", primary.Addr())
			waitFor(t, "the old primary back as standby", func() bool { c := p.Core.Config(); return c.Standby == old.Name && c.StandbyOK })
			if got := verdictOf(t, p.AuditOnline(t), ledger.CheckAcknowledgedOnce); got != ledger.False {
				t.Errorf("after catch-up: acknowledged_present_once = %s, want false", got)
			}
		})
	}
}

// TestZombiePrimary is the race the fencing exists for: the core zone promoted the standby, the
// old primary was not told, a router with a stale table sends it a payment. It must not be able
// to acknowledge it (the standby refuses its epoch, the core refuses its drop-standby); under
// no-fencing the write lands and the audit says so.
func TestZombiePrimary(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) {
			p := pairWith(t, unit.DefectNoFencing, defect)
			seed(t, p, 8, 1_000)
			w := unittest.NewWitness()
			zombie := p.Primary()
			payMany(t, p, zombie.Addr(), p.Epoch(), "before", 10, w, 5*time.Second)
			staleEpoch := p.Epoch()
			primary := p.Failover(t)
			pay := ledger.Payment{Key: "zombie", FromUID: 0, ToUID: 1, AmountMinor: 7}
			status, o, err := p.Client.Pay(context.Background(), zombie.Addr(), staleEpoch, pay)
			if err != nil {
				t.Fatal(err)
			}
			// A router with the stale table also writes straight to the new primary.
			direct, _, _ := p.Client.Pay(context.Background(), primary.Addr(), staleEpoch, ledger.Payment{Key: "stale-direct", FromUID: 2, ToUID: 3, AmountMinor: 1})
			if !defect {
				if status != http.StatusMisdirectedRequest || direct != http.StatusMisdirectedRequest {
					t.Fatalf("zombie write answered %d, stale direct write %d; want 421 and 421", status, direct)
				}
				if st, _, _ := p.Client.Payment(context.Background(), primary.Addr(), "zombie"); st != http.StatusNotFound {
					t.Fatalf("the zombie's write reached the new primary: %d", st)
				}
				status, o, err = p.Client.Pay(context.Background(), primary.Addr(), p.Epoch(), pay) // the router's retry
				if err != nil || status != http.StatusOK || o.Status != ledger.StatusCommitted {
					t.Fatalf("retry at the new primary: %d %+v %v", status, o, err)
				}
				w.Ack(o)
				waitFor(t, "the fenced zombie back as standby", func() bool { c := p.Core.Config(); return c.Standby == zombie.Name && c.StandbyOK })
				payMany(t, p, primary.Addr(), p.Epoch(), "after", 10, w, 5*time.Second)
				if bad := w.Check(context.Background(), p.Client, primary.Addr()); len(bad) > 0 {
					t.Fatalf("read-back: %v", bad)
				}
				expectAllTrue(t, p)
				return
			}
			if status != http.StatusOK {
				t.Fatalf("no-fencing: zombie write answered %d, want the (wrong) 200", status)
			}
			if got := verdictOf(t, p.AuditOnline(t), ledger.CheckNoStaleEpochWrites); got != ledger.False {
				t.Errorf("no-fencing: no_write_under_stale_epoch = %s, want false", got)
			}
		})
	}
}

// TestRetryAfterFailover retries an acknowledged key at the promoted standby: it returns the
// first outcome and charges nothing; under forgetful-dedup it charges again, which the client's
// own books and the audit both see.
func TestRetryAfterFailover(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) {
			p := pairWith(t, unit.DefectForgetfulDedup, defect)
			seed(t, p, 2, 1_000)
			model := ledger.New()
			for uid := range int64(2) {
				if err := model.Open(ledger.Account{UID: uid, BalanceMinor: 1_000}); err != nil {
					t.Fatal(err)
				}
			}
			pay := ledger.Payment{Key: "once", FromUID: 0, ToUID: 1, AmountMinor: 300}
			if status, _, err := p.Client.Pay(context.Background(), p.Primary().Addr(), p.Epoch(), pay); err != nil || status != http.StatusOK {
				t.Fatalf("pay: %d %v", status, err)
			}
			if _, err := model.Pay(pay); err != nil {
				t.Fatal(err)
			}
			p.Primary().Kill()
			primary := p.Failover(t)
			if status, _, err := p.Client.Pay(context.Background(), primary.Addr(), p.Epoch(), pay); err != nil || status != http.StatusOK {
				t.Fatalf("retry: %d %v", status, err)
			}
			_, a, _ := p.Client.Account(context.Background(), primary.Addr(), 0)
			want, _ := model.Balance(0)
			got := verdictOf(t, p.AuditOnline(t), ledger.CheckAcknowledgedOnce)
			if !defect {
				if a.BalanceMinor != want || got != ledger.True {
					t.Fatalf("balance %d (client's books: %d), acknowledged_present_once %s", a.BalanceMinor, want, got)
				}
				return
			}
			if a.BalanceMinor == want {
				t.Errorf("forgetful-dedup: balance %d matches the client's books; want a second charge", a.BalanceMinor)
			}
			if got != ledger.False {
				t.Errorf("forgetful-dedup: acknowledged_present_once = %s, want false", got)
			}
		})
	}
}

// TestZombieAfterNewWrites is the zombie race once the new primary has taken writes: the
// zombie's batch no longer fits the new primary's history either. Fenced, the zombie steps
// down; under no-fencing it ignores the core zone's refusal and acknowledges alone (split
// brain), which the client's read-back and the audit both catch.
func TestZombieAfterNewWrites(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) {
			p := pairWith(t, unit.DefectNoFencing, defect)
			seed(t, p, 8, 1_000)
			w := unittest.NewWitness()
			zombie := p.Primary()
			staleEpoch := p.Epoch()
			primary := p.Failover(t)
			payMany(t, p, primary.Addr(), p.Epoch(), "new", 5, w, 5*time.Second)
			pay := ledger.Payment{Key: "zombie", FromUID: 0, ToUID: 1, AmountMinor: 7}
			status, o, err := p.Client.Pay(context.Background(), zombie.Addr(), staleEpoch, pay)
			if err != nil {
				t.Fatal(err)
			}
			if status == http.StatusOK {
				w.Ack(o)
			}
			bad := w.Check(context.Background(), p.Client, primary.Addr())
			got := verdictOf(t, p.AuditOnline(t), ledger.CheckAcknowledgedOnce)
			if !defect {
				if status != http.StatusMisdirectedRequest || len(bad) != 0 || got != ledger.True {
					t.Fatalf("fenced zombie answered %d; read-back %v; acknowledged_present_once %s", status, bad, got)
				}
				return
			}
			if status != http.StatusOK || len(bad) != 1 {
				t.Fatalf("no-fencing zombie answered %d (want the wrong 200); read-back %v", status, bad)
			}
			if got != ledger.False {
				t.Errorf("no-fencing: acknowledged_present_once = %s, want false", got)
			}
		})
	}
}

// TestRestartedPrimaryShipsItsTail: a primary killed between committing payments and its
// standby acknowledging them restarts as primary under the same epoch (the core zone has not
// failed it over: its standby was unreachable). Its history ends in entries the standby does not
// hold. A retry of one must not be acknowledged before the standby has it (a failover to the
// standby would lose an acknowledged payment), nor its event published; once the standby is
// back, the restarted primary ships its tail and the retries are acknowledged.
func TestRestartedPrimaryShipsItsTail(t *testing.T) {
	p := pairWith(t, unit.DefectAsyncReplication, false)
	seed(t, p, 8, 1_000)
	w := unittest.NewWitness()
	old := p.Primary()
	p.Link.Pause()
	unacked := payMany(t, p, old.Addr(), p.Epoch(), "tail", 5, w, 300*time.Millisecond)
	if len(unacked) != 5 {
		t.Fatalf("%d of 5 payments unacknowledged with the standby unreachable, want 5", len(unacked))
	}
	old.Kill()
	old.Start(ledger.RolePrimary, p.Epoch(), p.Link.Addr(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	status, _, err := p.Client.Pay(ctx, old.Addr(), p.Epoch(), unacked[0])
	cancel()
	if err == nil && status == http.StatusOK {
		t.Fatalf("a retry of %s, which the standby never held, was acknowledged by the restarted primary", unacked[0].Key)
	}
	p.Link.Resume()
	for _, pay := range unacked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		status, o, err := p.Client.Pay(ctx, old.Addr(), p.Epoch(), pay)
		cancel()
		if err != nil || status != http.StatusOK {
			t.Fatalf("retry %s with the standby back: %d %v", pay.Key, status, err)
		}
		w.Ack(o)
	}
	if missing := w.Check(context.Background(), p.Client, old.Addr()); len(missing) != 0 {
		t.Fatalf("acknowledged and missing: %v", missing)
	}
	expectAllTrue(t, p)
}
