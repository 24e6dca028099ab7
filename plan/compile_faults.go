package plan

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/chaos/mesh"
)

// faults compiles a phase's faults. Each spec is decoded by chaos/mesh into Chaos Mesh's own
// types and validated with Chaos Mesh's rules; its problems come back located in the file.
func (c *compiler) faults(f phaseFile, ph Phase) []chaos.Fault {
	var out []chaos.Fault
	var stresses []stressUse
	for i, ff := range f.faults {
		if len(c.faultNames) >= PlanFaultsMax {
			c.r.at(ff.node, ff.path, "more than %d faults in the plan (limit)", PlanFaultsMax)
			return out
		}
		fl, targets, ok := c.fault(ff, ph, i)
		if ok {
			out = append(out, fl)
		}
		if ok && fl.Kind == chaos.KindStress {
			stresses = append(stresses, stressUse{ff, fl, targets})
		}
	}
	c.checkStressOverlap(stresses)
	return out
}

// fault compiles one fault; targets is how many of the targets known before the run it
// selects at most.
func (c *compiler) fault(f faultFile, ph Phase, i int) (chaos.Fault, int, bool) {
	before := c.r.count()
	fl := chaos.Fault{Name: fmt.Sprintf("%s-%d", ph.Name, i), Phase: ph.Name}
	if f.name != nil {
		fl.Name, _ = c.name(f.name, join(f.path, "name"))
	}
	if prev, dup := c.faultNames[fl.Name]; dup && fl.Name != "" {
		c.r.at(f.node, join(f.path, "name"), "duplicate fault name %q (first at %s)", fl.Name, prev)
	}
	c.faultNames[fl.Name] = f.path
	if f.at != nil {
		fl.At, _ = c.duration(f.at, join(f.path, "at"), 0, PhaseDurationMax)
	}
	switch {
	case f.kind == nil:
		c.missing(f.node, join(f.path, "kind"), "want a kind: %s", kindList())
	case f.spec == nil:
		c.missing(f.node, join(f.path, "spec"), "want the fault's spec, in Chaos Mesh's shape")
	default:
		c.spec(f, &fl)
	}
	c.faultTiming(f, ph, &fl)
	if c.r.count() > before {
		return fl, 0, false
	}
	if err := fl.Validate(); err != nil {
		c.r.at(f.node, f.path, "%v", err)
		return fl, 0, false
	}
	c.checkLink(f, fl)
	targets := c.checkSelects(f, fl)
	return fl, targets, c.r.count() == before
}

