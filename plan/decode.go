package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/internal/nearest"
)

// The file structs mirror the YAML shape and hold its nodes, not their meaning: decoding
// checks keys and kinds only; compile parses every scalar, reporting at the node's place.
// They stay plain (no UnmarshalYAML) so that nothing escapes the strict walk.

type planFile struct {
	node       *yaml.Node
	apiVersion *yaml.Node
	kind       *yaml.Node
	metadata   *metadataFile
	target     *targetFile
	peak       *peakFile
	vars       *varsFile
	defaults   *defaultsFile
	sla        *slaFile
	phases     []phaseFile
	phasesNode *yaml.Node
	phasesKey  *yaml.Node
	abortWhen  *yaml.Node // a guard or a list of guards
}

type metadataFile struct{ node, name *yaml.Node }

type targetFile struct {
	node, url, labels *yaml.Node
	marker            *yaml.Node // target.marker: header, baggage or off
	builtin           *builtinFile
	processes         []processFile
}

// processFile is a local process the plan's faults may act on.
type processFile struct {
	node, name, pid, pidFile, labels *yaml.Node
	path                             string
}

type builtinFile struct{ node, units, accounts *yaml.Node }

type peakFile struct{ node, rate *yaml.Node }

type varsFile struct {
	node        *yaml.Node
	uid, amount *boundsFile
	uid2Stride  *yaml.Node // vars.uid2.stride
	// uid2OffStride is vars.uid2.offStride: the share of {{uid2}} off the stride.
	uid2OffStride *yaml.Node
	seed          *yaml.Node
}

type boundsFile struct{ node, min, max *yaml.Node }

type defaultsFile struct {
	node             *yaml.Node
	requests         *requestsFile
	workers, timeout *yaml.Node
}

type slaFile struct {
	node    *yaml.Node
	entries []slaEntry
}

// slaEntry is one key of the sla mapping and its list of thresholds.
type slaEntry struct {
	key, value *yaml.Node
	path       string
	thresholds []thresholdFile
}

// thresholdFile is a threshold written as a string (expr only) or as an object.
type thresholdFile struct {
	node, expr, abortOnFail, delayAbortEval *yaml.Node
	path                                    string
}

type phaseFile struct {
	node, name, judge, workers, timeout *yaml.Node
	path                                string
	load                                *loadFile
	requests                            *requestsFile
	faults                              []faultFile
	abortWhen                           *yaml.Node
	replay                              *yaml.Node // later work: reported as unsupported
	replayKey                           *yaml.Node
}

// faultFile is one fault of a phase; its spec is a Chaos Mesh spec, decoded by chaos/mesh.
type faultFile struct {
	node, name, at, duration, kind, spec *yaml.Node
	path                                 string
}

type loadFile struct {
	node, rate, duration, startRate *yaml.Node
	stages                          []stageFile
	stagesNode                      *yaml.Node
	spike                           *spikeFile
}

type stageFile struct{ node, target, duration *yaml.Node }

type spikeFile struct{ node, base, peak, rampUp, hold, decay *yaml.Node }

type requestsFile struct {
	node  *yaml.Node
	path  string
	items []requestFile
}

type requestFile struct {
	node, name, weight, method, pathNode, body *yaml.Node
	headers                                    *yaml.Node // a mapping; compiled key by key
	expectStatus                               *yaml.Node // a list of integers
	path                                       string
}

// decoder walks the YAML tree into file structs.
type decoder struct{ r *reporter }

// readYAML parses data into its root node: exactly one document, a mapping at the top.
func readYAML(r *reporter, data []byte) *yaml.Node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		r.at(nil, "", "empty plan file")
		return nil
	case err != nil:
		r.add(syntaxProblem(r.file, err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			r.add(syntaxProblem(r.file, err))
		} else {
			r.at(&extra, "", "a plan file holds one YAML document; found another")
		}
		return nil
	}
	if len(doc.Content) != 1 {
		r.at(&doc, "", "empty plan file")
		return nil
	}
	return doc.Content[0]
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem locates a yaml.v3 syntax error, which knows its line but not its column.
func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Message: "YAML syntax: " + m[2]}
	}
	return Problem{File: file, Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// measure counts the nodes of the tree with every alias expanded, and its depth, and refuses a
// tree over NodesMax or DepthMax before anything walks it for real.
func measure(r *reporter, root *yaml.Node) bool {
	visits := 0
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		visits++
		switch {
		case visits > NodesMax:
			r.at(n, "", "the document expands to more than %d YAML nodes (limit; aliases count each time they are used)", NodesMax)
			return false
		case depth > DepthMax:
			r.at(n, "", "YAML nested deeper than %d levels (limit)", DepthMax)
			return false
		case n.Kind == yaml.AliasNode:
			if n.Alias == nil {
				r.at(n, "", "YAML alias without an anchor")
				return false
			}
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if !walk(c, depth+1) {
				return false
			}
		}
		return true
	}
	return walk(root, 0)
}

