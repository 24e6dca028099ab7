package run

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/verify"
)

// proxyLink is the name of the fault proxy's link to the plan's target URL.
const proxyLink = "target"

// chaosRig is what a run with faults holds: the journal, the fault proxy in front of the
// target, the orchestrator. Close ends them after every phase recovered its faults.
type chaosRig struct {
	journal *chaos.Journal
	proxy   *chaos.Proxy
	orch    *chaos.Orchestrator
}

// needsProxy reports whether any fault acts on the network.
func needsProxy(p *plan.Plan) bool {
	for _, f := range p.Faults() {
		if f.Kind == chaos.KindNetwork || f.Kind == chaos.KindHTTP {
			return true
		}
	}
	return false
}

// startChaos opens the journal and, when network faults need it, starts the fault proxy and
// returns the plan rewritten to send its load through it. A plan without faults gets no rig.
func (r *runner) startChaos() (*plan.Plan, error) {
	p := r.plan
	if len(p.Faults()) == 0 {
		return p, nil
	}

	j, err := chaos.OpenJournal(filepath.Join(r.opts.OutDir, chaos.JournalFile))
	if err != nil {
		return nil, err
	}
	rig := &chaosRig{journal: j}
	r.chaos = rig
	execs := map[chaos.Via]chaos.Executor{
		chaos.ViaProcess:  chaos.ProcessExecutor{},
		chaos.ViaAdmin:    chaos.AdminExecutor{},
		chaos.ViaConsumer: chaos.ConsumerExecutor{},
		chaos.ViaHost:     chaos.NewStressor(),
	}
	if needsProxy(p) {
		u, err := url.Parse(p.Target().URL)
		if err != nil || u.Scheme != "http" {
			return nil, fmt.Errorf("start fault proxy: network faults need an http:// target, got %q", p.Target().URL)
		}
		upstream := u.Host
		if u.Port() == "" {
			upstream += ":80"
		}
		rig.proxy = chaos.NewProxy()
		addr, err := rig.proxy.AddLink(proxyLink, "127.0.0.1:0", upstream)
		if err != nil {
			return nil, err
		}
		u.Host = addr
		if p, err = p.ThroughProxy(u.String()); err != nil {
			return nil, fmt.Errorf("start fault proxy: %w", err)
		}
		execs[chaos.ViaProxy] = rig.proxy
		r.progress.say("fault proxy: %s -> %s", addr, upstream)
	}
	static := p.Target().StaticTargets()
	admin := r.opts.TargetAdmin
	rig.orch = chaos.New(chaos.Options{
		Executors: execs,
		Journal:   j,
		Marks:     func(m metrics.Mark) { _ = r.mark(m) },
		Inventory: func(ctx context.Context) ([]chaos.Target, error) {
			if admin == nil {
				return static, nil
			}
			return builtinInventory(ctx, *admin, static)
		},
	})
	return p, nil
}

// builtinInventory lists the built-in target's live processes from its admin API, with the
// static links and consumer groups.
func builtinInventory(ctx context.Context, admin chaos.AdminRef, static []chaos.Target) ([]chaos.Target, error) {
	top, err := chaos.ReadTopology(ctx, nil, admin)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	out := top.Targets(admin)
	for _, t := range static {
		if t.Via == chaos.ViaConsumer {
			a := admin
			a.Path = t.Labels["group"]
			t.Admin = &a
		}
		if t.Via != chaos.ViaAdmin {
			out = append(out, t)
		}
	}
	return out, nil
}

// runFaults runs a phase's faults beside its load until ctx ends, and adds their records.
func (r *runner) runFaults(ctx context.Context, ph plan.Phase, start time.Time) <-chan []chaos.Record {
	done := make(chan []chaos.Record, 1)
	faults := r.ownFaults(ph.Faults)
	if r.chaos == nil || len(faults) == 0 {
		done <- nil
		return done
	}
	// Owned by runPhase: it cancels ctx when the load ends and waits on done.
	go func() { done <- r.chaos.orch.RunPhase(ctx, start, faults) }()
	return done
}

