// Package mesh is the only package that imports Chaos Mesh's API module: it decodes a plan's
// fault specs into Chaos Mesh's own Go types, runs Chaos Mesh's own defaulting and validation
// webhooks on them offline, turns them into Redline's chaos.Fault, and exports a plan's faults
// as Chaos Mesh resources (one Workflow, or one object per fault) for a Kubernetes cluster.
// Keeping the module here keeps its ~90 dependencies out of every other package.
package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/genericwebhook"
	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	units "github.com/docker/go-units"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/redline-dev/redline/chaos"
)

// Problem is one thing wrong with a spec, at a path of its keys ("selector.labelSelectors",
// "delay.latency"; "" for the spec as a whole).
type Problem struct {
	Path    string
	Message string
}

// Decoded is what a spec means to Redline, and the spec itself for export.
type Decoded struct {
	Action   chaos.Action
	Selector chaos.Selector
	Params   chaos.Params
	Spec     json.RawMessage // as decoded, before Chaos Mesh's defaults (export adds them)
}

var loggerOnce sync.Once

// quiet gives controller-runtime a logger once: without one it prints a stack trace after 30 s,
// and Chaos Mesh's webhooks log every validation.
func quiet() { loggerOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) }) }

// Decode decodes spec (JSON) as a Chaos Mesh spec of kind, strictly (unknown keys are
// problems), validates it with Chaos Mesh's webhooks and Redline's own limits, and returns its
// meaning. Every problem is returned at once.
func Decode(kind chaos.Kind, spec []byte) (Decoded, []Problem) {
	quiet()
	if kind == chaos.KindConsumer {
		return decodeConsumer(spec)
	}
	obj, ps := newObject(kind)
	if obj == nil {
		return Decoded{}, ps
	}
	specPtr := reflect.ValueOf(obj).Elem().FieldByName("Spec").Addr().Interface()
	if ps := strictDecode(spec, specPtr); len(ps) > 0 {
		return Decoded{}, ps
	}
	raw, _ := json.Marshal(specPtr)
	d := Decoded{Spec: raw}
	ps = append(ps, localOnly(kind, specPtr)...)
	ps = append(ps, validate(obj.(runtime.Object), "default")...)
	if len(ps) > 0 {
		return d, ps
	}
	ps = append(ps, meaning(kind, specPtr, &d)...)
	return d, ps
}

// chaosObject is what Chaos Mesh's chaos kinds are to its webhooks.
type chaosObject interface {
	runtime.Object
	metav1.Object
	webhook.CustomDefaulter
	webhook.CustomValidator
}

// newObject returns an empty object of kind.
func newObject(kind chaos.Kind) (chaosObject, []Problem) {
	switch kind {
	case chaos.KindPod:
		return &v1alpha1.PodChaos{}, nil
	case chaos.KindNetwork:
		return &v1alpha1.NetworkChaos{}, nil
	case chaos.KindStress:
		return &v1alpha1.StressChaos{}, nil
	case chaos.KindHTTP:
		return &v1alpha1.HTTPChaos{}, nil
	}
	kinds := make([]string, 0, 5)
	for _, k := range chaos.Kinds() {
		kinds = append(kinds, string(k))
	}
	return nil, []Problem{{Message: fmt.Sprintf("unknown kind %q (want one of: %s)", kind, strings.Join(kinds, ", "))}}
}