// resolve follows an alias to its anchored node; measure has bounded the chains.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < DepthMax; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// describe names a node's kind for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing (null)"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "an unexpected node"
}

// isKind reports whether n has kind k, and reports a problem when not.
func (d *decoder) isKind(n *yaml.Node, path string, k yaml.Kind) bool {
	if n.Kind == k {
		return true
	}
	want := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a value"}[k]
	d.r.at(n, path, "want %s, got %s", want, describe(n))
	return false
}

// fields checks that n is a mapping whose keys are all in want, each once, and returns the
// values by key, aliases resolved. Keys also come back under "key:"+name, for places.
func (d *decoder) fields(n *yaml.Node, path string, want ...string) map[string]*yaml.Node {
	if !d.isKind(n, path, yaml.MappingNode) {
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		p := join(path, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			d.r.at(k, path, "want a plain key, got %s", describe(k))
		case k.ShortTag() == "!!merge":
			d.r.at(k, p, "merge keys (<<) are not supported: write the keys out")
		case out["key:"+k.Value] != nil:
			d.r.at(k, p, "duplicate key (first at line %d)", out["key:"+k.Value].Line)
		case !slices.Contains(want, k.Value):
			d.r.at(k, p, "unknown key (%s)", suggestKey(k.Value, want))
		default:
			out["key:"+k.Value], out[k.Value] = k, v
		}
	}
	return out
}

// suggestKey says "did you mean" for a near miss, else lists the keys wanted.
func suggestKey(got string, want []string) string {
	if near := nearest.Name(got, want); near != "" {
		return fmt.Sprintf("did you mean %s?", near)
	}
	return "want one of: " + strings.Join(want, ", ")
}

// list checks that n is a sequence of at most limit items and returns them, aliases resolved.
func (d *decoder) list(n *yaml.Node, path string, limit int, what string) []*yaml.Node {
	if !d.isKind(n, path, yaml.SequenceNode) {
		return nil
	}
	items := n.Content
	if len(items) > limit {
		d.r.at(n, path, "%d %s, over the limit of %d", len(items), what, limit)
		items = items[:limit]
	}
	out := make([]*yaml.Node, len(items))
	for i, c := range items {
		out[i] = resolve(c)
	}
	return out
}

func (d *decoder) file(root *yaml.Node) planFile {
	f := d.fields(root, "", "apiVersion", "kind", "metadata", "target", "peak", "vars", "defaults", "sla", "abortWhen", "phases")
	pf := planFile{node: root, apiVersion: f["apiVersion"], kind: f["kind"], phasesNode: f["phases"], phasesKey: f["key:phases"],
		abortWhen: f["abortWhen"]}
	if n := f["metadata"]; n != nil {
		m := d.fields(n, "metadata", "name")
		pf.metadata = &metadataFile{node: n, name: m["name"]}
	}
	if n := f["target"]; n != nil {
		pf.target = d.target(n)
	}
	if n := f["peak"]; n != nil {
		m := d.fields(n, "peak", "rate")
		pf.peak = &peakFile{node: n, rate: m["rate"]}
	}
	if n := f["vars"]; n != nil {
		pf.vars = d.vars(n)
	}
	if n := f["defaults"]; n != nil {
		m := d.fields(n, "defaults", "requests", "workers", "timeout")
		pf.defaults = &defaultsFile{node: n, workers: m["workers"], timeout: m["timeout"]}
		if r := m["requests"]; r != nil {
			pf.defaults.requests = d.requests(r, "defaults.requests")
		}
	}
	if n := f["sla"]; n != nil {
		pf.sla = d.sla(n)
	}
	if n := f["phases"]; n != nil {
		for i, p := range d.list(n, "phases", PhasesMax, "phases") {
			pf.phases = append(pf.phases, d.phase(p, index("phases", i)))
		}
	}
	return pf
}

func (d *decoder) target(n *yaml.Node) *targetFile {
	m := d.fields(n, "target", "url", "builtin", "labels", "processes", "marker")
	t := &targetFile{node: n, url: m["url"], labels: m["labels"], marker: m["marker"]}
	if ps := m["processes"]; ps != nil {
		for i, pn := range d.list(ps, "target.processes", ProcessesMax, "processes") {
			path := index("target.processes", i)
			pm := d.fields(pn, path, "name", "pid", "pidFile", "labels")
			t.processes = append(t.processes, processFile{node: pn, path: path, name: pm["name"], pid: pm["pid"],
				pidFile: pm["pidFile"], labels: pm["labels"]})
		}
	}
	if b := m["builtin"]; b != nil {
		// builtin: {} and a bare "builtin:" both mean every default.
		if b.ShortTag() == "!!null" {
			t.builtin = &builtinFile{node: b}
		} else {
			bm := d.fields(b, "target.builtin", "units", "accounts")
			t.builtin = &builtinFile{node: b, units: bm["units"], accounts: bm["accounts"]}
		}
	}
	return t
}