// checkLink refuses a network or HTTP fault on a target the fault proxy cannot stand in front
// of: the proxy relays the load's plain HTTP to the target's host and port, and TLS to an
// https:// target through it would not verify. The built-in target's router speaks http://.
func (c *compiler) checkLink(f faultFile, fl chaos.Fault) {
	if (fl.Kind != chaos.KindNetwork && fl.Kind != chaos.KindHTTP) || c.planTarget.Builtin != nil || c.planTarget.URL == "" {
		return
	}
	if u, err := url.Parse(c.planTarget.URL); err == nil && u.Scheme == "http" {
		return
	}
	c.r.at(f.kind, join(f.path, "kind"), "%s needs an http:// target: Redline's fault proxy relays plain HTTP between the load and the target, got %q",
		fl.Kind, c.planTarget.URL)
}
func kindList() string {
	var s []string
	for _, k := range chaos.Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// spec decodes the fault's kind and spec through chaos/mesh.
func (c *compiler) spec(f faultFile, fl *chaos.Fault) {
	kind, ok := c.str(f.kind, join(f.path, "kind"), "a kind like PodChaos")
	if !ok {
		return
	}
	fl.Kind = chaos.Kind(kind)
	path := join(f.path, "spec")
	v, ok := c.jsonValue(f.spec, path)
	if !ok {
		return
	}
	if _, isMap := v.(map[string]any); !isMap {
		c.r.at(f.spec, path, "want a mapping, got %s", describe(f.spec))
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		c.r.at(f.spec, path, "%v", err)
		return
	}
	d, problems := mesh.Decode(fl.Kind, data)
	for _, p := range problems {
		if p.Path == "" && strings.HasPrefix(p.Message, "unknown kind") {
			c.r.at(f.kind, join(f.path, "kind"), "%s", p.Message)
			continue
		}
		n := locate(f.spec, p.Path)
		c.r.at(n, join(path, p.Path), "%s", p.Message)
	}
	fl.Action, fl.Selector, fl.Params, fl.Spec = d.Action, d.Selector, d.Params, d.Spec
}

// faultTiming sets the fault's duration and checks that it starts and ends inside the phase:
// every fault is recovered before its phase ends, at the latest.
func (c *compiler) faultTiming(f faultFile, ph Phase, fl *chaos.Fault) {
	path := join(f.path, "duration")
	switch {
	case f.duration != nil && fl.OneShot():
		c.r.at(f.duration, path, "%s %s is one-shot: it has no duration", fl.Kind, fl.Action)
	case f.duration != nil:
		fl.Duration, _ = c.duration(f.duration, path, positive, chaos.DurationMax)
	case !fl.OneShot() && ph.Duration > fl.At:
		fl.Duration = ph.Duration - fl.At // until the phase ends, when it is recovered anyway
	}
	if ph.Duration <= 0 {
		return // the phase's length had problems of its own
	}
	switch {
	case fl.At >= ph.Duration && f.at != nil:
		c.r.at(f.at, join(f.path, "at"), "at %s is not inside the phase, which lasts %s", fl.At, ph.Duration)
	case !fl.OneShot() && fl.At+fl.Duration > ph.Duration && f.duration != nil:
		c.r.at(f.duration, path, "the fault would end at %s, after its phase (%s): every fault is recovered within its phase", fl.At+fl.Duration, ph.Duration)
	}
}

// checkSelects refuses a fault whose selector matches none of the plan's targets, whose mode
// rounds the matches down to none, or that would be over the limits on all it selects, when
// the targets are known before the run: a URL target's link and processes, or the built-in
// target as it starts. It returns how many targets the fault selects at most.
func (c *compiler) checkSelects(f faultFile, fl chaos.Fault) int {
	var accepting []chaos.Target
	for _, t := range c.planTarget.StaticTargets() {
		if t.Accepts(fl.Kind) {
			accepting = append(accepting, t)
		}
	}
	matched := 0
	for _, t := range accepting {
		if fl.Selector.Matches(t.Labels) {
			matched++
		}
	}
	if matched == 0 {
		c.selectsNothing(f, fl, accepting)
		return 0
	}
	n := fl.Selector.Count(matched, func(k int) int { return k - 1 }) // random-max-percent: at most
	if n == 0 {
		c.r.at(locate(f.spec, "value"), join(f.path, "spec.value"), "mode %s %d selects 0 of the %d targets its selector matches (%d × %d%%, rounded down); want a value of %d or more",
			fl.Selector.Mode, fl.Selector.Value, matched, matched, fl.Selector.Value, (100+matched-1)/matched)
		return 0
	}
	if err := fl.CheckTargets(n); err != nil {
		c.r.at(locate(f.spec, "stressors"), join(f.path, "spec.stressors"), "%v", err)
	}
	return n
}

// selectsNothing reports a selector that matches no target, with the targets there are.
func (c *compiler) selectsNothing(f faultFile, fl chaos.Fault, accepting []chaos.Target) {
	var names []string
	for _, t := range accepting {
		names = append(names, t.Name+" "+labelText(t.Labels))
	}
	if len(names) == 0 {
		hint := "none; name local processes in target.processes"
		if fl.Kind == chaos.KindConsumer {
			hint = "none; consumer groups belong to the built-in target"
		}
		names = append(names, hint)
	}
	c.r.at(locate(f.spec, "selector"), join(f.path, "spec.selector"), "%s selects no target of this plan (%s targets: %s)",
		fl.Selector, fl.Kind, strings.Join(names, "; "))
}

// stressUse is a phase's StressChaos with how many targets it selects at most.
type stressUse struct {
	f       faultFile
	fl      chaos.Fault
	targets int
}

// checkStressOverlap refuses StressChaos faults of a phase that run at the same time and
// together go over the limits: every stressor runs inside Redline's own process. The most
// held at once is held at some fault's start.
func (c *compiler) checkStressOverlap(ss []stressUse) {
	for _, s := range ss {
		workers, bytes := 0, int64(0)
		var beside []string
		for _, o := range ss {
			if o.fl.At <= s.fl.At && s.fl.At < o.fl.At+o.fl.Duration {
				workers += o.targets * o.fl.Params.CPUWorkers
				bytes += int64(o.targets) * o.fl.Params.MemoryBytes
				if o.fl.Name != s.fl.Name {
					beside = append(beside, o.fl.Name)
				}
			}
		}
		if err := chaos.CheckStress(workers, bytes); err != nil && len(beside) > 0 {
			c.r.at(locate(s.f.spec, "stressors"), join(s.f.path, "spec.stressors"), "%v, with %s still running", err, strings.Join(beside, ", "))
			return
		}
	}
}

func labelText(l map[string]string) string {
	return chaos.Selector{Labels: l, Mode: chaos.ModeAll}.String()
}

// jsonValue converts a YAML subtree to JSON values: strings, json.Number, booleans, null,
// maps with string keys and lists. Aliases were bounded by measure.
func (c *compiler) jsonValue(n *yaml.Node, path string) (any, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				c.r.at(k, path, "want a plain key, got %s", describe(k))
				ok = false
				continue
			}
			if _, dup := m[k.Value]; dup {
				c.r.at(k, join(path, k.Value), "duplicate key")
				ok = false
				continue
			}
			v, vok := c.jsonValue(n.Content[i+1], join(path, k.Value))
			m[k.Value], ok = v, ok && vok
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		ok := true
		for i, e := range n.Content {
			v, vok := c.jsonValue(e, index(path, i))
			l, ok = append(l, v), ok && vok
		}
		return l, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return n.Value, true
		case "!!int", "!!float":
			if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return json.Number(n.Value), true
			}
			var v int64
			if err := n.Decode(&v); err == nil {
				return json.Number(strconv.FormatInt(v, 10)), true
			}
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, true
			}
		case "!!null":
			return nil, true
		}
	}
	c.r.at(n, path, "want a JSON-like value, got %s", describeValue(n))
	return nil, false
}

