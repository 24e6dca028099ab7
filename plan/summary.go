package plan

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
)

// rampStagesShown bounds the stages a summary spells out; the rest are counted.
const rampStagesShown = 6

// Summary returns a one-screen view of the timeline: each phase's start offset, duration, rate
// profile in arrivals per second, expected arrivals, judge mode and number of criteria, then the
// criteria. redline validate prints it, as will redline run --dry-run.
func (p *Plan) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s (%s)\n", p.name, p.file)
	fmt.Fprintf(&b, "target  %s\n", p.targetText())
	if p.peakRPS > 0 {
		fmt.Fprintf(&b, "peak    %s/s\n", formatRate(p.peakRPS))
	}
	total := 0.0
	for _, ph := range p.phases {
		total += ph.expectedArrivals()
	}
	fmt.Fprintf(&b, "length  %s, %d phases, ~%s arrivals\n\n", p.Duration(), len(p.phases), formatRate(math.Round(total)))

	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PHASE\tSTART\tDURATION\tRATE (ARRIVALS/S)\tARRIVALS\tJUDGE\tCRITERIA")
	for _, ph := range p.phases {
		criteria := "-"
		if ph.Judge.Judged() {
			n := 0
			for _, c := range p.criteria {
				if c.AppliesTo(ph.Name, true) {
					n++
				}
			}
			criteria = strconv.Itoa(n)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ph.Name, ph.Start, ph.Duration, ph.rateText(),
			formatRate(math.Round(ph.expectedArrivals())), ph.Judge, criteria)
	}
	w.Flush()

	if len(p.criteria) > 0 {
		b.WriteString("\ncriteria (each judged phase unless scoped):\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, c := range p.criteria {
			abort := ""
			if c.AbortOnFail {
				abort = "\tabortOnFail"
				if c.DelayAbortEval > 0 {
					abort += " after " + c.DelayAbortEval.String()
				}
			}
			fmt.Fprintf(w, "  %s\t%s%s\n", c.Key, c.Threshold, abort)
		}
		w.Flush()
	}
	p.faultSummary(&b)
	return b.String()
}

// faultSummary writes the timeline of faults and what each would select, touching nothing:
// the targets are the plan's static ones (StaticTargets), the live ones may differ.
func (p *Plan) faultSummary(b *strings.Builder) {
	var guards []string
	for _, ph := range p.phases {
		for _, g := range ph.AbortWhen {
			guards = append(guards, fmt.Sprintf("  %s	%s", ph.Name, g))
		}
	}
	if len(guards) > 0 {
		b.WriteString("\nabort when (per phase):\n")
		w := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		for _, g := range guards {
			fmt.Fprintln(w, g)
		}
		w.Flush()
	}
	faults := p.Faults()
	if len(faults) == 0 {
		return
	}
	b.WriteString("\nfaults (run offset, kind, selector; would select, of the targets known before the run):\n")
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  FAULT\tWHEN\tKIND\tSELECTOR\tWOULD SELECT")
	starts := p.PhaseStarts()
	targets := p.target.StaticTargets()
	for _, f := range faults {
		fmt.Fprintf(w, "  %s\t%s\n", faultText(f, starts[f.Phase]), wouldSelect(f, targets))
	}
	w.Flush()
}

// wouldSelect names the targets a fault's selector matches and how many its mode picks.
func wouldSelect(f chaos.Fault, targets []chaos.Target) string {
	var names []string
	for _, t := range targets {
		if t.Accepts(f.Kind) && f.Selector.Matches(t.Labels) {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	n := f.Selector.Count(len(names), func(k int) int { return k - 1 }) // random-max-percent: at most
	how := fmt.Sprintf("%d of", n)
	if f.Selector.Mode == chaos.ModeRandomMaxPercent {
		how = fmt.Sprintf("up to %d of", n)
	}
	if n == len(names) {
		how = "all of"
	}
	return how + " " + strings.Join(names, ", ")
}

func (p *Plan) targetText() string {
	t := p.target
	if t.Builtin == nil {
		return t.URL
	}
	s := fmt.Sprintf("built-in (%d units, %d accounts)", t.Builtin.Units, t.Builtin.Accounts)
	if t.URL != "" {
		s += " at " + t.URL
	}
	return s
}

func (ph Phase) expectedArrivals() float64 {
	if ph.Load == nil {
		return 0
	}
	return arrivals(ph.Load.Profile)
}

// rateText writes the profile in arrivals per second: 20, 0->100->0, 200->2000 (up 10s, ...).
func (ph Phase) rateText() string {
	if ph.Load == nil {
		return "-"
	}
	pr := ph.Load.Profile
	switch ph.Shape {
	case ShapeConstant:
		return formatRate(pr.StartRPS)
	case ShapeSpike:
		if len(pr.Stages) == 3 {
			return fmt.Sprintf("%s->%s (up %s, hold %s, down %s)", formatRate(pr.StartRPS), formatRate(pr.Stages[0].TargetRPS),
				pr.Stages[0].Duration, pr.Stages[1].Duration, pr.Stages[2].Duration)
		}
	}
	return rampText(pr)
}

func rampText(pr load.Profile) string {
	parts := []string{formatRate(pr.StartRPS)}
	for i, s := range pr.Stages {
		if i == rampStagesShown-1 && len(pr.Stages) > rampStagesShown {
			parts = append(parts, "...", formatRate(pr.Stages[len(pr.Stages)-1].TargetRPS))
			break
		}
		parts = append(parts, formatRate(s.TargetRPS))
	}
	return fmt.Sprintf("%s over %d stages", strings.Join(parts, "->"), len(pr.Stages))
}

// formatRate writes a rate briefly: integers exactly, others with up to two decimals.
func formatRate(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}