// validate runs Chaos Mesh's defaulting and its create validation on a copy of obj, as its
// admission webhook would, and locates each error by its field path.
func validate(obj runtime.Object, namespace string) []Problem {
	o := obj.DeepCopyObject().(chaosObject)
	o.SetName("redline-check")
	o.SetNamespace(namespace)
	ctx := context.Background()
	if err := o.Default(ctx, o); err != nil {
		return []Problem{{Message: "chaos mesh defaulting: " + err.Error()}}
	}
	_, err := o.ValidateCreate(ctx, o)
	if err == nil {
		return nil
	}
	var ps []Problem
	specType := reflect.ValueOf(o).Elem().FieldByName("Spec").Type()
	seen := map[Problem]bool{}
	for _, fe := range genericwebhook.Validate(o) {
		p := Problem{Path: jsonPath(specType, specPath(fe.Field)), Message: fmt.Sprintf("%s (chaos mesh)", fe.ErrorBody())}
		if !seen[p] { // a promoted Validate runs once per embedding struct
			seen[p] = true
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		ps = append(ps, Problem{Message: err.Error() + " (chaos mesh)"})
	}
	return ps
}

// specPath turns a webhook's field path ("Spec.PodSelector.Value", "spec.delay.latency") into
// the spec's keys as far as they can be known: Go names of inline structs are dropped later,
// when the path is matched against the file.
func specPath(p string) string {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "spec."), "Spec.")
	if p == "spec" || p == "Spec" {
		return ""
	}
	return p
}

// jsonPath translates a path of Go field names into the spec's JSON keys, dropping inline
// structs; segments it cannot follow are kept as they are.
func jsonPath(t reflect.Type, goPath string) string {
	if goPath == "" {
		return ""
	}
	var out []string
	for _, seg := range strings.Split(goPath, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			out = append(out, seg)
			continue
		}
		f, ok := fieldNamed(t, seg)
		if !ok {
			out = append(out, seg)
			continue
		}
		t = f.Type
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if (f.Anonymous && name == "") || strings.Contains(opts, "inline") {
			continue
		}
		out = append(out, name)
	}
	return strings.Join(out, ".")
}

// fieldNamed finds a struct field by its Go name or JSON key, either case.
func fieldNamed(t reflect.Type, seg string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if strings.EqualFold(f.Name, seg) || (name != "" && name == seg) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// strictDecode decodes data into v, refusing keys v's type does not have, with their path.
func strictDecode(data []byte, v any) []Problem {
	var generic any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return []Problem{{Message: "spec: " + err.Error()}}
	}
	if ps := checkKeys(generic, reflect.TypeOf(v), ""); len(ps) > 0 {
		return ps
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return []Problem{{Path: te.Field, Message: fmt.Sprintf("want %s, got a %s", describeType(te.Type), te.Value)}}
		}
		return []Problem{{Message: err.Error()}}
	}
	return nil
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

// checkKeys walks a decoded JSON value against a Go type's JSON fields.
func checkKeys(v any, t reflect.Type, path string) []Problem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			var ps []Problem
			for _, k := range sortedKeys(x) {
				ps = append(ps, checkKeys(x[k], t.Elem(), join(path, k))...)
			}
			return ps
		case reflect.Struct:
			fields := jsonFields(t)
			var ps []Problem
			for _, k := range sortedKeys(x) {
				ft, ok := fields[k]
				if !ok {
					ps = append(ps, Problem{Path: join(path, k), Message: "unknown key (" + suggest(k, fields) + ")"})
					continue
				}
				ps = append(ps, checkKeys(x[k], ft, join(path, k))...)
			}
			return ps
		}
	case []any:
		if t.Kind() == reflect.Slice {
			var ps []Problem
			for i, e := range x {
				ps = append(ps, checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
			}
			return ps
		}
	}
	return nil // scalars and type mismatches: json.Unmarshal reports those
}

