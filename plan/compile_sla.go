package plan

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/verify"
)

// sla compiles the thresholds into criteria and checks their tags against the phases.
func (c *compiler) sla(f *slaFile, phases []Phase) []verify.Criterion {
	if f == nil {
		return nil
	}
	var out []verify.Criterion
	for _, e := range f.entries {
		key, err := verify.ParseKey(e.key.Value)
		if err != nil {
			c.r.at(e.key, e.path, "%s", err)
			continue
		}
		keyOK := c.targetReports(key.Metric, e.key, e.path) && c.scope(key, e, phases)
		for _, t := range e.thresholds {
			cr, ok := c.criterion(key, t)
			if ok && keyOK {
				out = append(out, cr)
			}
		}
	}
	return out
}

// scope checks a key's phase and op tags against the phases they name.
func (c *compiler) scope(key verify.Key, e slaEntry, phases []Phase) bool {
	if key.Phase != "" {
		i := slices.IndexFunc(phases, func(p Phase) bool { return p.Name == key.Phase })
		switch {
		case i < 0:
			c.r.at(e.key, e.path, "unknown phase %q (want one of: %s)", key.Phase, phaseNames(phases))
			return false
		case !phases[i].Judge.Judged():
			c.r.at(e.key, e.path, "phase %q is not judged (judge: false): its thresholds would never be checked", key.Phase)
			return false
		}
	}
	if key.Op == "" {
		return true
	}
	for _, p := range phases {
		ops, known := c.ops[p.Name]
		if !known || !p.Judge.Judged() || (key.Phase != "" && key.Phase != p.Name) {
			continue
		}
		if !slices.Contains(ops, key.Op) {
			c.r.at(e.key, e.path, "op %q is not a request of judged phase %q (its requests: %s)", key.Op, p.Name, strings.Join(ops, ", "))
			return false
		}
	}
	return true
}

func phaseNames(phases []Phase) string {
	var names []string
	for _, p := range phases {
		if p.Name != "" {
			names = append(names, p.Name)
		}
	}
	return strings.Join(names, ", ")
}

// criterion compiles one threshold, in either of its forms.
func (c *compiler) criterion(key verify.Key, t thresholdFile) (verify.Criterion, bool) {
	if t.expr == nil {
		if t.node.Kind == yaml.MappingNode {
			c.missing(t.node, join(t.path, "threshold"), "want threshold: \"p(99)<100\"")
		}
		return verify.Criterion{}, false
	}
	exprPath := t.path
	if t.expr != t.node {
		exprPath = join(t.path, "threshold")
	}
	s, ok := c.str(t.expr, exprPath, "a threshold like \"p(99)<100\"")
	if !ok {
		return verify.Criterion{}, false
	}
	th, err := verify.ParseThreshold(s)
	if err != nil {
		c.r.at(t.expr, exprPath, "%s", err)
		return verify.Criterion{}, false
	}
	cr, err := verify.NewCriterion(key, th)
	if err != nil {
		c.r.at(t.expr, exprPath, "%s", err)
		return verify.Criterion{}, false
	}
	if t.abortOnFail != nil {
		cr.AbortOnFail, ok = c.boolean(t.abortOnFail, join(t.path, "abortOnFail"))
	}
	if t.delayAbortEval != nil {
		var dok bool
		cr.DelayAbortEval, dok = c.duration(t.delayAbortEval, join(t.path, "delayAbortEval"), 0, PhaseDurationMax)
		ok = ok && dok
		if dok && ok && !cr.AbortOnFail {
			c.r.at(t.delayAbortEval, join(t.path, "delayAbortEval"), "delays an abort, but abortOnFail is not true: it would do nothing")
			ok = false
		}
	}
	return cr, ok
}
