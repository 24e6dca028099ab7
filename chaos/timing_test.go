package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// runTimeline runs 20 faults (10 pod-failure, 10 pod-kill) on processes it started, scheduled
// 20 ms apart, and checks that every one was injected, took effect and was recovered. It returns
// each injection's lateness and each kill's time to evidence, sorted.
func runTimeline(tb testing.TB) (late, kills []time.Duration) {
	tb.Helper()
	cmds := startSleeps(tb, 20)
	inv := processTargets(cmds)
	o := New(Options{Executors: map[Via]Executor{ViaProcess: ProcessExecutor{}}, Inventory: staticInventory(inv)})
	var faults []Fault
	for i := range 20 {
		f := Fault{Name: fmt.Sprintf("f%d", i), Phase: "p", Kind: KindPod, Action: ActionPodKill,
			At: time.Duration(i) * 20 * time.Millisecond, Selector: one("index", fmt.Sprint(i))}
		if i%2 == 0 {
			f.Action, f.Duration = ActionPodFailure, 200*time.Millisecond
		}
		faults = append(faults, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	recs := o.RunPhase(ctx, time.Now(), faults)
	for _, r := range recs {
		if r.Phase != PhaseRecovered || !r.Evidence.Observed() {
			tb.Errorf("%s: %s, evidence %+v", r.ID, r.Phase, r.Evidence)
			continue
		}
		late = append(late, r.Lateness)
		if r.Fault.OneShot() {
			kills = append(kills, r.Evidence.Latency)
		}
	}
	slices.Sort(late)
	slices.Sort(kills)
	if len(late) != 20 || len(kills) != 10 {
		tb.Fatalf("%d injections, %d kills observed", len(late), len(kills))
	}
	return late, kills
}

// TestTwentyFaultsOnATimeline checks that 20 faults on a tight timeline are each injected, seen
// to take effect and recovered; it logs the timing figures (budgets: BenchmarkInjectionTiming).
func TestTwentyFaultsOnATimeline(t *testing.T) {
	late, kills := runTimeline(t)
	t.Logf("injection lateness: median %s, max %s; kill evidence: median %s, max %s", late[10], late[19], kills[5], kills[9])
}

// BenchmarkInjectionTiming measures the budgets over runs of 20 faults scheduled 20 ms
// apart: the worst injection lateness (budget 100 ms) and the worst time from a kill to its
// evidence in the process table (budget 1 s), reported as late-max-ms and kill-evidence-max-ms.
func BenchmarkInjectionTiming(b *testing.B) {
	var lateMax, killMax time.Duration
	for b.Loop() {
		late, kills := runTimeline(b)
		lateMax, killMax = max(lateMax, late[19]), max(killMax, kills[9])
	}
	b.ReportMetric(float64(lateMax)/float64(time.Millisecond), "late-max-ms")
	b.ReportMetric(float64(killMax)/float64(time.Millisecond), "kill-evidence-max-ms")
}

// BenchmarkKillEvidence measures a pod-kill of a local process, from the signal to its
// absence from the process table.
func BenchmarkKillEvidence(b *testing.B) {
	ex := ProcessExecutor{}
	f := Fault{Name: "kill", Kind: KindPod, Action: ActionPodKill, Selector: Selector{Mode: ModeOne}}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		tg := Target{Name: "s", Via: ViaProcess, Pid: c.Process.Pid}
		u, err := ex.Plan(f, tg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		if err := ex.Inject(context.Background(), f, tg, u); err != nil {
			b.Fatal(err)
		}
		ev := ex.Evidence(context.Background(), f, tg, u)
		total += time.Since(began)
		b.StopTimer()
		if !ev.Observed() {
			b.Fatalf("evidence %+v", ev)
		}
		_ = c.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-evidence/op")
}
