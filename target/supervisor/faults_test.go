package supervisor_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/targettest"
)

// Long tests: faults under load on the whole topology. Each starts its own target.

// healMax bounds the wait for a target to be whole again after a fault: failover, restart
// after a second, catch-up, add-standby, sync.
const healMax = 30 * time.Second

// loaded is a target under a workload, and a stress-marked one beside it when asked for.
type loaded struct {
	tg     *targettest.Target
	w      *targettest.Workload
	marked *targettest.Workload // nil without marked workers
	stop   func()
}

// crossShare is the share of cross-unit payments in the tests' load (issue 4: 20%).
const crossShare = 0.2

// underLoad starts a target and a workload against it, a crossShare of its payments between
// two units; stop ends the workload.
func underLoad(t *testing.T, opts targettest.Options, workers int) *loaded {
	t.Helper()
	return underMixedLoad(t, opts, workers, 0)
}

// underMixedLoad is underLoad with markedWorkers more sending stress-marked payments (header
// X-Redline-Run, keys beginning with markedKeys) between the same accounts of the shadow
// plane: a workload and a witness of their own.
func underMixedLoad(t *testing.T, opts targettest.Options, workers, markedWorkers int) *loaded {
	t.Helper()
	tg := targettest.Start(t, opts)
	newWorkload := func(workers int) *targettest.Workload {
		return &targettest.Workload{
			Client: targettest.NewClient(tg.RouterURL, workers+2), Accounts: 1000, Balance: 100_000, Workers: workers,
			AmountMax: 100, RetryFor: 15 * time.Second, CrossUnit: crossShare, Units: opts.Units,
		}
	}
	l := &loaded{tg: tg, w: newWorkload(workers)}
	all := []*targettest.Workload{l.w}
	if markedWorkers > 0 {
		l.marked = newWorkload(markedWorkers)
		l.marked.Client.Header = http.Header{shadow.Header: {"rehearsal-run"}}
		l.marked.KeyPrefix = markedKeys
		all = append(all, l.marked)
	}
	for _, w := range all {
		if err := w.Seed(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range all {
		wg.Go(func() { w.Run(ctx) }) // ends with stop
	}
	var stopped bool
	l.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(l.stop)
	return l
}

// victim names a process to fault, chosen when the fault happens.
type victim func(t *testing.T, tg *targettest.Target) (role, unit, replica string)

func unitPrimary(unit string) victim {
	return func(t *testing.T, tg *targettest.Target) (string, string, string) {
		return supervisor.RoleUnit, unit, tg.Routing(t).Units[unit].Primary
	}
}

func unitStandby(unit string) victim {
	return func(t *testing.T, tg *targettest.Target) (string, string, string) {
		return supervisor.RoleUnit, unit, tg.Routing(t).Units[unit].Standby
	}
}

func coreReplica(mode string) victim {
	return func(t *testing.T, tg *targettest.Target) (string, string, string) {
		for _, p := range tg.Topology(t).Processes {
			if p.Role == supervisor.RoleCore && p.Mode == mode {
				return p.Role, p.Unit, p.Replica
			}
		}
		t.Fatalf("no core replica in mode %s", mode)
		return "", "", ""
	}
}

func theRouter(*testing.T, *targettest.Target) (string, string, string) {
	return supervisor.RoleRouter, "-", "-"
}

func TestKillsUnderLoadLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of every kind of process under load")
	}
	l := underLoad(t, targettest.Options{}, 8)
	ctx := context.Background()
	kills := []struct {
		name string
		who  victim
	}{
		{"unit primary", unitPrimary("a")},
		{"unit standby", unitStandby("b")},
		{"core leader", coreReplica("leader")},
		{"core follower", coreReplica("follower")},
		{"router", theRouter},
		{"unit primary after it all", unitPrimary("a")},
	}
	for _, k := range kills {
		time.Sleep(700 * time.Millisecond)
		role, unit, replica := k.who(t, l.tg)
		a := l.tg.Signal(t, "kill", role, unit, replica)
		t.Logf("killed %s: %s pid %d", k.name, a.Process, a.Pid)
		l.tg.WaitHealthy(t, healMax)
		l.w.Replay(ctx, 50)
	}
	l.stop()
	wit := l.w.Verify(ctx)
	t.Logf("witness: %v", wit)
	if !wit.OK() || wit.Committed == 0 {
		t.Errorf("the client's own witness found problems: %v", wit)
	}
	if rep := l.tg.Audit(t); rep.Verdict != ledger.True {
		t.Errorf("audit %s, want true: %v", rep.Verdict, auditFalse(rep))
	}
}

