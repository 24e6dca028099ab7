package run

import (
	"maps"
	"strings"
	"time"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/verify"
)

// SchemaVersion is the version of the run record's shape in timeline.jsonl's run marks and in
// report.json. It changes when a field changes meaning or goes away; additions keep it.
const SchemaVersion = 1

// Meta is what a run was: written as the detail of the timeline's first mark, so that a finished
// run's directory is enough to judge and render it again.
type Meta struct {
	SchemaVersion int    `json:"schema_version"`
	RunID         string `json:"run_id"`
	PlanName      string `json:"plan_name"`
	PlanFile      string `json:"plan_file"`
	PlanSource    string `json:"plan_source"` // the plan file's text, echoed
	TargetURL     string `json:"target_url"`
	Segment       string `json:"segment"` // "0:1" when this agent ran every arrival
	// Share is the fraction of the plan's arrivals this record covers: 1 for a whole run or a
	// merge of every segment, 1/N for one of N agents.
	Share   float64   `json:"share"`
	Started time.Time `json:"started"`
}

// PhaseMeta is what a phase was asked to do: the detail of its phase_start mark.
type PhaseMeta struct {
	Name      string           `json:"name"`
	Judge     verify.JudgeMode `json:"judge"`
	Shape     string           `json:"shape"`
	Scheduled time.Duration    `json:"scheduled_ns"` // the profile's length
	// TargetRPS is this agent's mean arrival rate; PlanRPS the plan's, all segments together.
	TargetRPS float64 `json:"target_rps"`
	PlanRPS   float64 `json:"plan_rps"`
	PeakRPS   float64 `json:"peak_rps"` // the profile's highest rate, all segments together
}

// AbortInterrupted is the abort reason of a run stopped by a signal (the halt button).
const AbortInterrupted = "interrupted"

// Phase is one phase of a finished run: what it was asked, when it ran, what it measured.
type Phase struct {
	PhaseMeta
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// All and ByOp are the phase's totals: every operation merged, and per operation.
	All  *metrics.Stats            `json:"-"`
	ByOp map[string]*metrics.Stats `json:"-"`
	// Gauges fold the target's sampled gauges by name (consumer_lag.settlement, ...).
	Gauges map[string]*GaugeStats `json:"-"`
}

// GaugeStats folds the samples of one gauge in one phase.
type GaugeStats struct {
	Samples int64   `json:"samples"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Last    float64 `json:"last"` // the value at the phase's last sample: k6's gauge "value"
}

func (g *GaugeStats) add(v float64) {
	if g.Samples == 0 || v < g.Min {
		g.Min = v
	}
	if g.Samples == 0 || v > g.Max {
		g.Max = v
	}
	g.Last = v
	g.Samples++
}

// foldGauge adds one sample to the phase's gauges.
func (p *Phase) foldGauge(g metrics.Gauge) {
	if p.Gauges == nil {
		p.Gauges = map[string]*GaugeStats{}
	}
	s, ok := p.Gauges[g.Name]
	if !ok {
		if len(p.Gauges) >= gaugesMax {
			return
		}
		s = &GaugeStats{}
		p.Gauges[g.Name] = s
	}
	s.add(g.Value)
}

// gaugesMax bounds the distinct gauges a phase keeps.
const gaugesMax = 64

// ConsumerLagGauge prefixes the gauges of consumer lag, one per consumer group; their sum at a
// phase's last sample is the phase's consumer_lag value.
const ConsumerLagGauge = "consumer_lag."

// ShadowLeaksGauge is the target's count of stress writes in production data, sampled during
// the run: its highest value in a phase is the phase's shadow_leaks.
const ShadowLeaksGauge = "shadow_leaks"

// ShareOfPlan is the fraction of the plan's arrivals the record covers, in (0, 1]: a record
// that does not say covers all of them.
func (m Meta) ShareOfPlan() float64 {
	if m.Share <= 0 || m.Share > 1 {
		return 1
	}
	return m.Share
}

// Ran reports whether the phase started.
func (p Phase) Ran() bool { return !p.Started.IsZero() }

// Record is a finished run: its meta, its phases and how it ended.
type Record struct {
	Meta
	Ended  time.Time `json:"ended"`
	Phases []Phase   `json:"phases"`
	// Abort is why the run stopped early ("" when it ran to the end): a signal, an abort
	// condition.
	Abort string `json:"abort,omitempty"`
	// Audit is the target's audit after the run; nil when the target has none (a URL target).
	Audit *Audit `json:"audit,omitempty"`
	// Marks are the timeline's events (phase starts and ends, faults, aborts), in order.
	Marks []metrics.Mark `json:"marks"`
	// Faults are the records of every fault on every target, in the order they ended; a run
	// read back after a crash also has those injected and never recovered (phase Injected).
	Faults []FaultRecord `json:"faults,omitempty"`
}

// FaultRecord is one fault on one target, as the orchestrator recorded it.
type FaultRecord = chaos.Record

// Judge judges the record against the plan it ran: each phase of the plan, whether it ran or
// not, on the plan's criteria; an aborted run is marked so. A live record and one read back from
// a run directory give the same verdict.
func Judge(p *plan.Plan, rec *Record) verify.Verdict {
	ran := make(map[string]Phase, len(rec.Phases))
	for _, ph := range rec.Phases {
		if ph.Ran() {
			ran[ph.Name] = ph
		}
	}
	share := rec.ShareOfPlan()
	var inputs []verify.PhaseInput
	for _, ph := range p.Phases() {
		in := p.Input(ph)
		in.TargetRPS *= share
		in.PeakRPS *= share // an agent's headroom is against its share of the peak
		if r, ok := ran[ph.Name]; ok {
			if r.TargetRPS > 0 { // the arrivals this record's agents were due to send
				in.TargetRPS = r.TargetRPS
			}
			in.All, in.ByOp = r.All, r.ByOp
			in.Faults = faultChecks(rec.Faults, ph.Name)
		}
		inputs = append(inputs, in)
	}
	for i, in := range inputs {
		ext := map[verify.Metric]float64{}
		if rec.Audit != nil {
			maps.Copy(ext, rec.Audit.external())
		}
		if r, ok := ran[in.Name]; ok {
			gaugeExternal(ext, r.Gauges)
		}
		if len(ext) > 0 {
			inputs[i].External = ext
		}
	}
	v := verify.Judge(inputs, p.Criteria())
	if rec.Audit != nil {
		v = v.WithChecks(rec.Audit.checks())
	}
	if rec.Abort != "" {
		v = v.WithAbort(rec.Abort)
	}
	return v
}

// gaugeExternal adds the target metrics that the phase's sampled gauges give to ext: the
// consumer lag at the last sample and the most stress writes to production seen.
func gaugeExternal(ext map[verify.Metric]float64, gauges map[string]*GaugeStats) {
	if lag, ok := consumerLag(gauges); ok {
		ext[verify.ConsumerLag] = lag
	}
	if g, ok := gauges[ShadowLeaksGauge]; ok {
		ext[verify.ShadowLeaks] = max(ext[verify.ShadowLeaks], g.Max)
	}
}

// consumerLag sums the consumer groups' lag at the phase's last sample; false when the target
// reported none.
func consumerLag(gauges map[string]*GaugeStats) (float64, bool) {
	total, found := 0.0, false
	for name, g := range gauges {
		if strings.HasPrefix(name, ConsumerLagGauge) {
			total += g.Last
			found = true
		}
	}
	return total, found
}
