package plan

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/verify"
)

// Profile shapes, as the plan wrote them.
const (
	ShapeConstant = "constant"
	ShapeRamp     = "ramp"
	ShapeSpike    = "spike"
)

func (c *compiler) phases(f planFile, vars load.Vars, def defaults) []Phase {
	switch {
	case f.phasesNode == nil:
		c.missing(f.node, "phases", "want a list of phases")
		return nil
	case f.phasesNode.Kind == yaml.SequenceNode && len(f.phases) == 0:
		c.r.at(f.phasesNode, "phases", "want at least one phase")
		return nil
	}
	var out []Phase
	first := map[string]string{} // name → path of its first phase
	var start time.Duration
	judged, judgeKnown := 0, true
	for _, pf := range f.phases {
		ph, ok := c.phase(pf, vars, def)
		if ph.Name != "" {
			if prev, dup := first[ph.Name]; dup {
				c.r.at(pf.name, join(pf.path, "name"), "duplicate phase name %q (first at %s)", ph.Name, prev)
			} else {
				first[ph.Name] = pf.path
			}
		}
		if ph.Judge.Judged() {
			judged++
		}
		judgeKnown = judgeKnown && ok
		ph.Start = start
		start += ph.Duration
		out = append(out, ph)
	}
	if start > PlanDurationMax {
		c.r.at(f.phasesKey, "phases", "the phases last %s, over the limit of %s", start, PlanDurationMax)
	}
	if judged == 0 && judgeKnown && len(out) > 0 {
		c.r.at(f.phasesKey, "phases", "no phase is judged: set judge: true (or headroom) on at least one")
	}
	return out
}

// phase compiles one phase; ok is false when its judge mode could not be read.
func (c *compiler) phase(f phaseFile, vars load.Vars, def defaults) (Phase, bool) {
	ph := Phase{Judge: verify.JudgeSLA}
	if f.name == nil {
		c.missing(f.node, join(f.path, "name"), "every phase needs a name")
	} else {
		ph.Name, _ = c.name(f.name, join(f.path, "name"))
	}
	judgeOK := true
	if f.judge != nil {
		ph.Judge, judgeOK = c.judge(f.judge, join(f.path, "judge"))
	}
	if f.replay != nil {
		c.r.at(f.replayKey, join(f.path, "replay"), "replay is not supported in this build yet (shadow traffic comes later); remove it to run this plan")
	}
	cfg := &load.Config{Phase: ph.Name, Vars: vars, Workers: def.workers, Timeout: def.timeout}
	switch {
	case f.load != nil:
		cfg.Profile, ph.Shape, _ = c.profile(f.load, join(f.path, "load"))
		ph.Duration = cfg.Profile.Duration()
	case f.replay == nil:
		c.missing(f.node, join(f.path, "load"), "want load: {rate, duration}, {stages} or {spike}")
	}
	c.phaseRequests(f, def, cfg, ph.Name)
	if f.workers != nil {
		w, _ := c.integer(f.workers, join(f.path, "workers"), 1, WorkersMax)
		cfg.Workers = int(w)
	}
	if cfg.Workers == 0 {
		cfg.Workers = defaultWorkers(cfg.Profile.PeakRPS())
	}
	if f.timeout != nil {
		cfg.Timeout, _ = c.duration(f.timeout, join(f.path, "timeout"), positive, TimeoutMax)
	}
	cfg.GracePeriod = cfg.Timeout // in-flight requests may finish within their own timeout
	ph.Load = cfg
	ph.Faults = c.faults(f, ph)
	ph.AbortWhen = append(slices.Clone(c.guards), c.abortWhen(f.abortWhen, join(f.path, "abortWhen"), ph.Name)...)
	return ph, judgeOK
}

// phaseRequests sets the phase's request mix: its own, else the defaults'.
func (c *compiler) phaseRequests(f phaseFile, def defaults, cfg *load.Config, name string) {
	switch {
	case f.requests != nil:
		var bad bool
		var ops []string
		cfg.Requests, ops, bad = c.mix(f.requests)
		if !bad && name != "" {
			c.ops[name] = ops
		}
	case def.requests != nil || def.bad:
		cfg.Requests = def.requests
		if !def.bad && name != "" {
			c.ops[name] = def.ops
		}
	case f.load != nil:
		c.missing(f.node, join(f.path, "requests"), "set requests here or in defaults.requests")
	}
}