var pathIndex = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// locate finds the node of a spec path ("selector.labelSelectors", "delay.latency",
// "expressionSelectors[0]") as far as it exists; keys match either case, since Chaos Mesh's
// webhooks name some fields by their Go names.
func locate(n *yaml.Node, path string) *yaml.Node {
	if path == "" {
		return n
	}
	for _, seg := range strings.Split(path, ".") {
		idx := -1
		if m := pathIndex.FindStringSubmatch(seg); m != nil {
			seg = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		next := child(resolve(n), seg)
		if next == nil {
			return n
		}
		n = resolve(next)
		if idx >= 0 && n.Kind == yaml.SequenceNode && idx < len(n.Content) {
			n = resolve(n.Content[idx])
		}
	}
	return n
}

// child returns the key node of key in mapping n (its place is the most useful to report),
// or its value when the path goes on. Here the value is returned; the caller reports it.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if strings.EqualFold(n.Content[i].Value, key) {
			return n.Content[i+1]
		}
	}
	return nil
}

// listOf returns a sequence's items, at most limit, aliases resolved.
func (c *compiler) listOf(n *yaml.Node, path string, limit int, what string) []*yaml.Node {
	items := n.Content
	if len(items) > limit {
		c.r.at(n, path, "%d %s, over the limit of %d", len(items), what, limit)
		items = items[:limit]
	}
	out := make([]*yaml.Node, len(items))
	for i, e := range items {
		out[i] = resolve(e)
	}
	return out
}

var labelPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)

// labels compiles a mapping of label keys to values, as Kubernetes spells labels.
func (c *compiler) labels(n *yaml.Node, path string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.r.at(n, path, "want a mapping of labels, like {unit: b, role: primary}, got %s", describe(n))
		return nil
	}
	if len(n.Content)/2 > LabelsMax {
		c.r.at(n, path, "%d labels, over the limit of %d", len(n.Content)/2, LabelsMax)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		key, ok1 := c.str(k, path, "a label key")
		val, ok2 := c.str(v, join(path, k.Value), "a label value (quote numbers)")
		switch {
		case !ok1 || !ok2:
		case !labelPattern.MatchString(key) || (val != "" && !labelPattern.MatchString(val)):
			c.r.at(k, join(path, key), "label %s=%s: want letters, digits, '.', '_', '-' (and '/' in keys), at most 63 bytes", key, val)
		default:
			out[key] = val
		}
	}
	return out
}