// faultsNotRun records the faults of a phase the run never reached (it was aborted before):
// every fault of the plan is in the record, these as never injected, with why.
func (r *runner) faultsNotRun(ph plan.Phase) {
	if r.chaos == nil {
		return
	}
	why := "the run stopped before phase " + ph.Name + ": " + r.record.Abort
	r.record.Faults = append(r.record.Faults, r.chaos.orch.NotRun(r.ownFaults(ph.Faults), why)...)
}

// ownFaults are the faults of fs this agent injects. Agents of a URL target share it: each
// injects the faults on its own link to it (NetworkChaos, HTTPChaos: its own fault proxy), and
// the faults on shared things (processes, the host, consumer groups) are injected once, by the
// agent whose segment starts at 0; `redline merge` carries their records into the merged run.
// With the built-in target every agent runs its own, and injects every fault.
func (r *runner) ownFaults(fs []chaos.Fault) []chaos.Fault {
	seg := r.opts.Segment
	if seg.Den == 0 || seg.FromNum == 0 || r.opts.TargetAdmin != nil {
		return fs
	}
	var own []chaos.Fault
	for _, f := range fs {
		if f.Kind == chaos.KindNetwork || f.Kind == chaos.KindHTTP {
			own = append(own, f)
		}
	}
	if len(own) < len(fs) {
		r.progress.say("faults: %d of this phase's on shared targets are injected by the agent of segment 0", len(fs)-len(own))
	}
	return own
}

// closeChaos stops the proxy and closes the journal.
func (r *runner) closeChaos() error {
	if r.chaos == nil {
		return nil
	}
	if r.chaos.proxy != nil {
		r.chaos.proxy.Close()
	}
	return r.chaos.journal.Close()
}

// guards steps a phase's abortWhen guards on the window that just closed.
// ext holds the target's metrics as last sampled (consumer lag, stress writes in production).
func (r *runner) stepGuards(ph plan.Phase, ws []metrics.Window, ext map[verify.Metric]float64, span, elapsed time.Duration, states []verify.GuardState) (string, bool) {
	if len(ph.AbortWhen) == 0 {
		return "", false
	}
	in := verify.PhaseInput{Name: ph.Name, Judge: ph.Judge, Duration: span, ByOp: map[string]*metrics.Stats{}, External: ext}
	for _, w := range ws {
		if w.Phase != ph.Name {
			continue
		}
		if in.All == nil {
			in.All = metrics.NewStats()
		}
		in.All.Merge(w.Stats)
		op := in.ByOp[w.Op]
		if op == nil {
			op = metrics.NewStats()
			in.ByOp[w.Op] = op
		}
		op.Merge(w.Stats)
	}
	for i, g := range ph.AbortWhen {
		st, tripped := g.Step(states[i], in, elapsed)
		states[i] = st
		if tripped {
			return g.Reason(ph.Name, st), true
		}
	}
	return "", false
}

// faultChecks are a phase's fault records as verify judges them.
func faultChecks(recs []chaos.Record, phase string) []verify.FaultCheck {
	var out []verify.FaultCheck
	for _, r := range recs {
		if r.Fault.Phase != phase {
			continue
		}
		out = append(out, verify.FaultCheck{Name: r.ID, Evidence: r.Evidence.Observed(), Detail: r.Evidence.Detail})
	}
	return out
}

// faultFromMark reads a fault record from a fault mark's detail.
func faultFromMark(m metrics.Mark) (chaos.Record, error) {
	var rec chaos.Record
	if err := json.Unmarshal([]byte(m.Detail), &rec); err != nil {
		return rec, fmt.Errorf("%w: fault %s: %w", ErrBadRecord, m.Name, err)
	}
	return rec, nil
}
