package chaos

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// startSleeps starts n sleep processes owned by the test, ended by their pids at cleanup.
func startSleeps(t testing.TB, n int) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sleep", "120")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		t.Cleanup(func() {
			_ = c.Process.Kill()
			_ = c.Wait()
		})
	}
	return cmds
}

func processTargets(cmds []*exec.Cmd) []Target {
	var ts []Target
	for i, c := range cmds {
		ts = append(ts, Target{Name: fmt.Sprintf("sleep-%d", i), Via: ViaProcess, Pid: c.Process.Pid,
			Labels: map[string]string{"app": "sleep", "index": fmt.Sprint(i)}})
	}
	return ts
}

func staticInventory(ts []Target) func(context.Context) ([]Target, error) {
	return func(context.Context) ([]Target, error) { return ts, nil }
}

func one(label, value string) Selector {
	return Selector{Labels: map[string]string{label: value}, Mode: ModeOne}
}

func TestOrchestratorProcesses(t *testing.T) {
	cmds := startSleeps(t, 2)
	journal, err := OpenJournal(filepath.Join(t.TempDir(), JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	var mu sync.Mutex
	var marks []metrics.Mark
	o := New(Options{
		Executors: map[Via]Executor{ViaProcess: ProcessExecutor{}},
		Inventory: staticInventory(processTargets(cmds)),
		Journal:   journal,
		Marks:     func(m metrics.Mark) { mu.Lock(); marks = append(marks, m); mu.Unlock() },
	})
	faults := []Fault{
		{Name: "stop", Phase: "p", Kind: KindPod, Action: ActionPodFailure, At: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Selector: one("index", "0")},
		{Name: "kill", Phase: "p", Kind: KindPod, Action: ActionPodKill, At: 100 * time.Millisecond, Selector: one("index", "1")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The kill's record stays open until its one-shot deadline unless the phase ends: end it
	// after 1 s, as a runner does at the end of a phase.
	phaseCtx, endPhase := context.WithTimeout(ctx, time.Second)
	defer endPhase()
	recs := o.RunPhase(phaseCtx, time.Now(), faults)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Phase != PhaseRecovered || r.InjectedCount != 1 || r.RecoveredCount != 1 {
			t.Errorf("%s: phase %s, injected %d, recovered %d (%s)", r.ID, r.Phase, r.InjectedCount, r.RecoveredCount, r.Error)
		}
		if !r.Evidence.Observed() {
			t.Errorf("%s: evidence %+v", r.ID, r.Evidence)
		}
		if r.Lateness > 100*time.Millisecond {
			t.Errorf("%s: injected %s late, over the 100 ms budget", r.ID, r.Lateness)
		}
		t.Logf("%s: lateness %s, evidence after %s: %s", r.Fault.Name, r.Lateness, r.Evidence.Latency, r.Evidence.Detail)
	}
	if ProcessStopped(cmds[0].Process.Pid) {
		t.Error("the stopped process was not continued")
	}
	if got := len(marks); got != 4 {
		t.Errorf("got %d marks, want an inject and a recover per fault", got)
	}
	f, _ := os.Open(journal.Path())
	defer f.Close()
	p, err := ReadJournal(f)
	if err != nil || len(p.Injected) != 0 {
		t.Errorf("journal still lists %v (%v)", p.Injected, err)
	}
}

func TestOrchestratorCancelRecoversAtOnce(t *testing.T) {
	cmds := startSleeps(t, 1)
	o := New(Options{Executors: map[Via]Executor{ViaProcess: ProcessExecutor{}}, Inventory: staticInventory(processTargets(cmds))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []Record)
	go func() {
		done <- o.RunPhase(ctx, time.Now(), []Fault{{Name: "stop", Phase: "p", Kind: KindPod, Action: ActionPodFailure,
			Duration: time.Hour, Selector: one("app", "sleep")}})
	}()
	deadline := time.Now().Add(2 * time.Second)
	for !ProcessStopped(cmds[0].Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	cancel() // the halt button
	recs := <-done
	if took := time.Since(began); took > time.Second {
		t.Errorf("recovery after cancel took %s", took)
	}
	if len(recs) != 1 || recs[0].Phase != PhaseRecovered {
		t.Fatalf("records %+v", recs)
	}
	if ProcessStopped(cmds[0].Process.Pid) {
		t.Error("cancel left the process stopped")
	}
}

func TestProxyFaults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	p := NewProxy()
	defer p.Close()
	addr, err := p.AddLink("target", "127.0.0.1:0", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	inv := staticInventory([]Target{{Name: "link/target", Via: ViaProxy, Link: "target", Labels: map[string]string{"role": "gateway"}}})
	o := New(Options{Executors: map[Via]Executor{ViaProxy: p}, Inventory: inv})
	tests := []Fault{
		{Name: "delay", Kind: KindNetwork, Action: ActionDelay, Duration: 400 * time.Millisecond, Params: Params{Latency: 100 * time.Millisecond}},
		{Name: "drop", Kind: KindNetwork, Action: ActionPartition, Duration: 400 * time.Millisecond},
		{Name: "reject", Kind: KindNetwork, Action: ActionPartition, Duration: 400 * time.Millisecond, Params: Params{PartitionReject: true}},
		{Name: "loss", Kind: KindNetwork, Action: ActionLoss, Duration: 200 * time.Millisecond, Params: Params{LossPercent: 30}},
		{Name: "bandwidth", Kind: KindNetwork, Action: ActionBandwidth, Duration: 200 * time.Millisecond, Params: Params{BandwidthBPS: 10 << 10}},
		{Name: "abort", Kind: KindHTTP, Action: ActionAbort, Duration: 400 * time.Millisecond},
	}
	for _, f := range tests {
		t.Run(f.Name, func(t *testing.T) {
			f.Phase, f.Selector = "p", Selector{Mode: ModeAll}
			recs := o.RunPhase(context.Background(), time.Now(), []Fault{f})
			if len(recs) != 1 || recs[0].Phase != PhaseRecovered || !recs[0].Evidence.Observed() {
				t.Fatalf("record %+v", recs)
			}
			t.Logf("evidence after %s: %s", recs[0].Evidence.Latency, recs[0].Evidence.Detail)
			toxics, enabled := p.Toxics("target")
			if len(toxics) != 0 || !enabled {
				t.Errorf("after recovery the link has toxics %v, enabled %v", toxics, enabled)
			}
			if _, err := probe(addr, time.Second); err != nil {
				t.Errorf("the link does not answer after recovery: %v", err)
			}
		})
	}
}

// fakeExecutor keeps every effect in memory, for timelines that need no processes.
type fakeExecutor struct {
	mu      sync.Mutex
	stopped map[string]bool // a shared effect per target
	toxics  map[string]bool // an own effect per fault and target
}

func (e *fakeExecutor) Plan(f Fault, t Target) (Undo, error) {
	if f.Action == ActionPodFailure {
		return Undo{Op: OpContinue, Pid: t.Pid, PidStart: 1}, nil
	}
	if f.OneShot() {
		return Undo{Op: OpNone}, nil
	}
	return Undo{Op: OpRemoveToxic, Link: t.Name, Toxic: f.Name}, nil
}

func (e *fakeExecutor) Inject(_ context.Context, f Fault, t Target, u Undo) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch u.Op {
	case OpContinue:
		e.stopped[t.Name] = true
	case OpRemoveToxic:
		e.toxics[u.Link+"/"+u.Toxic] = true
	}
	return nil
}

func (e *fakeExecutor) Recover(_ context.Context, u Undo) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch u.Op {
	case OpContinue:
		for name, on := range e.stopped {
			if on && fmt.Sprint(u.Pid) == name[1:] {
				e.stopped[name] = false
			}
		}
	case OpRemoveToxic:
		delete(e.toxics, u.Link+"/"+u.Toxic)
	}
	return nil
}

func (e *fakeExecutor) left() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for k, on := range e.stopped {
		if on {
			out = append(out, "stopped "+k)
		}
	}
	for k := range e.toxics {
		out = append(out, "toxic "+k)
	}
	slices.Sort(out)
	return out
}

// FuzzTimeline runs random fault timelines (overlapping faults on one target, zero and maximum
// durations, a phase cut short) and checks that nothing is left injected at the end.
func FuzzTimeline(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(30))
	f.Add([]byte{255, 0, 255, 0, 255, 0, 255, 0}, uint8(0))
	f.Add([]byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, cutMS uint8) {
		const targets = 3
		ex := &fakeExecutor{stopped: map[string]bool{}, toxics: map[string]bool{}}
		var inv []Target
		for i := range targets {
			inv = append(inv, Target{Name: fmt.Sprintf("p%d", i), Pid: i, Via: ViaProcess, Labels: map[string]string{"i": fmt.Sprint(i)}},
				Target{Name: fmt.Sprintf("l%d", i), Via: ViaProxy, Link: fmt.Sprint(i), Labels: map[string]string{"i": fmt.Sprint(i)}})
		}
		var faults []Fault
		for i := 0; i+3 < len(data) && len(faults) < 20; i += 4 {
			kind, action := KindPod, ActionPodFailure
			switch data[i] % 3 {
			case 1:
				action = ActionPodKill
			case 2:
				kind, action = KindNetwork, ActionDelay
			}
			dur := time.Duration(data[i+2]%40) * time.Millisecond
			if data[i+2] == 255 {
				dur = DurationMax // the maximum: recovered when the phase ends
			}
			sel := Selector{Labels: map[string]string{"i": fmt.Sprint(int(data[i+3]) % targets)}, Mode: ModeOne}
			if data[i+3] > 200 {
				sel = Selector{Mode: ModeAll}
			}
			fl := Fault{Name: fmt.Sprintf("f%d", i), Phase: "p", Kind: kind, Action: action,
				At: time.Duration(data[i+1]%30) * time.Millisecond, Duration: dur, Selector: sel}
			if err := fl.Validate(); err != nil {
				t.Fatalf("generated an invalid fault %+v: %v", fl, err)
			}
			faults = append(faults, fl)
		}
		seed := binary.LittleEndian.Uint64(append(slices.Clone(data), make([]byte, 8)...)[:8])
		o := New(Options{Executors: map[Via]Executor{ViaProcess: ex, ViaProxy: ex}, Inventory: staticInventory(inv), Rand: rand.New(rand.NewPCG(seed, 1))})
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cutMS)*time.Millisecond)
		defer cancel()
		recs := o.RunPhase(ctx, time.Now(), faults)
		if left := ex.left(); len(left) > 0 {
			t.Fatalf("left injected after the phase: %v", left)
		}
		for _, r := range recs {
			if r.Phase == PhaseInjected || r.Phase == PhaseFailed {
				t.Errorf("record %s ended %s: %s", r.ID, r.Phase, r.Error)
			}
			if r.InjectedCount != r.RecoveredCount {
				t.Errorf("record %s: injected %d, recovered %d", r.ID, r.InjectedCount, r.RecoveredCount)
			}
		}
	})
}
