package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/plan"
)

const withFaults = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: faults}
target:
  url: "http://127.0.0.1:8080"
  labels: {role: gateway}
  processes:
    - {name: api, pid: 4242, labels: {unit: a, role: primary}}
    - {name: worker, pidFile: /run/worker.pid, labels: {unit: a, role: standby}}
abortWhen: "http_req_failed rate>0.5 for 5s"
defaults:
  requests: [{name: get, path: /}]
phases:
  - {name: warmup, load: {rate: 10/s, duration: 5s}, judge: false}
  - name: chaos
    load: {rate: 10/s, duration: 60s}
    abortWhen: ["http_req_duration p(99)>2000 for 10s"]
    faults:
      - {name: stop-primary, at: 10s, duration: 20s, kind: PodChaos,
         spec: {action: pod-failure, mode: one, selector: {labelSelectors: {role: primary}}}}
      - {at: 5s, kind: PodChaos, spec: {action: pod-kill, mode: all, selector: {labelSelectors: {unit: a}}}}
      - {at: 30s, kind: NetworkChaos,
         spec: {action: delay, mode: all, selector: {labelSelectors: {role: gateway}}, delay: {latency: 100ms, jitter: 10ms}}}
`

func TestParseFaults(t *testing.T) {
	p, err := plan.Parse("faults.yaml", []byte(withFaults), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ph := p.Phases()[1]
	want := []chaos.Fault{
		{Name: "stop-primary", Phase: "chaos", Kind: chaos.KindPod, Action: chaos.ActionPodFailure, At: 10 * time.Second, Duration: 20 * time.Second,
			Selector: chaos.Selector{Labels: map[string]string{"role": "primary"}, Mode: chaos.ModeOne}},
		{Name: "chaos-1", Phase: "chaos", Kind: chaos.KindPod, Action: chaos.ActionPodKill, At: 5 * time.Second,
			Selector: chaos.Selector{Labels: map[string]string{"unit": "a"}, Mode: chaos.ModeAll}},
		{Name: "chaos-2", Phase: "chaos", Kind: chaos.KindNetwork, Action: chaos.ActionDelay, At: 30 * time.Second, Duration: 30 * time.Second,
			Selector: chaos.Selector{Labels: map[string]string{"role": "gateway"}, Mode: chaos.ModeAll},
			Params:   chaos.Params{Latency: 100 * time.Millisecond, Jitter: 10 * time.Millisecond}},
	}
	if diff := cmp.Diff(want, ph.Faults, cmpopts.IgnoreFields(chaos.Fault{}, "Spec")); diff != "" {
		t.Errorf("faults (-want +got):\n%s", diff)
	}
	var guards []string
	for _, g := range ph.AbortWhen {
		guards = append(guards, g.String())
	}
	if diff := cmp.Diff([]string{"http_req_failed rate>0.5 for 5s", "http_req_duration p(99)>2000 for 10s"}, guards); diff != "" {
		t.Errorf("guards (-want +got):\n%s", diff)
	}
	procs := p.Target().Processes
	if len(procs) != 2 || procs[0].Pid != 4242 || procs[1].PidFile != "/run/worker.pid" || procs[0].Labels["process"] != "api" {
		t.Errorf("processes %+v", procs)
	}
	sum := p.Summary()
	for _, line := range []string{
		"stop-primary  15s +20s",
		"all of process/api, process/worker",
		"role=primary (one)  all of process/api",
		"all of link/target",
		"chaos   http_req_duration p(99)>2000 for 10s",
	} {
		if !strings.Contains(sum, line) {
			t.Errorf("summary lacks %q:\n%s", line, sum)
		}
	}
}
