package mesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/redline-dev/redline/chaos"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		kind   chaos.Kind
		spec   string
		want   Decoded // Spec is not compared
		wantPs []Problem
	}{
		{
			name: "pod-kill",
			kind: chaos.KindPod,
			spec: `{"action":"pod-kill","mode":"one","selector":{"labelSelectors":{"unit":"b","role":"primary"}}}`,
			want: Decoded{Action: chaos.ActionPodKill, Selector: chaos.Selector{Labels: map[string]string{"unit": "b", "role": "primary"}, Mode: chaos.ModeOne}},
		},
		{
			name: "network delay with jitter",
			kind: chaos.KindNetwork,
			spec: `{"action":"delay","mode":"all","selector":{"labelSelectors":{"role":"router"}},"delay":{"latency":"100ms","jitter":"10ms"}}`,
			want: Decoded{Action: chaos.ActionDelay, Selector: chaos.Selector{Labels: map[string]string{"role": "router"}, Mode: chaos.ModeAll},
				Params: chaos.Params{Latency: 100 * time.Millisecond, Jitter: 10 * time.Millisecond}},
		},
		{
			name: "fixed-percent",
			kind: chaos.KindPod,
			spec: `{"action":"pod-failure","mode":"fixed-percent","value":"50","selector":{"expressionSelectors":[{"key":"unit","operator":"In","values":["a","b"]}]}}`,
			want: Decoded{Action: chaos.ActionPodFailure, Selector: chaos.Selector{Mode: chaos.ModeFixedPercent, Value: 50,
				Expressions: []chaos.Requirement{{Key: "unit", Operator: "In", Values: []string{"a", "b"}}}}},
		},
		{
			name: "consumer throttle",
			kind: chaos.KindConsumer,
			spec: `{"group":"settlement","rate":"10%"}`,
			want: Decoded{Action: chaos.ActionThrottle, Selector: chaos.Selector{Labels: map[string]string{"group": "settlement"}, Mode: chaos.ModeAll},
				Params: chaos.Params{Group: "settlement", Percent: 10}},
		},
		{
			name:   "percent over 100: chaos mesh's rule",
			kind:   chaos.KindPod,
			spec:   `{"action":"pod-kill","mode":"fixed-percent","value":"150","selector":{"labelSelectors":{"unit":"b"}}}`,
			wantPs: []Problem{{Path: "value"}},
		},
		{
			name:   "unknown key",
			kind:   chaos.KindPod,
			spec:   `{"action":"pod-kill","mode":"one","selector":{"labelSelector":{"unit":"b"}}}`,
			wantPs: []Problem{{Path: "selector.labelSelector"}},
		},
		{
			name:   "unknown mode",
			kind:   chaos.KindPod,
			spec:   `{"action":"pod-kill","mode":"some","selector":{"labelSelectors":{"unit":"b"}}}`,
			wantPs: []Problem{{Path: "mode"}},
		},
		{
			name:   "duration in spec",
			kind:   chaos.KindPod,
			spec:   `{"action":"pod-failure","mode":"one","duration":"10s","selector":{"labelSelectors":{"unit":"b"}}}`,
			wantPs: []Problem{{Path: "duration"}},
		},
		{
			name:   "bad latency: chaos mesh's rule",
			kind:   chaos.KindNetwork,
			spec:   `{"action":"delay","mode":"all","selector":{"labelSelectors":{"role":"router"}},"delay":{"latency":"fast"}}`,
			wantPs: []Problem{{Path: "delay.latency"}},
		},
		{
			name:   "consumer without rate",
			kind:   chaos.KindConsumer,
			spec:   `{"group":"settlement"}`,
			wantPs: []Problem{{Path: "rate"}},
		},
		{
			name: "stress cpu and memory",
			kind: chaos.KindStress,
			spec: `{"mode":"one","selector":{"labelSelectors":{"role":"primary"}},"stressors":{"cpu":{"workers":2,"load":50},"memory":{"workers":2,"size":"64MB"}}}`,
			want: Decoded{Action: chaos.ActionStress, Selector: chaos.Selector{Labels: map[string]string{"role": "primary"}, Mode: chaos.ModeOne},
				Params: chaos.Params{CPUWorkers: 2, CPULoadPercent: 50, MemoryBytes: 2 * 64 << 20}},
		},
		{
			name:   "negative latency and jitter",
			kind:   chaos.KindNetwork,
			spec:   `{"action":"delay","mode":"all","selector":{},"delay":{"latency":"-500ms","jitter":"-100ms"}}`,
			wantPs: []Problem{{Path: "delay.latency"}, {Path: "delay.jitter"}},
		},
		{
			name:   "zero latency",
			kind:   chaos.KindNetwork,
			spec:   `{"action":"delay","mode":"all","selector":{},"delay":{"latency":"0ms"}}`,
			wantPs: []Problem{{Path: "delay.latency"}},
		},
		{
			name:   "loss of 0%",
			kind:   chaos.KindNetwork,
			spec:   `{"action":"loss","mode":"all","selector":{},"loss":{"loss":"0"}}`,
			wantPs: []Problem{{Path: "loss.loss"}},
		},
		{
			name:   "negative http delay",
			kind:   chaos.KindHTTP,
			spec:   `{"mode":"all","selector":{},"target":"Request","port":80,"delay":"-400ms"}`,
			wantPs: []Problem{{Path: "delay"}},
		},
		{
			name:   "http delay of 0",
			kind:   chaos.KindHTTP,
			spec:   `{"mode":"all","selector":{},"target":"Request","port":80,"delay":"0s"}`,
			wantPs: []Problem{{Path: "delay"}},
		},
		{
			name:   "cpu workers 0",
			kind:   chaos.KindStress,
			spec:   `{"mode":"one","selector":{},"stressors":{"cpu":{"workers":0}}}`,
			wantPs: []Problem{{Path: "stressors.cpu.workers"}},
		},
		{
			name:   "cpu workers negative",
			kind:   chaos.KindStress,
			spec:   `{"mode":"one","selector":{},"stressors":{"cpu":{"workers":-4}}}`,
			wantPs: []Problem{{Path: "stressors.cpu.workers"}},
		},
		{
			name:   "memory without size",
			kind:   chaos.KindStress,
			spec:   `{"mode":"one","selector":{},"stressors":{"memory":{"workers":1}}}`,
			wantPs: []Problem{{Path: "stressors.memory.size"}},
		},
		{
			name:   "memory without workers",
			kind:   chaos.KindStress,
			spec:   `{"mode":"one","selector":{},"stressors":{"memory":{"size":"64MB"}}}`,
			wantPs: []Problem{{Path: "stressors.memory.workers"}},
		},
		{
			name:   "memory workers times size over the limit",
			kind:   chaos.KindStress,
			spec:   `{"mode":"one","selector":{},"stressors":{"memory":{"workers":3,"size":"2GB"}}}`,
			wantPs: []Problem{{Path: "stressors.memory"}},
		},
		{
			name:   "unsupported network action",
			kind:   chaos.KindNetwork,
			spec:   `{"action":"corrupt","mode":"all","selector":{"labelSelectors":{"role":"router"}},"corrupt":{"corrupt":"10"}}`,
			wantPs: []Problem{{Path: "action"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ps := Decode(tt.kind, []byte(tt.spec))
			for i := range ps {
				if ps[i].Message == "" {
					t.Errorf("problem %d has no message", i)
				}
				ps[i].Message = ""
			}
			if diff := cmp.Diff(tt.wantPs, ps); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if len(ps) > 0 {
				return
			}
			got.Spec = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func faultsForExport(t *testing.T) []chaos.Fault {
	t.Helper()
	var out []chaos.Fault
	for _, f := range []struct {
		name, phase string
		kind        chaos.Kind
		at, dur     time.Duration
		spec        string
	}{
		{"unit-kill-0", "unit_kill", chaos.KindPod, 20 * time.Second, 0, `{"action":"pod-kill","mode":"one","selector":{"labelSelectors":{"unit":"b","role":"primary"}}}`},
		{"slow-router", "unit_kill", chaos.KindNetwork, 0, 30 * time.Second, `{"action":"delay","mode":"all","selector":{"labelSelectors":{"role":"router"}},"delay":{"latency":"100ms"}}`},
		{"lag", "lag", chaos.KindConsumer, time.Second, 10 * time.Second, `{"group":"settlement","rate":"10%"}`},
	} {
		d, ps := Decode(f.kind, []byte(f.spec))
		if len(ps) > 0 {
			t.Fatalf("decode %s: %v", f.name, ps)
		}
		out = append(out, chaos.Fault{Name: f.name, Phase: f.phase, Kind: f.kind, Action: d.Action, At: f.at, Duration: f.dur,
			Selector: d.Selector, Params: d.Params, Spec: d.Spec})
	}
	return out
}

func TestExportWorkflow(t *testing.T) {
	ex, err := Build(faultsForExport(t), ExportOptions{Plan: "Double11", Namespace: "pay",
		LabelMap: map[string]string{"unit": "app.kubernetes.io/instance"}, PhaseStart: map[string]time.Duration{"unit_kill": time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"lag: ConsumerChaos has no Chaos Mesh kind"}, ex.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if len(ex.Objects) != 1 {
		t.Fatalf("got %d objects, want one Workflow", len(ex.Objects))
	}
	y, err := ex.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Workflow", "deadline: 1m20s", "app.kubernetes.io/instance: b", "templateType: Suspend", "namespace: pay"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("export lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(string(y), "status:") {
		t.Errorf("export has a status:\n%s", y)
	}
	// What was written reads back and passes Chaos Mesh's validation again.
	var w v1alpha1.Workflow
	if err := yaml.UnmarshalStrict(y, &w); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ValidateCreate(context.Background(), &w); err != nil {
		t.Errorf("exported workflow fails validation: %v", err)
	}
}

func TestExportFlatAndApply(t *testing.T) {
	ex, err := Build(faultsForExport(t), ExportOptions{Plan: "double11", Flat: true})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range ex.Objects {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName())
	}
	if diff := cmp.Diff([]string{"PodChaos/unit-kill-0", "NetworkChaos/slow-router"}, kinds); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	if err := ex.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	var nc v1alpha1.NetworkChaos
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "slow-router"}, &nc); err != nil {
		t.Fatal(err)
	}
	if nc.Spec.Duration == nil || *nc.Spec.Duration != "30s" || nc.Spec.Delay.Latency != "100ms" {
		t.Errorf("applied NetworkChaos spec = %+v", nc.Spec)
	}
}

func TestCheckLabelMap(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]string
		wantErr bool
	}{
		{"none", nil, false},
		{"prefixed key", map[string]string{"unit": "app.kubernetes.io/instance", "role": "tier"}, false},
		{"a swap", map[string]string{"unit": "app", "app": "tier"}, false},
		{"two onto one", map[string]string{"unit": "app", "role": "app"}, true},
		{"target not a label key", map[string]string{"unit": "Bad Key!"}, true},
		{"target with a second =", map[string]string{"unit": "b=c"}, true},
		{"source not a label key", map[string]string{"a/b/c": "app"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLabelMap(tt.m)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrExport)) {
				t.Errorf("CheckLabelMap(%v) = %v, want an error: %v", tt.m, err, tt.wantErr)
			}
		})
	}
}