// processes compiles target.processes.
func (c *compiler) processes(fs []processFile) []Process {
	var out []Process
	seen := map[string]string{}
	for _, f := range fs {
		p := Process{}
		if f.name == nil {
			c.missing(f.node, join(f.path, "name"), "every process needs a name")
		} else {
			p.Name, _ = c.name(f.name, join(f.path, "name"))
		}
		if prev, dup := seen[p.Name]; dup && p.Name != "" {
			c.r.at(f.name, join(f.path, "name"), "duplicate process name %q (first at %s)", p.Name, prev)
		}
		seen[p.Name] = f.path
		switch {
		case (f.pid == nil) == (f.pidFile == nil):
			c.r.at(f.node, f.path, "set pid or pidFile, one of them")
		case f.pid != nil:
			v, ok := c.integer(f.pid, join(f.path, "pid"), 1, 1<<22)
			if ok && v == 1 {
				c.r.at(f.pid, join(f.path, "pid"), "pid 1 is init: a fault on it would stop or kill the whole machine, Redline included")
			}
			p.Pid = int(v)
		default:
			p.PidFile, _ = c.str(f.pidFile, join(f.path, "pidFile"), "a path")
		}
		p.Labels = c.labels(f.labels, join(f.path, "labels"))
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels["process"] = p.Name
		out = append(out, p)
	}
	return out
}

// Consumer groups of the built-in target, which ConsumerChaos selects by group.
var builtinGroups = []string{"ledger", "settlement", "notification"}

// StaticTargets lists what the plan's faults can select that is known before the run: the link
// to a URL target and the named processes; for the built-in target, its processes and groups
// as they start (unit replica r1 primary, r2 standby), its router's link, and the machine.
// The runner lists the live targets at each injection; dry runs and validation use these.
func (t Target) StaticTargets() []chaos.Target {
	var out []chaos.Target
	if t.Builtin != nil {
		out = append(out, builtinTargets(t.Builtin.Units)...)
	} else {
		labels := map[string]string{"role": "target"}
		if len(t.Labels) > 0 {
			labels = t.Labels
		}
		out = append(out, chaos.Target{Name: "link/target", Via: chaos.ViaProxy, Link: "target", Labels: labels})
	}
	for _, p := range t.Processes {
		out = append(out, chaos.Target{Name: "process/" + p.Name, Via: chaos.ViaProcess, Pid: p.Pid, PidFile: p.PidFile, Labels: p.Labels})
	}
	return out
}

func builtinTargets(units int) []chaos.Target {
	var out []chaos.Target
	proc := func(role, unit, replica, mode string) {
		labels := map[string]string{"process": role, "role": role}
		if unit != "" {
			labels["unit"], labels["replica"], labels["role"] = unit, replica, mode
		} else if replica != "" {
			labels["replica"] = replica
		}
		name := "builtin/" + role + "/" + dash(unit) + "/" + dash(replica)
		out = append(out, chaos.Target{Name: name, Via: chaos.ViaAdmin, Labels: labels})
	}
	for u := range units {
		unit := string(rune('a' + u))
		proc("unit", unit, "r1", "primary")
		proc("unit", unit, "r2", "standby")
	}
	for n := range 3 {
		proc("core", "", strconv.Itoa(n), "")
	}
	proc("router", "", "", "")
	out = append(out, chaos.Target{Name: "link/router", Via: chaos.ViaProxy, Link: "target", Labels: map[string]string{"role": "router"}})
	for _, g := range builtinGroups {
		out = append(out, chaos.Target{Name: "group/" + g, Via: chaos.ViaConsumer, Labels: map[string]string{"group": g}})
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// faultText is one line of a dry run: the fault, its window in the run and what it selects.
func faultText(f chaos.Fault, phaseStart time.Duration) string {
	window := fmt.Sprintf("%s +%s", phaseStart+f.At, f.Duration)
	if f.OneShot() {
		window = fmt.Sprintf("%s one-shot", phaseStart+f.At)
	}
	return fmt.Sprintf("%s\t%s\t%s %s\t%s", f.Name, window, f.Kind, f.Action, f.Selector)
}
