package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/chaos/mesh"
)

const exportPlan = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: export}
target: {builtin: {units: 2}}
defaults:
  requests: [{name: get, path: /}]
phases:
  - {name: warm, load: {rate: 10/s, duration: 30s}, judge: false}
  - name: kill
    load: {rate: 10/s, duration: 60s}
    faults:
      - {name: kill-b, at: 20s, kind: PodChaos, spec: {action: pod-kill, mode: one, selector: {labelSelectors: {unit: b, role: primary}}}}
      - {name: lag, at: 5s, duration: 30s, kind: ConsumerChaos, spec: {group: settlement, rate: 10%}}
`

func TestChaosExportApply(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(exportPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	scheme, err := mesh.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	var out, errOut bytes.Buffer
	opts := &ChaosExportOptions{IO: IO{Out: &out, ErrOut: &errOut}, PlanPath: path, Namespace: "pay",
		LabelMap: "unit=app.kubernetes.io/instance", Apply: true, Kubeconfig: "fake",
		NewClient: func(string) (client.Client, error) { return c, nil }}
	if err := chaosExportRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var w v1alpha1.Workflow
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "pay", Name: "export"}, &w); err != nil {
		t.Fatalf("the workflow was not created: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "app.kubernetes.io/instance: b") || !strings.Contains(out.String(), "deadline: 50s") {
		t.Errorf("export:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "skipped lag: ConsumerChaos has no Chaos Mesh kind") {
		t.Errorf("stderr: %s", errOut.String())
	}
}

// crashPlan has 20 faults of mixed kinds on processes the test started and on the proxy link
// to the test's server, all injected within the first second and lasting far longer.
func crashPlan(pids []int) string {
	var b strings.Builder
	b.WriteString("apiVersion: redline/v1\nkind: Rehearsal\nmetadata: {name: crash}\ntarget:\n  url: \"http://127.0.0.1:1\"\n  processes:\n")
	for i, pid := range pids {
		fmt.Fprintf(&b, "    - {name: sleep-%d, pid: %d, labels: {index: \"%d\"}}\n", i, pid, i)
	}
	b.WriteString("defaults:\n  requests: [{name: get, path: /}]\nphases:\n  - name: chaos\n    load: {rate: 20/s, duration: 60s}\n    faults:\n")
	for i := range 8 {
		fmt.Fprintf(&b, "      - {at: %dms, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {index: \"%d\"}}}}\n", 50*i, i)
	}
	for i := 8; i < 12; i++ {
		fmt.Fprintf(&b, "      - {at: %dms, kind: PodChaos, spec: {action: pod-kill, mode: one, selector: {labelSelectors: {index: \"%d\"}}}}\n", 50*i, i)
	}
	for i, spec := range []string{
		"{action: delay, mode: all, selector: {}, delay: {latency: 20ms}}",
		"{action: delay, mode: all, selector: {}, delay: {latency: 10ms, jitter: 5ms}}",
		"{action: loss, mode: all, selector: {}, loss: {loss: \"5\"}}",
		"{action: loss, mode: all, selector: {}, loss: {loss: \"1\"}}",
		"{action: bandwidth, mode: all, selector: {}, bandwidth: {rate: 10mbps, limit: 1000, buffer: 1000}}",
		"{action: bandwidth, mode: all, selector: {}, bandwidth: {rate: 20mbps, limit: 1000, buffer: 1000}}",
		"{action: delay, mode: all, selector: {}, delay: {latency: 5ms}}",
	} {
		fmt.Fprintf(&b, "      - {at: %dms, kind: NetworkChaos, spec: %s}\n", 600+50*i, spec)
	}
	b.WriteString("      - {at: 950ms, kind: HTTPChaos, spec: {mode: all, selector: {}, target: Request, port: 80, delay: 5ms}}\n")
	return b.String()
}

func journalInjects(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(`"op":"inject"`))
}

func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	i := bytes.LastIndexByte(b, ')')
	return string(b[i+2 : i+3])
}

// TestChaosRecoverAfterKill9 kills redline with SIGKILL in the middle of 20 injected faults,
// then runs `redline chaos recover` and checks that no fault is left: no test process is
// stopped, the journal lists nothing, the proxy (and its toxics) is gone.
func TestChaosRecoverAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and a 60 s plan it kills")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	var pids []int
	for range 12 {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Process.Pid)
		t.Cleanup(func() {
			_ = c.Process.Signal(syscall.SIGCONT)
			_ = c.Process.Kill()
			_ = c.Wait()
		})
	}
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planPath, []byte(crashPlan(pids)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	var stderr bytes.Buffer
	run := exec.Command("redline", "run", planPath, "--target-url", srv.URL, "--out", out)
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(out, chaos.JournalFile)
	deadline := time.Now().Add(20 * time.Second)
	for journalInjects(journal) < 20 || stoppedCount(pids[:8]) < 8 {
		if time.Now().After(deadline) {
			_ = run.Process.Kill()
			_ = run.Wait()
			t.Fatalf("only %d injections journalled, %d processes stopped:\n%s", journalInjects(journal), stoppedCount(pids[:8]), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the last toxics go in after their journal lines
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	if got := stoppedCount(pids[:8]); got != 8 {
		t.Fatalf("after kill -9, %d of 8 processes stopped; the test needs faults left behind", got)
	}
	proxyAddr := regexp.MustCompile(`fault proxy: (\S+) ->`).FindStringSubmatch(stderr.String())
	if proxyAddr == nil {
		t.Fatalf("no proxy address in the run's output:\n%s", stderr.String())
	}

	rec := exec.Command("redline", "chaos", "recover", "--data", out)
	got, err := rec.CombinedOutput()
	if err != nil {
		t.Fatalf("chaos recover: %v\n%s", err, got)
	}
	t.Logf("chaos recover:\n%s", got)
	if n := stoppedCount(pids); n != 0 {
		t.Errorf("%d processes still stopped after recover", n)
	}
	for _, pid := range pids[8:] {
		if s := processState(pid); s != "gone" && s != "Z" {
			t.Errorf("killed pid %d is in state %s", pid, s)
		}
	}
	f, err := os.Open(journal)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := chaos.ReadJournal(f)
	if err != nil || len(p.Injected) != 0 {
		t.Errorf("the journal still lists %d injections (%v)", len(p.Injected), err)
	}
	if c, err := net.DialTimeout("tcp", proxyAddr[1], time.Second); err == nil {
		c.Close()
		t.Errorf("the fault proxy at %s still accepts connections", proxyAddr[1])
	}
	// A second recover finds nothing left.
	again, err := exec.Command("redline", "chaos", "recover", "--data", out).CombinedOutput()
	if err != nil || !strings.Contains(string(again), "0 faults were left injected") {
		t.Errorf("second recover: %v\n%s", err, again)
	}
}

func stoppedCount(pids []int) int {
	n := 0
	for _, pid := range pids {
		if processState(pid) == "T" {
			n++
		}
	}
	return n
}

// TestBuiltinUnitKill runs a plan on the built-in target that kills unit b's primary under
// load, stops unit a's standby for a while and throttles a consumer group, and reads the faults
// back from report.json: the kill with its evidence and the failover time, the phase judged,
// and the throttle with the evidence the target's consumer admin endpoint gives.
func TestBuiltinUnitKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the built-in target")
	}
	dir := t.TempDir()
	planPath := filepath.Join(dir, "kill.yaml")
	const plan = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: kill}
target: {builtin: {units: 2, accounts: 1000}}
sla:
  http_req_failed: ["rate<0.5"]
defaults:
  timeout: 2s
  requests: [{name: read, method: GET, path: "/v1/accounts/{{uid}}"}]
phases:
  - name: unit-kill
    load: {rate: 50/s, duration: 6s}
    faults:
      - {name: kill-b, at: 2s, kind: PodChaos, spec: {action: pod-kill, mode: one, selector: {labelSelectors: {unit: b, role: primary}}}}
      - {name: stop-a, at: 1s, duration: 2s, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {unit: a, role: standby}}}}
      - {name: lag, at: 1s, duration: 3s, kind: ConsumerChaos, spec: {group: settlement, rate: 10%}}
`
	if err := os.WriteFile(planPath, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	got, err := exec.Command("redline", "run", planPath, "--out", out, "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redline run: %v\n%s", err, got)
	}
	var report struct {
		Faults []struct {
			Name, Target, Status string
			Evidence             struct {
				Status     string
				LatencyMS  float64 `json:"latency_ms"`
				FailoverMS float64 `json:"failover_ms"`
			}
			LatenessMS float64 `json:"lateness_ms"`
		}
		Verdict struct {
			Phases []struct {
				Status   string
				Criteria []struct{ OK bool }
			}
		}
	}
	readJSON(t, filepath.Join(out, "report.json"), &report)
	byName := map[string]int{}
	for i, f := range report.Faults {
		byName[f.Name] = i
		t.Logf("%s on %s: %s, evidence %s after %.3f ms, injected %.3f ms late, failover %.0f ms",
			f.Name, f.Target, f.Status, f.Evidence.Status, f.Evidence.LatencyMS, f.LatenessMS, f.Evidence.FailoverMS)
	}
	if len(report.Faults) != 3 {
		t.Fatalf("report has %d faults, want 3:\n%s", len(report.Faults), got)
	}
	kill := report.Faults[byName["kill-b"]]
	if kill.Target != "builtin/unit/b/r1" || kill.Status != "Recovered" || kill.Evidence.Status != "observed" || kill.Evidence.FailoverMS <= 0 {
		t.Errorf("kill-b: %+v", kill)
	}
	if kill.Evidence.LatencyMS > 1000 || kill.LatenessMS > 100 {
		t.Errorf("kill-b: evidence after %.1f ms (budget 1 s), injected %.1f ms late (budget 100 ms)", kill.Evidence.LatencyMS, kill.LatenessMS)
	}
	if stop := report.Faults[byName["stop-a"]]; stop.Status != "Recovered" || stop.Evidence.Status != "observed" {
		t.Errorf("stop-a: %+v", stop)
	}
	if lag := report.Faults[byName["lag"]]; lag.Status != "Recovered" || lag.Evidence.Status != "observed" {
		t.Errorf("lag: %+v, want recovered with its evidence observed", lag)
	}
	if ph := report.Verdict.Phases; len(ph) != 1 || len(ph[0].Criteria) != 1 {
		t.Errorf("the phase was not judged on its SLA: %+v", ph)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