// jsonFields maps a struct's JSON keys to their types, inline structs flattened.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if (f.Anonymous && name == "") || strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func suggest(got string, fields map[string]reflect.Type) string {
	keys := sortedKeys(fields)
	for _, k := range keys {
		if strings.EqualFold(k, got) || (len(got) > 3 && strings.HasPrefix(strings.ToLower(k), strings.ToLower(got[:3])) && abs(len(k)-len(got)) <= 2) {
			return "did you mean " + k + "?"
		}
	}
	if len(keys) > 12 {
		keys = append(keys[:12], "...")
	}
	return "want one of: " + strings.Join(keys, ", ")
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// localOnly refuses what Redline's executors cannot do, before Chaos Mesh's defaults fill
// those fields in: selection is by the target's labels, and a fault's duration sits beside its
// `at`, not in the spec.
func localOnly(kind chaos.Kind, spec any) []Problem {
	var ps []Problem
	sel, dur := selectorOf(spec)
	if dur != nil {
		ps = append(ps, Problem{Path: "duration", Message: "put the fault's duration beside `at`, not in its spec"})
	}
	if sel != nil {
		s := sel.Selector
		for name, set := range map[string]bool{
			"namespaces": len(s.Namespaces) > 0, "fieldSelectors": len(s.FieldSelectors) > 0,
			"annotationSelectors": len(s.AnnotationSelectors) > 0, "nodes": len(s.Nodes) > 0,
			"pods": len(s.Pods) > 0, "nodeSelectors": len(s.NodeSelectors) > 0, "podPhaseSelectors": len(s.PodPhaseSelectors) > 0,
		} {
			if set {
				ps = append(ps, Problem{Path: "selector." + name, Message: "Redline selects by the target's labels: use labelSelectors or expressionSelectors (export maps them with --label-map)"})
			}
		}
		if !slices.Contains(chaos.Modes(), chaos.Mode(sel.Mode)) {
			ps = append(ps, Problem{Path: "mode", Message: fmt.Sprintf("unknown mode %q (want one of: one, all, fixed, fixed-percent, random-max-percent)", sel.Mode)})
		}
	}
	if n, ok := spec.(*v1alpha1.NetworkChaosSpec); ok {
		if n.Target != nil || len(n.ExternalTargets) > 0 || n.Direction != "" || n.Device != "" || n.TargetDevice != "" {
			ps = append(ps, Problem{Message: "Redline's fault proxy sits between Redline and the target: set no target, externalTargets, direction or device"})
		}
	}
	return ps
}

// selectorOf returns the spec's pod selector and duration.
func selectorOf(spec any) (*v1alpha1.PodSelector, *string) {
	switch s := spec.(type) {
	case *v1alpha1.PodChaosSpec:
		return &s.PodSelector, s.Duration
	case *v1alpha1.NetworkChaosSpec:
		return &s.PodSelector, s.Duration
	case *v1alpha1.StressChaosSpec:
		return &s.PodSelector, s.Duration
	case *v1alpha1.HTTPChaosSpec:
		return &s.PodSelector, s.Duration
	}
	return nil, nil
}

// selector turns Chaos Mesh's selector into Redline's.
func selector(p v1alpha1.PodSelector) (chaos.Selector, []Problem) {
	s := chaos.Selector{Labels: p.Selector.LabelSelectors, Mode: chaos.Mode(p.Mode)}
	for _, r := range p.Selector.ExpressionSelectors {
		s.Expressions = append(s.Expressions, chaos.Requirement{Key: r.Key, Operator: string(r.Operator), Values: r.Values})
	}
	if p.Value != "" {
		v, err := strconv.Atoi(p.Value)
		if err != nil {
			return s, []Problem{{Path: "value", Message: fmt.Sprintf("want an integer, got %q", p.Value)}}
		}
		s.Value = v
	}
	if err := s.Validate(); err != nil {
		return s, []Problem{{Path: "value", Message: err.Error()}}
	}
	return s, nil
}

// meaning fills the action, selector and parameters of a valid spec.
func meaning(kind chaos.Kind, spec any, d *Decoded) []Problem {
	sel, _ := selectorOf(spec)
	var ps []Problem
	d.Selector, ps = selector(*sel)
	switch s := spec.(type) {
	case *v1alpha1.PodChaosSpec:
		d.Action = chaos.Action(s.Action)
	case *v1alpha1.NetworkChaosSpec:
		ps = append(ps, networkMeaning(s, d)...)
	case *v1alpha1.StressChaosSpec:
		ps = append(ps, stressMeaning(s, d)...)
	case *v1alpha1.HTTPChaosSpec:
		ps = append(ps, httpMeaning(s, d)...)
	}
	if len(ps) == 0 && !slices.Contains(chaos.Actions(kind), d.Action) {
		ps = append(ps, Problem{Path: "action", Message: fmt.Sprintf("%s action %q is not supported by Redline (want one of: %s)", kind, d.Action, actionList(kind))})
	}
	return ps
}

