package plan

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/verify"
)

// abortWhen compiles a guard or a list of guards: the plan's when phase is "", else the
// phase's own. Their tags are checked once every phase is compiled (checkGuards).
func (c *compiler) abortWhen(n *yaml.Node, path, phase string) []verify.Guard {
	if n == nil {
		return nil
	}
	items := []*yaml.Node{n}
	paths := []string{path}
	if n.Kind == yaml.SequenceNode {
		items, paths = nil, nil
		for i, e := range c.listOf(n, path, GuardsMax, "guards") {
			items, paths = append(items, e), append(paths, index(path, i))
		}
	}
	var out []verify.Guard
	for i, item := range items {
		s, ok := c.str(item, paths[i], `a guard like "http_req_failed rate>0.2 for 10s"`)
		if !ok {
			continue
		}
		g, err := verify.ParseGuard(s)
		if err != nil {
			c.r.at(item, paths[i], "%v", err)
			continue
		}
		c.guardEntries = append(c.guardEntries, guardEntry{node: item, path: paths[i], key: g.Key, phase: phase})
		out = append(out, g)
	}
	return out
}

// guardEntry is a compiled guard's place in the file, for checkGuards.
type guardEntry struct {
	node  *yaml.Node
	path  string
	key   verify.Key
	phase string // the phase whose guard it is; "" for the plan's
}

// checkGuards checks each guard's tags against the phases, as the sla's are: a guard on a
// phase or an op that does not exist, or on a metric the target cannot report, would never
// trip, and a guard nobody can trip is a silent default.
func (c *compiler) checkGuards(phases []Phase) {
	for _, g := range c.guardEntries {
		key := g.key
		if !c.targetReports(key.Metric, g.node, g.path) {
			continue
		}
		if info, ok := verify.Lookup(key.Metric); ok && info.Source == verify.SourceTarget &&
			key.Metric != verify.ConsumerLag && key.Metric != verify.ShadowLeaks {
			c.r.at(g.node, g.path, "%s comes from the audit after the last phase: no abort condition can watch it during the run (consumer_lag and shadow_leaks are sampled every second)", key.Metric)
			continue
		}
		if key.Phase != "" {
			if !slices.ContainsFunc(phases, func(p Phase) bool { return p.Name == key.Phase }) {
				c.r.at(g.node, g.path, "unknown phase %q (want one of: %s)", key.Phase, phaseNames(phases))
				continue
			}
			if g.phase != "" && g.phase != key.Phase {
				c.r.at(g.node, g.path, "a guard of phase %q on phase %q would never be checked", g.phase, key.Phase)
				continue
			}
		}
		if key.Op == "" {
			continue
		}
		var ops []string // the requests of the phases the guard watches
		for _, p := range phases {
			if (g.phase == "" || p.Name == g.phase) && (key.Phase == "" || p.Name == key.Phase) {
				ops = append(ops, c.ops[p.Name]...)
			}
		}
		if !slices.Contains(ops, key.Op) {
			slices.Sort(ops)
			c.r.at(g.node, g.path, "op %q is not a request of any phase it guards (their requests: %s)", key.Op, strings.Join(slices.Compact(ops), ", "))
		}
	}
}

// targetReports reports whether the plan's target provides metric m, and says why not: the
// built-in target's audit and gauges provide the target's metrics; a URL target has none.
func (c *compiler) targetReports(m verify.Metric, n *yaml.Node, path string) bool {
	info, ok := verify.Lookup(m)
	if !ok || info.Source != verify.SourceTarget || c.planTarget.URL == "" {
		return true
	}
	c.r.at(n, path, "%s is reported by the built-in target (its audit and admin API); a URL target has no source for it: it would never have data", m)
	return false
}
