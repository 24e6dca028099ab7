package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestTimingBudgets runs 20 faults (10 pod-failure, 10 pod-kill) on processes the test started,
// scheduled 20 ms apart, and checks the budgets: each injection starts within 100 ms
// of its time, and a kill is seen in the process table within 1 s. It logs the figures.
func TestTimingBudgets(t *testing.T) {
	cmds := startSleeps(t, 20)
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
	var late, kills []time.Duration
	for _, r := range recs {
		if r.Phase != PhaseRecovered || !r.Evidence.Observed() {
			t.Errorf("%s: %s, evidence %+v", r.ID, r.Phase, r.Evidence)
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
		t.Fatalf("%d injections, %d kills observed", len(late), len(kills))
	}
	t.Logf("injection lateness: median %s, max %s (budget 100ms)", late[10], late[19])
	t.Logf("kill evidence: median %s, max %s (budget 1s)", kills[5], kills[9])
	if late[19] > 100*time.Millisecond {
		t.Errorf("an injection started %s late", late[19])
	}
	if kills[9] > time.Second {
		t.Errorf("a kill was seen after %s", kills[9])
	}
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