func actionList(k chaos.Kind) string {
	var s []string
	for _, a := range chaos.Actions(k) {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

func networkMeaning(s *v1alpha1.NetworkChaosSpec, d *Decoded) []Problem {
	d.Action = chaos.Action(s.Action)
	switch s.Action {
	case v1alpha1.DelayAction:
		if s.Delay == nil {
			return []Problem{{Path: "delay", Message: "action delay needs delay: {latency: 100ms}"}}
		}
		lat, err1 := time.ParseDuration(s.Delay.Latency)
		jit, err2 := time.ParseDuration(orZero(s.Delay.Jitter))
		if err1 != nil || err2 != nil {
			return []Problem{{Path: "delay", Message: "latency and jitter must be durations like 100ms"}}
		}
		var ps []Problem
		if p := latencyProblem("delay.latency", s.Delay.Latency, lat); p != nil {
			ps = append(ps, *p)
		}
		if jit < 0 || jit > chaos.LatencyMax {
			ps = append(ps, Problem{Path: "delay.jitter", Message: fmt.Sprintf("want a jitter from 0 to %s, got %q", chaos.LatencyMax, s.Delay.Jitter)})
		}
		d.Params.Latency, d.Params.Jitter = lat, jit
		return ps
	case v1alpha1.LossAction:
		if s.Loss == nil {
			return []Problem{{Path: "loss", Message: "action loss needs loss: {loss: \"25\"} (a percentage)"}}
		}
		v, err := strconv.ParseFloat(s.Loss.Loss, 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return []Problem{{Path: "loss.loss", Message: fmt.Sprintf("want a percentage above 0 and at most 100, got %q (a loss of 0 loses nothing)", s.Loss.Loss)}}
		}
		d.Params.LossPercent = v
	case v1alpha1.PartitionAction:
		d.Params.PartitionReject = s.PartitionBehavior == v1alpha1.RejectPartitionBehavior
	case v1alpha1.BandwidthAction:
		if s.Bandwidth == nil {
			return []Problem{{Path: "bandwidth", Message: "action bandwidth needs bandwidth: {rate: 1mbps, limit: 20971520, buffer: 10000}"}}
		}
		bps, err := rateBytes(s.Bandwidth.Rate)
		if err != nil {
			return []Problem{{Path: "bandwidth.rate", Message: err.Error()}}
		}
		d.Params.BandwidthBPS = bps
	}
	return nil
}

// latencyProblem refuses an added latency that is not above 0 (a delay of 0 or less adds
// nothing, and its evidence would be observed all the same) or over the limit.
func latencyProblem(path, text string, d time.Duration) *Problem {
	if d <= 0 || d > chaos.LatencyMax {
		return &Problem{Path: path, Message: fmt.Sprintf("want a latency above 0 and at most %s, like 100ms, got %q", chaos.LatencyMax, text)}
	}
	return nil
}

func orZero(s string) string {
	if s == "" {
		return "0s"
	}
	return s
}

// rateBytes converts tc's rate units (Chaos Mesh's bandwidth.rate) to bytes per second.
func rateBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		bits   float64 // bits per unit; bps-style units are bytes
	}{{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"tbit", 1e12}, {"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8}, {"bit", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(n), 10, 64)
			if err != nil || v == 0 {
				return 0, fmt.Errorf("want a positive rate like 1mbps, got %q", s)
			}
			return int64(math.Min(float64(v)*u.bits/8, math.MaxInt64/2)), nil
		}
	}
	return 0, fmt.Errorf("want a rate like 1mbps or 100kbit, got %q", s)
}

