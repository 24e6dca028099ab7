package plan

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/verify"
)

// The file format's fixed words.
const (
	apiVersion = "redline/v1"
	kind       = "Rehearsal"
)

// compiler turns file structs into a Plan, parsing every scalar and reporting every problem at
// the node that holds it. It keeps going after a problem so that one run reports them all.
type compiler struct {
	r        *reporter
	opts     Options
	peakRPS  float64
	peakBad  bool // peak.rate was given but is wrong: relative rates are not checked again
	usesUID2 bool // some template has {{uid2}}, which must differ from {{uid}}
	// ops lists each compiled phase's request names, for checking sla op tags; a phase whose
	// requests had problems is absent, so that one mistake is not reported twice.
	ops map[string][]string
	// guards are the plan's abortWhen, which every phase inherits; guardEntries every guard
	// compiled, the plan's and the phases', for checkGuards.
	guards       []verify.Guard
	guardEntries []guardEntry
	// faultNames maps each fault's name to its path, for duplicates; target is the compiled
	// target, whose static inventory faults are checked against.
	faultNames map[string]string
	planTarget Target
}

func (c *compiler) plan(f planFile) *Plan {
	c.ops = map[string][]string{}
	p := &Plan{}
	c.header(f)
	if f.metadata == nil {
		c.missing(f.node, "metadata", "want metadata: {name: ...}")
	} else if f.metadata.name == nil {
		c.missing(f.metadata.node, "metadata.name", "every plan needs a name")
	} else {
		p.name, _ = c.name(f.metadata.name, "metadata.name")
	}
	p.target = c.target(f)
	c.planTarget = p.target
	c.faultNames = map[string]string{}
	c.guards = c.abortWhen(f.abortWhen, "abortWhen", "")
	p.peakRPS = c.peak(f)
	vars := c.vars(f.vars, p.target)
	def := c.defaults(f.defaults)
	p.phases = c.phases(f, vars, def)
	p.criteria = c.sla(f.sla, p.phases)
	c.checkGuards(p.phases)
	c.checkUID2(f, vars)
	return p
}

// checkUID2 refuses {{uid2}} when only one uid exists: the generator could never draw a second.
func (c *compiler) checkUID2(f planFile, v load.Vars) {
	if !c.usesUID2 || v.UIDMin != v.UIDMax {
		return
	}
	n, path := f.node, "vars.uid"
	switch {
	case f.vars != nil && f.vars.uid != nil:
		n = f.vars.uid.node
	case f.target != nil && f.target.builtin != nil && f.target.builtin.accounts != nil:
		n, path = f.target.builtin.accounts, "target.builtin.accounts"
	}
	c.r.at(n, path, "{{uid2}} needs two uids at least, got %d..%d", v.UIDMin, v.UIDMax)
}

func (c *compiler) header(f planFile) {
	for _, h := range []struct {
		n          *yaml.Node
		key, value string
	}{{f.apiVersion, "apiVersion", apiVersion}, {f.kind, "kind", kind}} {
		if h.n == nil {
			c.missing(f.node, h.key, "want %s: %s", h.key, h.value)
			continue
		}
		if s, ok := c.str(h.n, h.key, h.value); ok && s != h.value {
			c.r.at(h.n, h.key, "want %s, got %q", h.value, s)
		}
	}
}

// missing reports a required key absent from parent, unless parent is not even a mapping (that
// was reported already).
func (c *compiler) missing(parent *yaml.Node, path, format string, args ...any) {
	if parent.Kind == yaml.MappingNode {
		c.r.at(parent, path, "missing; "+format, args...)
	}
}

// str returns a string scalar; what names the value wanted, for the message.
func (c *compiler) str(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		c.r.at(n, path, "want %s, got %s", what, describeValue(n))
		return "", false
	}
	return n.Value, true
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// name returns a name fit for paths, tags and file names.
func (c *compiler) name(n *yaml.Node, path string) (string, bool) {
	s, ok := c.str(n, path, "a name")
	switch {
	case !ok:
		return "", false
	case len(s) > NameBytesMax:
		c.r.at(n, path, "name longer than %d bytes (limit)", NameBytesMax)
		return "", false
	case !namePattern.MatchString(s):
		c.r.at(n, path, "name %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", s)
		return "", false
	}
	return s, true
}

// integer returns an integer scalar in [lo, hi].
func (c *compiler) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		c.r.at(n, path, "want an integer, got %s", describeValue(n))
		return 0, false
	}
	if v < lo || v > hi {
		c.r.at(n, path, "%d is out of range [%d, %d]", v, lo, hi)
		return 0, false
	}
	return v, true
}

func (c *compiler) boolean(n *yaml.Node, path string) (bool, bool) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		c.r.at(n, path, "want true or false, got %s", describeValue(n))
		return false, false
	}
	return v, true
}

