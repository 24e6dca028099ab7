package run

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/verify"
)

func startSleep(t *testing.T) int {
	t.Helper()
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	return c.Process.Pid
}

func TestRunWithFaults(t *testing.T) {
	var (
		mu    sync.Mutex
		hosts = map[string]int{} // the Host header of each request the target saw
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host]++
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	pid := startSleep(t)
	p, src := planFor(t, srv, fmt.Sprintf(`
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: faults}
target:
  url: "http://127.0.0.1:1"
  processes: [{name: sleeper, pid: %d, labels: {unit: a}}]
sla:
  http_req_failed: ["rate<0.5"]
defaults:
  timeout: 2s
  requests: [{name: get, method: GET, path: /x}]
phases:
  - name: chaos
    load: {rate: 50/s, duration: 2s}
    faults:
      - {name: stop-a, at: 200ms, duration: 1s, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {unit: a}}}}
      - {name: slow, at: 500ms, duration: 1s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 50ms}}}
`, pid))
	dir := t.TempDir()
	rec, err := Run(context.Background(), p, Options{RunID: "f1", OutDir: dir, PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Faults) != 2 {
		t.Fatalf("got %d fault records, want 2: %+v", len(rec.Faults), rec.Faults)
	}
	for _, f := range rec.Faults {
		if f.Phase != chaos.PhaseRecovered || !f.Evidence.Observed() {
			t.Errorf("fault %s: phase %s, evidence %+v, error %s", f.ID, f.Phase, f.Evidence, f.Error)
		}
	}
	if chaos.ProcessStopped(pid) {
		t.Error("the run left its target process stopped")
	}
	mu.Lock()
	want := srv.Listener.Addr().String()
	for h := range hosts {
		if h != want && h != "redline-probe" { // the proxy's evidence probe names itself
			t.Errorf("Host headers seen by the target %v; want %s: the fault proxy must be invisible", hosts, want)
		}
	}
	mu.Unlock()
	if rec.TargetURL != srv.URL {
		t.Errorf("record's target %s, want the plan's %s (not the proxy's)", rec.TargetURL, srv.URL)
	}
	v := Judge(p, rec)
	if v.Phases[0].Validity == nil || v.Phases[0].Validity.Faults != 2 || v.Phases[0].Validity.FaultsWithoutEvidence != 0 {
		t.Errorf("validity %+v", v.Phases[0].Validity)
	}
	back, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec.Faults, back.Faults); diff != "" {
		t.Errorf("faults read back (-run +read):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, chaos.JournalFile)); err != nil {
		t.Errorf("no journal: %v", err)
	}
}

func TestRunAbortWhen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: guard}
target: {url: "http://127.0.0.1:1"}
abortWhen: "http_req_failed rate>0.2 for 2s"
defaults:
  timeout: 2s
  requests: [{name: get, method: GET, path: /x}]
phases:
  - {name: failing, load: {rate: 50/s, duration: 30s}}
  - {name: never, load: {rate: 50/s, duration: 1s}}
`)
	began := time.Now()
	rec, err := Run(context.Background(), p, Options{RunID: "g1", OutDir: t.TempDir(), PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the guard took %s to stop the run", took)
	}
	if !strings.HasPrefix(rec.Abort, "phase failing: abortWhen http_req_failed rate>0.2 for 2s: observed 1") {
		t.Errorf("abort %q", rec.Abort)
	}
	if v := Judge(p, rec); v.Status != verify.StatusAborted {
		t.Errorf("verdict %s", v.Status)
	}
}

// TestSharedFaultsInjectedOnce: an agent whose segment does not start at 0 injects the faults
// on its own link, and leaves those on shared processes to agent 0.
func TestSharedFaultsInjectedOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	pid := startSleep(t)
	p, src := planFor(t, srv, fmt.Sprintf(`
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: shared}
target:
  url: "http://127.0.0.1:1"
  processes: [{name: sleeper, pid: %d, labels: {unit: a}}]
defaults:
  requests: [{name: get, method: GET, path: /x}]
phases:
  - name: chaos
    load: {rate: 20/s, duration: 1s}
    faults:
      - {name: stop-a, at: 100ms, duration: 500ms, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {unit: a}}}}
      - {name: slow, at: 100ms, duration: 500ms, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 10ms}}}
`, pid))
	rec, err := Run(context.Background(), p, Options{RunID: "s1", OutDir: t.TempDir(), PlanSource: src,
		Segment: load.Segment{FromNum: 1, ToNum: 2, Den: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Faults) != 1 || rec.Faults[0].Fault.Name != "slow" {
		t.Errorf("agent 1/2 recorded %+v; want its own link's fault only", rec.Faults)
	}
}

// TestFaultsOfPhasesNotRun: a run stopped before a phase still records that phase's faults,
// as never injected and why, in the record and in the timeline.
func TestFaultsOfPhasesNotRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: stopped}
target: {url: "http://127.0.0.1:1"}
defaults:
  requests: [{name: get, method: GET, path: /x}]
phases:
  - {name: first, load: {rate: 20/s, duration: 30s}}
  - name: second
    load: {rate: 20/s, duration: 2s}
    faults:
      - {name: slow, at: 100ms, duration: 1s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 10ms}}}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	rec, err := Run(ctx, p, Options{RunID: "n1", OutDir: dir, PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]FaultRecord{rec.Faults, back.Faults} {
		if len(got) != 1 || got[0].Phase != chaos.PhaseNotInjected || got[0].Fault.Phase != "second" ||
			!strings.Contains(got[0].Error, "the run stopped before phase second: interrupted") {
			t.Errorf("faults %+v; want the second phase's, never injected, with why", got)
		}
	}
}