// stressMeaning reads the stressors as Chaos Mesh means them on each selected target: cpu
// workers burning at load percent each, memory workers holding size each (Chaos Mesh's size
// is per vm worker). Chaos Mesh's Stressor.Validate (workers above 0) is not wired into its
// webhook, so it is applied here; a memory stressor needs an absolute size, since Chaos Mesh's
// default, all available memory, is not something Redline holds in its own process.
func stressMeaning(s *v1alpha1.StressChaosSpec, d *Decoded) []Problem {
	d.Action = chaos.ActionStress
	if s.StressngStressors != "" || s.Stressors == nil {
		return []Problem{{Path: "stressors", Message: "Redline runs stressors: {cpu: {workers, load}, memory: {workers, size}}; stressngStressors is for Kubernetes only"}}
	}
	var ps []Problem
	if c := s.Stressors.CPUStressor; c != nil {
		d.Params.CPUWorkers, d.Params.CPULoadPercent = c.Workers, 100
		if c.Load != nil {
			d.Params.CPULoadPercent = *c.Load
		}
		if c.Workers < 1 || c.Workers > chaos.StressWorkersMax {
			ps = append(ps, Problem{Path: "stressors.cpu.workers", Message: fmt.Sprintf("want 1..%d workers, got %d", chaos.StressWorkersMax, c.Workers)})
		}
		if d.Params.CPULoadPercent <= 0 || d.Params.CPULoadPercent > 100 {
			ps = append(ps, Problem{Path: "stressors.cpu.load", Message: fmt.Sprintf("want a load in (0,100], got %d", d.Params.CPULoadPercent)})
		}
	}
	if m := s.Stressors.MemoryStressor; m != nil {
		ps = append(ps, memoryMeaning(m, d)...)
	}
	return ps
}

func memoryMeaning(m *v1alpha1.MemoryStressor, d *Decoded) []Problem {
	var ps []Problem
	if m.Workers < 1 {
		ps = append(ps, Problem{Path: "stressors.memory.workers", Message: fmt.Sprintf("want 1 or more workers, each holding size, got %d", m.Workers)})
	}
	if m.Size == "" {
		return append(ps, Problem{Path: "stressors.memory.size", Message: "missing; want an absolute size per worker, like 256MB (Chaos Mesh's default, all available memory, is not run here)"})
	}
	b, err := units.RAMInBytes(m.Size)
	if err != nil || b <= 0 || b > chaos.StressMemoryBytesMax {
		return append(ps, Problem{Path: "stressors.memory.size", Message: fmt.Sprintf("want an absolute size up to 4GB, like 256MB, got %q", m.Size)})
	}
	if len(ps) > 0 {
		return ps
	}
	if int64(m.Workers) > chaos.StressMemoryBytesMax/b {
		return []Problem{{Path: "stressors.memory", Message: fmt.Sprintf("%d workers of %s each: more than the limit of %s in all", m.Workers, m.Size, units.BytesSize(chaos.StressMemoryBytesMax))}}
	}
	d.Params.MemoryBytes = b * int64(m.Workers)
	return nil
}

func httpMeaning(s *v1alpha1.HTTPChaosSpec, d *Decoded) []Problem {
	switch {
	case s.Abort != nil && *s.Abort && s.Delay == nil:
		d.Action = chaos.ActionAbort
	case s.Delay != nil && s.Abort == nil:
		lat, err := time.ParseDuration(*s.Delay)
		if err != nil {
			return []Problem{{Path: "delay", Message: "want a duration like 100ms"}}
		}
		if p := latencyProblem("delay", *s.Delay, lat); p != nil {
			return []Problem{*p}
		}
		d.Action, d.Params.Latency = chaos.ActionDelay, lat
	default:
		return []Problem{{Message: "Redline runs HTTPChaos abort: true or delay: DURATION, one of them"}}
	}
	if s.Replace != nil || s.Patch != nil || s.Path != nil || s.Method != nil || s.Code != nil || len(s.RequestHeaders) > 0 || len(s.ResponseHeaders) > 0 {
		return []Problem{{Message: "Redline's proxy acts on every request of the link: set no replace, patch, path, method, code or headers"}}
	}
	return nil
}