// failoverStuck bounds each kill → buckets serving again in this test: over it, the unit did not
// fail over at all. The goal (p99 under 1 s over 10 kills) is a performance figure,
// measured by `make bench-target` on a machine of its own, not asserted here: under -race beside
// other packages, one kill in a run met a core-zone leader change and took 2.1 s.
const (
	failoverStuck = 5 * time.Second
	failoverKills = 10
)

func TestFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 10 kills of a unit primary under load")
	}
	l := underLoad(t, targettest.Options{}, 8)
	ctx := context.Background()
	st := l.tg.Routing(t)
	var took []time.Duration
	for i := range failoverKills {
		unit := supervisor.UnitNames(4)[i%4]
		bucket := slices.Index(st.Buckets, unit) // an account of the unit: uid = bucket
		primary := l.tg.Routing(t).Units[unit].Primary
		killed := time.Now()
		l.tg.Signal(t, "kill", supervisor.RoleUnit, unit, primary)
		status := l.w.Pay(ctx, int64(bucket), int64(bucket+100), 1)
		d := time.Since(killed)
		if status != targettest.StatusCommitted {
			t.Errorf("kill %d: the probe payment on unit %s: %s", i, unit, status)
		}
		took = append(took, d)
		l.tg.WaitHealthy(t, healMax)
		t.Logf("kill %d: unit %s primary %s: serving again after %v (core measured %d ms)", i, unit, primary, d.Round(time.Millisecond), l.tg.Routing(t).Units[unit].LastFailoverMS)
	}
	l.stop()
	slices.Sort(took)
	p99 := took[len(took)-1] // nearest rank over 10 samples
	t.Logf("failover over %d kills: median %v, p99 %v", len(took), took[len(took)/2].Round(time.Millisecond), p99.Round(time.Millisecond))
	if p99 > failoverStuck {
		t.Errorf("failover p99 %v: a unit stuck without a primary for over %v", p99, failoverStuck)
	}
	wit := l.w.Verify(ctx)
	if !wit.OK() {
		t.Errorf("the client's own witness found problems: %v", wit)
	}
	if rep := l.tg.Audit(t); rep.Verdict != ledger.True {
		t.Errorf("audit %s, want true: %v", rep.Verdict, auditFalse(rep))
	}
}

// staleWrites is how many payments the defect test sends under a stale epoch.
const staleWrites = 20

// TestSeededDefectsAreCaught runs the same faults under the same mixed load with each seeded
// defect and without, on SQLite and on PostgreSQL: the audit must call each defect false and
// the sound target true. The sound target's run is issue 4's "done when" rehearsal
// (checkRehearsal): under load from the test's own client (same-unit payments, a fifth across
// units, about a tenth stress-marked), kills of unit primaries and a consumer group throttled
// to 10% and released, every invariant holds, the client's witnesses agree, and the marked
// payments are in the shadow databases only.

func TestSeededDefectsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("long: every seeded defect under load with kills")
	}
	tests := []struct {
		defect string // "" is the sound target
		want   ledger.Verdict
		// onPostgres: also run on PostgreSQL (the CI budget takes the sound target and the
		// defects whose evidence lives in the stored epochs and replicas).
		onPostgres bool
	}{
		{"", ledger.True, true},
		{"async-replication", ledger.False, true},
		{"no-fencing", ledger.False, true},
		{"forgetful-dedup", ledger.False, false},
		{"tcc-no-fencing", ledger.False, false},
	}
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			for _, tt := range tests {
				name := tt.defect
				if name == "" {
					name = "none"
				}
				if be.Name != "sqlite" && !tt.onPostgres {
					continue
				}
				t.Run(name, func(t *testing.T) {
					opts := targettest.Options{Storage: be.Server(t)}
					if tt.defect != "" {
						opts.Defects = []string{tt.defect}
					}
					seededDefect(t, opts, tt.defect, tt.want)
				})
			}
		})
	}
}

