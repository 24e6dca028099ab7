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

// faultPlan is a valid plan with one fault, on a URL target with one local process:
//
//	 1 apiVersion: redline/v1
//	 2 kind: Rehearsal
//	 3 metadata: {name: faults}
//	 4 target:
//	 5   url: "http://127.0.0.1:8080"
//	 6   processes:
//	 7     - {name: victim, pid: 4242, labels: {role: primary}}
//	 8 defaults:
//	 9   requests: [{name: get, path: /}]
//	10 phases:
//	11   - name: chaos
//	12     load: {rate: 10/s, duration: 60s}
//	13     faults:
//	14       - {at: 1s, duration: 10s, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {role: primary}}}}
const faultPlan = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: faults}
target:
  url: "http://127.0.0.1:8080"
  processes:
    - {name: victim, pid: 4242, labels: {role: primary}}
defaults:
  requests: [{name: get, path: /}]
phases:
  - name: chaos
    load: {rate: 10/s, duration: 60s}
    faults:
      - {at: 1s, duration: 10s, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {role: primary}}}}
`

// TestFaultProblems checks what validation refuses in a plan's faults and their targets, each
// row replacing things in faultPlan.
func TestFaultProblems(t *testing.T) {
	const (
		fault   = "{at: 1s, duration: 10s, kind: PodChaos, spec: {action: pod-failure, mode: one, selector: {labelSelectors: {role: primary}}}}"
		url     = `url: "http://127.0.0.1:8080"`
		builtin = "builtin: {units: 2}"
		delay   = "{at: 1s, duration: 10s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 10ms}}}"
		cpu40   = "{at: 1s, duration: 10s, kind: StressChaos, spec: {mode: MODE, selector: {}, stressors: {cpu: {workers: 40}}}}"
	)
	tests := []struct {
		name  string
		edits []string // old, new, old, new, ...
		opts  plan.Options
		want  []string
	}{
		{name: "valid"},
		{name: "negative network delay", edits: []string{fault, "{at: 1s, duration: 10s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: -500ms, jitter: -100ms}}}"},
			want: []string{`plan.yaml:14:117: phases[0].faults[0].spec.delay.latency: want a latency above 0 and at most 1m0s, like 100ms, got "-500ms"`,
				`plan.yaml:14:133: phases[0].faults[0].spec.delay.jitter: want a jitter from 0 to 1m0s, got "-100ms"`}},
		{name: "loss of 0", edits: []string{fault, "{at: 1s, duration: 10s, kind: NetworkChaos, spec: {action: loss, mode: all, selector: {}, loss: {loss: '0'}}}"},
			want: []string{`plan.yaml:14:112: phases[0].faults[0].spec.loss.loss: want a percentage above 0 and at most 100, got "0" (a loss of 0 loses nothing)`}},
		{name: "negative http delay", edits: []string{fault, "{at: 1s, duration: 10s, kind: HTTPChaos, spec: {mode: all, selector: {}, target: Request, port: 80, delay: -400ms}}"},
			want: []string{`plan.yaml:14:116: phases[0].faults[0].spec.delay: want a latency above 0 and at most 1m0s, like 100ms, got "-400ms"`}},
		{name: "cpu workers 0", edits: []string{fault, "{at: 1s, duration: 10s, kind: StressChaos, spec: {mode: one, selector: {}, stressors: {cpu: {workers: 0}}}}"},
			want: []string{"plan.yaml:14:111: phases[0].faults[0].spec.stressors.cpu.workers: want 1..64 workers, got 0"}},
		{name: "memory without size", edits: []string{fault, "{at: 1s, duration: 10s, kind: StressChaos, spec: {mode: one, selector: {}, stressors: {memory: {workers: 1}}}}"},
			want: []string{"plan.yaml:14:104: phases[0].faults[0].spec.stressors.memory.size: missing; want an absolute size per worker, like 256MB (Chaos Mesh's default, all available memory, is not run here)"}},
		{name: "network fault on an http target", edits: []string{fault, delay}},
		{name: "network fault on an https target", edits: []string{fault, delay, url, `url: "https://127.0.0.1:8443"`},
			want: []string{`plan.yaml:14:39: phases[0].faults[0].kind: NetworkChaos needs an http:// target: Redline's fault proxy relays plain HTTP between the load and the target, got "https://127.0.0.1:8443"`}},
		{name: "http fault on an https --target-url", edits: []string{fault, "{at: 1s, duration: 10s, kind: HTTPChaos, spec: {mode: all, selector: {}, target: Request, port: 80, abort: true}}"},
			opts: plan.Options{TargetURL: "https://pay.example"},
			want: []string{`plan.yaml:14:39: phases[0].faults[0].kind: HTTPChaos needs an http:// target: Redline's fault proxy relays plain HTTP between the load and the target, got "https://pay.example"`}},
		{name: "pod fault on an https target", edits: []string{url, `url: "https://127.0.0.1:8443"`}},
		{name: "fixed-percent rounds to none", edits: []string{"mode: one", `mode: fixed-percent, value: "50"`},
			want: []string{"plan.yaml:14:105: phases[0].faults[0].spec.value: mode fixed-percent 50 selects 0 of the 1 targets its selector matches (1 × 50%, rounded down); want a value of 100 or more"}},
		{name: "random-max-percent rounds to none", edits: []string{"mode: one", `mode: random-max-percent, value: "99"`},
			want: []string{"plan.yaml:14:110: phases[0].faults[0].spec.value: mode random-max-percent 99 selects 0 of the 1 targets its selector matches (1 × 99%, rounded down); want a value of 100 or more"}},
		{name: "fixed-percent of all", edits: []string{"mode: one", `mode: fixed-percent, value: "100"`}},
		{name: "fixed-percent of the built-in units", edits: []string{url, builtin, "{labelSelectors: {role: primary}}", "{}", "mode: one", `mode: fixed-percent, value: "10"`},
			want: []string{"plan.yaml:14:105: phases[0].faults[0].spec.value: mode fixed-percent 10 selects 0 of the 9 targets its selector matches (9 × 10%, rounded down); want a value of 12 or more"}},
		{name: "stress within the limits on one target", edits: []string{url, builtin, fault, strings.Replace(cpu40, "MODE", "one", 1)}},
		{name: "stress over the limits on all its targets", edits: []string{url, builtin, fault, strings.Replace(cpu40, "MODE", "all", 1)},
			want: []string{"plan.yaml:14:95: phases[0].faults[0].spec.stressors: invalid fault: stress of 360 cpu workers in Redline's process, over the limit of 64 (9 targets × 40 cpu workers and 0 MiB)"}},
		{name: "stress memory over the limits on all its targets", edits: []string{url, builtin, fault, "{at: 1s, duration: 10s, kind: StressChaos, spec: {mode: fixed, value: '2', selector: {}, stressors: {memory: {workers: 1, size: 3GB}}}}"},
			want: []string{"plan.yaml:14:109: phases[0].faults[0].spec.stressors: invalid fault: stress of 6144 MiB of memory in Redline's process, over the limit of 4096 MiB (2 targets × 0 cpu workers and 3072 MiB)"}},
		{name: "stresses at once over the limits", edits: []string{fault, strings.Replace(cpu40, "MODE", "one", 1) + "\n      - " + strings.Replace(strings.Replace(cpu40, "MODE", "one", 1), "at: 1s", "at: 5s", 1)},
			want: []string{"plan.yaml:15:95: phases[0].faults[1].spec.stressors: invalid fault: stress of 80 cpu workers in Redline's process, over the limit of 64, with chaos-0 still running"}},
		{name: "stresses one after the other", edits: []string{fault, strings.Replace(cpu40, "MODE", "one", 1) + "\n      - " + strings.Replace(strings.Replace(cpu40, "MODE", "one", 1), "at: 1s", "at: 11s", 1)}},
		{name: "pid 1", edits: []string{"pid: 4242", "pid: 1"},
			want: []string{"plan.yaml:7:27: target.processes[0].pid: pid 1 is init: a fault on it would stop or kill the whole machine, Redline included"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := faultPlan
			for i := 0; i+1 < len(tt.edits); i += 2 {
				if strings.Count(data, tt.edits[i]) != 1 {
					t.Fatalf("%q is not in the plan exactly once", tt.edits[i])
				}
				data = strings.Replace(data, tt.edits[i], tt.edits[i+1], 1)
			}
			if diff := cmp.Diff(tt.want, problems(t, data, tt.opts)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