// duration returns a duration scalar in [lo, hi], written as Go writes them: 30s, 1m30s, 250ms.
// lo is 0 or positive.
func (c *compiler) duration(n *yaml.Node, path string, lo, hi time.Duration) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		c.r.at(n, path, "want a duration with a unit, like 30s or 2m, got the number %s", n.Value)
		return 0, false
	}
	s, ok := c.str(n, path, "a duration, like 30s or 2m")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.r.at(n, path, "want a duration, like 30s, 2m or 1m30s, got %q", s)
		return 0, false
	case d < 0:
		c.r.at(n, path, "duration must not be negative, got %s", s)
		return 0, false
	case d < lo:
		c.r.at(n, path, "duration must be positive, got %s", s)
		return 0, false
	case d > hi:
		c.r.at(n, path, "duration %s is over the limit of %s", s, hi)
		return 0, false
	}
	return d, true
}

// positive is the lower bound of durations that must be more than zero.
const positive = time.Duration(1)

// rate returns a rate scalar in arrivals per second:
//
//	rate     = number "/" ( "s" | "m" | "h" )   ; per second, minute, hour: 2000/s, 120/m
//	         | number "%"                       ; of peak.rate: 110%
//
// A zero rate is refused unless zeroOK (the start or end of a ramp).
func (c *compiler) rate(n *yaml.Node, path string, zeroOK bool) (float64, bool) {
	const want = "want a rate like 2000/s, 120/m or 110% (of peak.rate)"
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		c.r.at(n, path, "%s, got %s", want, describeValue(n))
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	v, relative, ok := parseRate(s)
	switch {
	case !ok:
		c.r.at(n, path, "%s, got %q", want, s)
		return 0, false
	case v < 0 || (v == 0 && !zeroOK):
		c.r.at(n, path, "rate must be positive, got %s", s)
		return 0, false
	case relative && v > RatePercentMax:
		c.r.at(n, path, "%s is over the limit of %d%% of peak.rate", s, RatePercentMax)
		return 0, false
	case relative && c.peakBad:
		return 0, false
	case relative && c.peakRPS == 0:
		c.r.at(n, path, "relative rate %s needs peak.rate", s)
		return 0, false
	case relative:
		v = v / 100 * c.peakRPS
	}
	switch {
	case v > RateRPSMax && relative:
		c.r.at(n, path, "rate %s is %s/s, over the limit of %d/s", s, formatRate(v), RateRPSMax)
		return 0, false
	case v > RateRPSMax:
		c.r.at(n, path, "rate %s is over the limit of %d/s", s, RateRPSMax)
		return 0, false
	}
	return v, true
}