func TestCheckNamespace(t *testing.T) {
	for ns, ok := range map[string]bool{"default": true, "pay-prod": true, "Bad_NS!": false, "Pay": false, "": false} {
		if err := CheckNamespace(ns); (err == nil) != ok {
			t.Errorf("CheckNamespace(%q) = %v, want ok: %v", ns, err, ok)
		}
	}
}

// TestExportLabelMapCollision checks that renaming selector keys never merges two of them: the
// exported selector would keep one value at random and could select more than the plan did.
func TestExportLabelMapCollision(t *testing.T) {
	tests := []struct {
		name     string
		labelMap map[string]string
		want     map[string]string // the exported selector; nil: refused
	}{
		{"no map", nil, map[string]string{"app": "x", "unit": "b"}},
		{"onto a key the selector has", map[string]string{"unit": "app"}, nil},
		{"two onto one", map[string]string{"unit": "tier", "app": "tier"}, nil},
		{"a swap", map[string]string{"unit": "app", "app": "tier"}, map[string]string{"app": "b", "tier": "x"}},
		{"onto a prefixed key", map[string]string{"unit": "app.kubernetes.io/instance"}, map[string]string{"app": "x", "app.kubernetes.io/instance": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ps := Decode(chaos.KindPod, []byte(`{"action":"pod-kill","mode":"one","selector":{"labelSelectors":{"app":"x","unit":"b"}}}`))
			if len(ps) > 0 {
				t.Fatal(ps)
			}
			f := chaos.Fault{Name: "kill", Phase: "p", Kind: chaos.KindPod, Action: d.Action, Selector: d.Selector, Spec: d.Spec}
			ex, err := Build([]chaos.Fault{f}, ExportOptions{Plan: "p", Flat: true, LabelMap: tt.labelMap})
			if tt.want == nil {
				if !errors.Is(err, ErrExport) {
					t.Fatalf("Build = %v, want ErrExport", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ex.Objects[0].(*v1alpha1.PodChaos).Spec.Selector.LabelSelectors
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewClientBadKubeconfig(t *testing.T) {
	dir := t.TempDir()
	damaged := filepath.Join(dir, "damaged")
	if err := os.WriteFile(damaged, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "missing"), "damaged": damaged} {
		if _, err := NewClient(path); !errors.Is(err, ErrKubeconfig) {
			t.Errorf("%s: NewClient = %v, want ErrKubeconfig", name, err)
		}
	}
}