// defaultWorkers bounds in-flight requests by Little's law at the phase's peak rate.
func defaultWorkers(peakRPS float64) int {
	w := math.Ceil(peakRPS * workersLatencyDefault.Seconds())
	return int(min(max(w, workersMinDefault), WorkersMax))
}

func (c *compiler) judge(n *yaml.Node, path string) (verify.JudgeMode, bool) {
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.ShortTag() == "!!bool" && n.Value == "true":
			return verify.JudgeSLA, true
		case n.ShortTag() == "!!bool" && n.Value == "false":
			return verify.JudgeOff, true
		case n.ShortTag() == "!!str" && n.Value == "headroom":
			if c.peakRPS == 0 && !c.peakBad {
				c.r.at(n, path, "judge: headroom needs peak.rate, the rate the headroom is measured against")
			}
			return verify.JudgeHeadroom, true
		}
	}
	c.r.at(n, path, "want true, false or headroom, got %s", describeValue(n))
	return verify.JudgeOff, false
}

// describeValue is describe with a short scalar's text: a string "x", an integer 3.
func describeValue(n *yaml.Node) string {
	switch {
	case n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || len(n.Value) > 32:
		return describe(n)
	case n.ShortTag() == "!!str":
		return fmt.Sprintf("%s %q", describe(n), n.Value)
	}
	return describe(n) + " " + n.Value
}

// profile compiles the three forms of load: rate and duration, stages, or spike.
func (c *compiler) profile(l *loadFile, path string) (load.Profile, string, bool) {
	constant := l.rate != nil || l.duration != nil
	ramp := l.stagesNode != nil || l.startRate != nil
	spike := l.spike != nil
	forms := 0
	for _, f := range []bool{constant, ramp, spike} {
		if f {
			forms++
		}
	}
	switch {
	case forms == 0:
		c.r.at(l.node, path, "want rate and duration, stages (with startRate), or spike")
		return load.Profile{}, "", false
	case forms > 1:
		c.r.at(l.node, path, "choose one form: rate and duration, stages (with startRate), or spike")
		return load.Profile{}, "", false
	case constant:
		p, ok := c.constant(l, path)
		return p, ShapeConstant, ok && c.checkArrivals(p, l.node, path)
	case ramp:
		p, ok := c.ramp(l, path)
		return p, ShapeRamp, ok && c.checkArrivals(p, l.node, path)
	}
	p, ok := c.spike(l.spike, join(path, "spike"))
	return p, ShapeSpike, ok && c.checkArrivals(p, l.node, path)
}

// checkArrivals refuses a profile that asks for less than one request: such a phase could
// only ever be judged on no data, or on a request it did not ask for.
func (c *compiler) checkArrivals(p load.Profile, n *yaml.Node, path string) bool {
	if a := arrivals(p); a < 1 {
		c.r.at(n, path, "the load asks for %.3g requests in %s; want at least one (a higher rate or a longer phase)", a, p.Duration())
		return false
	}
	return true
}

func (c *compiler) constant(l *loadFile, path string) (load.Profile, bool) {
	rate, d, ok := 0.0, time.Duration(0), true
	if l.rate == nil {
		c.missing(l.node, join(path, "rate"), "want a rate like 2000/s or 110%%")
		ok = false
	} else {
		var rok bool
		rate, rok = c.rate(l.rate, join(path, "rate"), false)
		ok = ok && rok
	}
	if l.duration == nil {
		c.missing(l.node, join(path, "duration"), "want a duration like 60s")
		ok = false
	} else {
		var dok bool
		d, dok = c.duration(l.duration, join(path, "duration"), positive, PhaseDurationMax)
		ok = ok && dok
	}
	return load.Constant(rate, d), ok
}

func (c *compiler) ramp(l *loadFile, path string) (load.Profile, bool) {
	p, ok := load.Profile{}, true
	if l.startRate != nil {
		p.StartRPS, ok = c.rate(l.startRate, join(path, "startRate"), true)
	}
	if l.stagesNode == nil {
		c.missing(l.node, join(path, "stages"), "want stages: [{target: 2000/s, duration: 30s}, ...]")
		return p, false
	}
	if l.stagesNode.Kind == yaml.SequenceNode && len(l.stages) == 0 {
		c.r.at(l.stagesNode, join(path, "stages"), "want at least one stage")
		return p, false
	}
	for i, s := range l.stages {
		sp := index(join(path, "stages"), i)
		st := load.Stage{}
		if s.target == nil {
			c.missing(s.node, join(sp, "target"), "want a rate like 2000/s or 110%%")
			ok = false
		} else if v, vok := c.rate(s.target, join(sp, "target"), true); vok {
			st.TargetRPS = v
		} else {
			ok = false
		}
		if s.duration == nil {
			c.missing(s.node, join(sp, "duration"), "want a duration like 30s")
			ok = false
		} else if d, dok := c.duration(s.duration, join(sp, "duration"), 0, PhaseDurationMax); dok {
			st.Duration = d
		} else {
			ok = false
		}
		p.Stages = append(p.Stages, st)
	}
	return p, ok && c.checkProfile(p, l.node, path)
}