// parseRate parses the rate grammar; relative rates come back in percent.
func parseRate(s string) (v float64, relative, ok bool) {
	num, per := s, 0.0
	switch {
	case strings.HasSuffix(s, "%"):
		num, relative = strings.TrimSuffix(s, "%"), true
	case strings.HasSuffix(s, "/s"):
		num, per = strings.TrimSuffix(s, "/s"), 1
	case strings.HasSuffix(s, "/m"):
		num, per = strings.TrimSuffix(s, "/m"), 60
	case strings.HasSuffix(s, "/h"):
		num, per = strings.TrimSuffix(s, "/h"), 3600
	default:
		return 0, false, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(num, "xXpP_ \t") || num == "" {
		return 0, false, false
	}
	if relative {
		return v, true, true
	}
	return v / per, false, true
}

func (c *compiler) target(f planFile) Target {
	var t Target
	switch tf := f.target; {
	case tf == nil && c.opts.TargetURL == "" && c.opts.RanAt == "":
		c.missing(f.node, "target", "want target: {url: ...} or target: {builtin: {...}}")
	case tf == nil:
		t.URL = strings.TrimRight(c.opts.RanAt, "/") // "" under --target-url, set below
	case tf.url != nil && tf.builtin != nil:
		c.r.at(tf.node, "target", "set url or builtin, not both")
	case tf.url != nil:
		if u, ok := c.str(tf.url, "target.url", "a URL"); ok {
			if msg := checkTargetURL(u); msg != "" {
				c.r.at(tf.url, "target.url", "%s", msg)
			}
			t.URL = strings.TrimRight(u, "/")
		}
	case tf.builtin != nil:
		t.Builtin = c.builtin(tf.builtin)
	default:
		c.r.at(tf.node, "target", "want url or builtin")
	}
	if tf := f.target; tf != nil {
		t.Labels = c.labels(tf.labels, "target.labels")
		t.Processes = c.processes(tf.processes)
		t.Marker = c.marker(tf.marker)
	}
	if t.Marker == "" {
		t.Marker = MarkerHeader
	}
	if u := c.opts.TargetURL; u != "" {
		if msg := checkTargetURL(u); msg != "" {
			c.r.at(nil, "--target-url", "%s", msg)
		}
		t.URL, t.Builtin = strings.TrimRight(u, "/"), nil
	}
	return t
}

func (c *compiler) builtin(b *builtinFile) *Builtin {
	out := &Builtin{Units: unitsDefault, Accounts: accountsDefault}
	if b.units != nil {
		v, _ := c.integer(b.units, "target.builtin.units", 1, UnitsMax)
		out.Units = int(v)
	}
	if b.accounts != nil {
		out.Accounts, _ = c.integer(b.accounts, "target.builtin.accounts", 1, AccountsMax)
	}
	return out
}

func (c *compiler) peak(f planFile) float64 {
	switch {
	case f.peak == nil:
		return 0
	case f.peak.rate == nil:
		c.missing(f.peak.node, "peak.rate", "want peak: {rate: 2000/s}")
		c.peakBad = true
		return 0
	}
	if s := strings.TrimSpace(f.peak.rate.Value); strings.HasSuffix(s, "%") {
		c.r.at(f.peak.rate, "peak.rate", "peak.rate must be absolute, like 2000/s, got %q", s)
		c.peakBad = true
		return 0
	}
	v, ok := c.rate(f.peak.rate, "peak.rate", false)
	c.peakRPS, c.peakBad = v, !ok
	return v
}

func (c *compiler) vars(f *varsFile, t Target) load.Vars {
	v := load.Vars{UIDMin: uidMinDefault, UIDMax: uidMaxDefault, AmountMinorMin: amountMinorMinDefault, AmountMinorMax: amountMinorMaxDefault}
	uidMax := int64(UIDMax)
	if t.Builtin != nil {
		v.UIDMax, uidMax = t.Builtin.Accounts, t.Builtin.Accounts
	}
	if f == nil {
		return v
	}
	v.UIDMin, v.UIDMax = c.bounds(f.uid, "vars.uid", v.UIDMin, v.UIDMax, 0, uidMax)
	v.AmountMinorMin, v.AmountMinorMax = c.bounds(f.amount, "vars.amount", v.AmountMinorMin, v.AmountMinorMax, 1, AmountMinorMax)
	if f.seed != nil {
		v.Seed, _ = c.integer(f.seed, "vars.seed", math.MinInt64, math.MaxInt64)
	}
	if n := f.uid2Stride; n != nil {
		stride, ok := c.integer(n, "vars.uid2.stride", 1, uidMax)
		if ok && (v.UIDMax-v.UIDMin+1)/2 < stride {
			c.r.at(n, "vars.uid2.stride", "a stride of %d needs at least %d uids, the range has %d..%d", stride, 2*stride, v.UIDMin, v.UIDMax)
		}
		v.UID2Stride = stride
	}
	if n := f.uid2OffStride; n != nil {
		v.UID2OffStride = c.share(n, "vars.uid2.offStride")
		if v.UID2Stride <= 1 {
			c.r.at(n, "vars.uid2.offStride", "a share off the stride needs vars.uid2.stride over 1")
		}
	}
	return v
}

// share returns a percentage ("20%") as a fraction in [0, 1].
func (c *compiler) share(n *yaml.Node, path string) float64 {
	s, ok := c.str(n, path, `a percentage such as "20%"`)
	if !ok {
		return 0
	}
	num, isPercent := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(num, 64)
	if !isPercent || err != nil || !(v >= 0 && v <= 100) {
		c.r.at(n, path, "%q: want a percentage from 0%% to 100%%", s)
		return 0
	}
	return v / 100
}

// bounds compiles {min, max} within [lo, hi], each defaulting to the given value.
func (c *compiler) bounds(b *boundsFile, path string, dmin, dmax, lo, hi int64) (int64, int64) {
	if b == nil {
		return dmin, dmax
	}
	mn, mx := dmin, dmax
	okMin, okMax := true, true
	if b.min != nil {
		mn, okMin = c.integer(b.min, join(path, "min"), lo, hi)
	}
	if b.max != nil {
		mx, okMax = c.integer(b.max, join(path, "max"), lo, hi)
	}
	if okMin && okMax && mn > mx {
		c.r.at(b.node, path, "min %d is above max %d", mn, mx)
	}
	return mn, mx
}

// defaults is what phases inherit.
type defaults struct {
	requests []load.Request
	ops      []string
	bad      bool // defaults.requests had problems
	workers  int
	timeout  time.Duration
}

func (c *compiler) defaults(f *defaultsFile) defaults {
	d := defaults{timeout: timeoutDefault}
	if f == nil {
		return d
	}
	if f.requests != nil {
		d.requests, d.ops, d.bad = c.mix(f.requests)
	}
	if f.workers != nil {
		w, _ := c.integer(f.workers, "defaults.workers", 1, WorkersMax)
		d.workers = int(w)
	}
	if f.timeout != nil {
		d.timeout, _ = c.duration(f.timeout, "defaults.timeout", positive, TimeoutMax)
	}
	return d
}