// seededDefect runs the defect test's faults under the mixed load on a target with defect ("":
// none), a consumer group throttled meanwhile, and checks the audit's verdict, online and then
// offline on the stopped target's databases; for the sound target, the whole rehearsal.
func seededDefect(t *testing.T, opts targettest.Options, defect string, want ledger.Verdict) {
	l := underMixedLoad(t, opts, rehearsalWorkers, rehearsalMarkedWorkers)
	time.Sleep(time.Second) // the consumers' rate under load: what the throttle takes 10% of
	throttle(t, l.tg, throttledGroup, throttledPercent)
	refused := faults(t, l)
	release(t, l.tg, throttledGroup, throttledPercent)
	l.stop()
	ctx := context.Background()
	wit := l.w.Verify(ctx)
	rep := l.tg.Audit(t)
	t.Logf("audit %s %v; witness: %v", rep.Verdict, auditFalse(rep), wit)
	if rep.Verdict != want {
		t.Errorf("audit %s, want %s", rep.Verdict, want)
	}
	if defect == "" {
		checkRehearsal(t, l, opts.Storage, wit, rep)
	}
	if defect == "" && refused != 2*staleWrites {
		t.Errorf("%d of %d payments and transfer steps under a stale epoch refused, want all", refused, 2*staleWrites)
	}
	l.tg.Stop()
	off, err := audit.Offline(ctx, l.tg.DataDir)
	if err != nil || off.Verdict != want {
		t.Errorf("offline audit %s %v %v, want %s", off.Verdict, auditFalse(off), err, want)
	}
}

// faults is the schedule of the defect test: a primary killed behind its paused standby (what
// an asynchronous replica acknowledged then is lost), a primary paused long enough to
// be replaced and then resumed (a zombie with requests in flight), another primary killed; after
// each, the client sends its recent payments again, as one that lost the answers would.
func faults(t *testing.T, l *loaded) (staleRefused int) {
	t.Helper()
	ctx := context.Background()
	// heal waits for the target to be whole again and replays the payments acknowledged just
	// before the fault: those the replaced primary wrote, which a forgetful dedup on its
	// successor would apply a second time.
	var mark int
	heal := func(what string) {
		if err := l.tg.AwaitHealthy(healMax); err != nil {
			t.Logf("after %s: %v", what, err)
		}
		l.w.ReplayBefore(ctx, mark, 200)
	}
	time.Sleep(500 * time.Millisecond)
	mark = l.w.Mark()
	killBehindPausedStandby(t, l, "a")
	heal("kill of a's primary behind its paused standby")

	time.Sleep(500 * time.Millisecond)
	mark = l.w.Mark()
	_, unit, replica := unitPrimary("b")(t, l.tg)
	l.tg.Signal(t, "pause", supervisor.RoleUnit, unit, replica)
	// Longer than the core zone takes to replace it (3 × (poll + timeout) and a promotion),
	// shorter than its replication timeout (2 s): when it resumes, it still ships what the
	// router had queued at it, as a zombie primary.
	time.Sleep(1700 * time.Millisecond)
	l.tg.Signal(t, "resume", supervisor.RoleUnit, unit, replica)
	heal("pause of b's primary")

	// A router with an out-of-date table: payments under the epoch before unit a's failover,
	// straight to its primary. Fencing refuses every one (421).
	st := l.tg.Routing(t)
	a := st.Units["a"]
	if a.Epoch < 2 {
		t.Fatalf("unit a at epoch %d after its primary was killed: no failover to be stale against", a.Epoch)
	}
	bucket := int64(slices.Index(st.Buckets, "a"))
	refused := 0
	statuses := map[int]int{}
	for i := range staleWrites {
		status, err := l.w.PayStale(ctx, a.PrimaryAddr(), a.Epoch-1, bucket, bucket+100*int64(1+i%5), 1)
		statuses[status]++
		if err == nil && status == http.StatusMisdirectedRequest {
			refused++
		}
	}
	t.Logf("payments under a stale epoch: %d of %d refused (statuses %v)", refused, staleWrites, statuses)
	// A core zone leader with an out-of-date view: tries of cross-unit transfers under the
	// previous epoch, straight to the primary. Fencing refuses every one.
	tries := 0
	for i := range staleWrites {
		status, err := l.w.TryStale(ctx, a.PrimaryAddr(), a.Epoch-1, bucket, bucket+1+int64(i%3), 1)
		if err == nil && status == http.StatusMisdirectedRequest {
			tries++
		}
	}
	t.Logf("transfer steps under a stale epoch: %d of %d refused", tries, staleWrites)
	refused += tries

	time.Sleep(500 * time.Millisecond)
	mark = l.w.Mark()
	_, unit, replica = unitPrimary("c")(t, l.tg)
	l.tg.Signal(t, "kill", supervisor.RoleUnit, unit, replica)
	heal(fmt.Sprintf("kill of %s's primary", unit))
	time.Sleep(500 * time.Millisecond)
	return refused
}