// checkProfile refuses a profile that never sends or lasts too long or nothing.
func (c *compiler) checkProfile(p load.Profile, n *yaml.Node, path string) bool {
	switch d := p.Duration(); {
	case d <= 0:
		c.r.at(n, path, "the stages last 0s; want a positive total duration")
		return false
	case d > PhaseDurationMax:
		c.r.at(n, path, "the stages last %s, over the limit of %s", d, PhaseDurationMax)
		return false
	case p.PeakRPS() <= 0:
		c.r.at(n, path, "the rate never rises above 0/s")
		return false
	}
	return true
}

func (c *compiler) spike(s *spikeFile, path string) (load.Profile, bool) {
	ok := true
	rateOf := func(n *yaml.Node, key string, zeroOK bool) float64 {
		if n == nil {
			c.missing(s.node, join(path, key), "want a rate like 2000/s or 300%%")
			ok = false
			return 0
		}
		v, vok := c.rate(n, join(path, key), zeroOK)
		ok = ok && vok
		return v
	}
	durationOf := func(n *yaml.Node, key string) time.Duration {
		if n == nil {
			c.missing(s.node, join(path, key), "want a duration like 30s")
			ok = false
			return 0
		}
		d, dok := c.duration(n, join(path, key), 0, PhaseDurationMax)
		ok = ok && dok
		return d
	}
	base, peak := rateOf(s.base, "base", true), rateOf(s.peak, "peak", false)
	up, hold, decay := durationOf(s.rampUp, "rampUp"), durationOf(s.hold, "hold"), durationOf(s.decay, "decay")
	if ok && peak <= base {
		c.r.at(s.peak, join(path, "peak"), "peak %s/s must be above base %s/s", formatRate(peak), formatRate(base))
		ok = false
	}
	p := load.Spike(base, peak, up, hold, decay)
	return p, ok && c.checkProfile(p, s.node, path)
}