func (d *decoder) vars(n *yaml.Node) *varsFile {
	m := d.fields(n, "vars", "uid", "uid2", "amount", "seed")
	v := &varsFile{node: n, seed: m["seed"]}
	if u2 := m["uid2"]; u2 != nil {
		u2m := d.fields(u2, "vars.uid2", "stride", "offStride")
		v.uid2Stride, v.uid2OffStride = u2m["stride"], u2m["offStride"]
	}
	bounds := func(key string) *boundsFile {
		b := m[key]
		if b == nil {
			return nil
		}
		bm := d.fields(b, join("vars", key), "min", "max")
		return &boundsFile{node: b, min: bm["min"], max: bm["max"]}
	}
	v.uid, v.amount = bounds("uid"), bounds("amount")
	return v
}

func (d *decoder) sla(n *yaml.Node) *slaFile {
	s := &slaFile{node: n}
	if !d.isKind(n, "sla", yaml.MappingNode) {
		return s
	}
	seen := map[string]int{}
	total := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		e := slaEntry{key: k, value: v, path: join("sla", k.Value)}
		if line, dup := seen[k.Value]; dup {
			d.r.at(k, e.path, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.SequenceNode {
			d.r.at(v, e.path, "want a list of thresholds, like [\"p(99)<100\"], got %s", describe(v))
			continue
		}
		for j, item := range d.list(v, e.path, CriteriaMax, "thresholds") {
			total++
			if total > CriteriaMax {
				d.r.at(item, index(e.path, j), "more than %d thresholds in the sla (limit)", CriteriaMax)
				return s
			}
			e.thresholds = append(e.thresholds, d.threshold(item, index(e.path, j)))
		}
		s.entries = append(s.entries, e)
	}
	return s
}

// threshold decodes k6's two forms: "p(99)<100" or {threshold, abortOnFail, delayAbortEval}.
func (d *decoder) threshold(n *yaml.Node, path string) thresholdFile {
	if n.Kind == yaml.ScalarNode {
		return thresholdFile{node: n, expr: n, path: path}
	}
	m := d.fields(n, path, "threshold", "abortOnFail", "delayAbortEval")
	if m == nil {
		return thresholdFile{node: n, path: path}
	}
	return thresholdFile{node: n, expr: m["threshold"], abortOnFail: m["abortOnFail"],
		delayAbortEval: m["delayAbortEval"], path: path}
}

func (d *decoder) phase(n *yaml.Node, path string) phaseFile {
	m := d.fields(n, path, "name", "load", "requests", "judge", "workers", "timeout", "faults", "abortWhen", "replay")
	p := phaseFile{node: n, path: path, name: m["name"], judge: m["judge"], workers: m["workers"],
		timeout: m["timeout"], abortWhen: m["abortWhen"], replay: m["replay"], replayKey: m["key:replay"]}
	if fs := m["faults"]; fs != nil {
		for i, fn := range d.list(fs, join(path, "faults"), FaultsMax, "faults") {
			fp := index(join(path, "faults"), i)
			fm := d.fields(fn, fp, "name", "at", "duration", "kind", "spec")
			if fm == nil {
				continue
			}
			p.faults = append(p.faults, faultFile{node: fn, path: fp, name: fm["name"], at: fm["at"],
				duration: fm["duration"], kind: fm["kind"], spec: fm["spec"]})
		}
	}
	if l := m["load"]; l != nil {
		p.load = d.load(l, join(path, "load"))
	}
	if r := m["requests"]; r != nil {
		p.requests = d.requests(r, join(path, "requests"))
	}
	return p
}

func (d *decoder) load(n *yaml.Node, path string) *loadFile {
	m := d.fields(n, path, "rate", "duration", "startRate", "stages", "spike")
	l := &loadFile{node: n, rate: m["rate"], duration: m["duration"], startRate: m["startRate"], stagesNode: m["stages"]}
	if s := m["stages"]; s != nil {
		for i, st := range d.list(s, join(path, "stages"), StagesMax, "stages") {
			sm := d.fields(st, index(join(path, "stages"), i), "target", "duration")
			l.stages = append(l.stages, stageFile{node: st, target: sm["target"], duration: sm["duration"]})
		}
	}
	if s := m["spike"]; s != nil {
		sm := d.fields(s, join(path, "spike"), "base", "peak", "rampUp", "hold", "decay")
		l.spike = &spikeFile{node: s, base: sm["base"], peak: sm["peak"], rampUp: sm["rampUp"], hold: sm["hold"], decay: sm["decay"]}
	}
	return l
}

func (d *decoder) requests(n *yaml.Node, path string) *requestsFile {
	rf := &requestsFile{node: n, path: path}
	for i, r := range d.list(n, path, RequestsMax, "requests") {
		p := index(path, i)
		m := d.fields(r, p, "name", "weight", "method", "path", "headers", "body", "expectStatus")
		if m == nil {
			continue
		}
		rf.items = append(rf.items, requestFile{node: r, path: p, name: m["name"], weight: m["weight"],
			method: m["method"], pathNode: m["path"], body: m["body"], headers: m["headers"],
			expectStatus: m["expectStatus"]})
	}
	return rf
}