// mix compiles a request mix; ops are the request names; bad reports problems.
func (c *compiler) mix(f *requestsFile) (reqs []load.Request, ops []string, bad bool) {
	before := c.r.count()
	if f.node.Kind == yaml.SequenceNode && len(f.items) == 0 && len(f.node.Content) == 0 {
		c.r.at(f.node, f.path, "want at least one request")
	}
	first := map[string]string{}
	for _, rf := range f.items {
		r := c.request(rf)
		if r.Name != "" {
			if prev, dup := first[r.Name]; dup {
				c.r.at(rf.name, join(rf.path, "name"), "duplicate request name %q (first at %s)", r.Name, prev)
			} else {
				first[r.Name] = rf.path
			}
		}
		reqs = append(reqs, r)
		ops = append(ops, r.Name)
	}
	return reqs, ops, c.r.count() > before || len(reqs) == 0
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func (c *compiler) request(f requestFile) load.Request {
	r := load.Request{Weight: 1, Method: http.MethodGet}
	if f.name == nil {
		c.missing(f.node, join(f.path, "name"), "every request needs a name (its op in metrics)")
	} else {
		r.Name, _ = c.name(f.name, join(f.path, "name"))
	}
	if f.weight != nil {
		w, _ := c.integer(f.weight, join(f.path, "weight"), 1, WeightMax)
		r.Weight = int(w)
	}
	if f.method != nil {
		if m, ok := c.str(f.method, join(f.path, "method"), "an HTTP method"); ok {
			if !slices.Contains(methods, m) {
				c.r.at(f.method, join(f.path, "method"), "unknown method %q (want one of: %s)", m, strings.Join(methods, ", "))
			}
			r.Method = m
		}
	}
	if f.pathNode == nil {
		c.missing(f.node, join(f.path, "path"), "want a path like /pay, relative to the target URL")
	} else {
		r.URL = c.requestPath(f.pathNode, join(f.path, "path"))
	}
	if f.headers != nil {
		r.Header = c.headers(f.headers, join(f.path, "headers"))
		if msg := markerConflict(c.planTarget.Marker, r.Header); msg != "" {
			c.r.at(f.headers, join(f.path, "headers"), "%s", msg)
		}
	}
	if f.body != nil {
		r.Body = c.text(f.body, join(f.path, "body"), BodyBytesMax)
	}
	if f.expectStatus != nil {
		r.ExpectStatus = c.statuses(f.expectStatus, join(f.path, "expectStatus"))
	}
	return r
}

// requestPath checks a path relative to the target URL; the URL is joined when the plan is used.
func (c *compiler) requestPath(n *yaml.Node, path string) string {
	s, ok := c.str(n, path, "a path like /pay")
	switch {
	case !ok:
		return ""
	case len(s) > PathBytesMax:
		c.r.at(n, path, "path longer than %d bytes (limit)", PathBytesMax)
	case !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//"):
		c.r.at(n, path, "want a path starting with /, relative to the target URL, got %q", s)
	case strings.ContainsAny(s, " \t\r\n#"):
		c.r.at(n, path, "path %q has whitespace or a fragment", s)
	default:
		if msg := checkTemplates(s); msg != "" {
			c.r.at(n, path, "%s", msg)
		}
	}
	c.usesUID2 = c.usesUID2 || strings.Contains(s, "{{uid2}}")
	return s
}

// text returns a templated string of at most limit bytes.
func (c *compiler) text(n *yaml.Node, path string, limit int) string {
	s, ok := c.str(n, path, "a string")
	switch {
	case !ok:
		return ""
	case len(s) > limit:
		c.r.at(n, path, "%d bytes, over the limit of %d", len(s), limit)
		return ""
	}
	if msg := checkTemplates(s); msg != "" {
		c.r.at(n, path, "%s", msg)
	}
	c.usesUID2 = c.usesUID2 || strings.Contains(s, "{{uid2}}")
	return s
}

func (c *compiler) headers(n *yaml.Node, path string) http.Header {
	if n.Kind != yaml.MappingNode {
		c.r.at(n, path, "want a mapping of header names to values, got %s", describe(n))
		return nil
	}
	if len(n.Content)/2 > HeadersMax {
		c.r.at(n, path, "%d headers, over the limit of %d", len(n.Content)/2, HeadersMax)
		return nil
	}
	h := http.Header{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		p := join(path, k.Value)
		name, ok := c.str(k, path, "a header name")
		if !ok {
			continue
		}
		if !validHeaderName(name) {
			c.r.at(k, p, "invalid header name %q", name)
			continue
		}
		if _, dup := h[http.CanonicalHeaderKey(name)]; dup {
			c.r.at(k, p, "duplicate header")
			continue
		}
		value := c.text(v, p, HeaderBytesMax)
		if strings.ContainsAny(value, "\r\n\x00") {
			c.r.at(v, p, "header value has a line break or NUL")
		}
		h.Set(name, value)
	}
	return h
}

// validHeaderName checks RFC 9110's token characters.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 126 || r <= 32 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func (c *compiler) statuses(n *yaml.Node, path string) []int {
	if n.Kind != yaml.SequenceNode {
		c.r.at(n, path, "want a list of statuses, like [200, 201], got %s", describe(n))
		return nil
	}
	if len(n.Content) > ExpectStatusMax {
		c.r.at(n, path, "%d statuses, over the limit of %d", len(n.Content), ExpectStatusMax)
		return nil
	}
	if len(n.Content) == 0 {
		c.r.at(n, path, "an empty list; name the statuses that count as success, or leave expectStatus out (200..399)")
		return nil
	}
	var out []int
	for i, s := range n.Content {
		if v, ok := c.integer(resolve(s), index(path, i), 100, 599); ok {
			out = append(out, int(v))
		}
	}
	return out
}

// templateVars are the names load.Vars fills in request templates.
var templateVars = []string{"uid", "uid2", "uuid", "seq", "amount", "run"}

// checkTemplates returns why s's {{...}} placeholders are wrong, or "".
func checkTemplates(s string) string {
	for rest := s; ; {
		open := strings.Index(rest, "{{")
		if open < 0 {
			return ""
		}
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return "unclosed {{ in template"
		}
		name := rest[open+2 : open+end]
		if !slices.Contains(templateVars, name) {
			return fmt.Sprintf("unknown template variable {{%s}} (want {{%s}})", name, strings.Join(templateVars, "}}, {{"))
		}
		rest = rest[open+end+2:]
	}
}
