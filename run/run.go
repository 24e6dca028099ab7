// Package run executes a plan: every phase's load (and, as the engines grow, its faults and
// replays) under one clock, folding what it measures into per-second windows written to
// timeline.jsonl as they close (flushed each second), and returns the run's record for judging
// and reporting.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/verify"
)

// TimelineFile is the name of the per-second series in a run directory.
const TimelineFile = "timeline.jsonl"

// Mark kinds of the run record, beside metrics' phase and fault marks.
const (
	MarkRunStart = "run_start"
	MarkRunEnd   = "run_end"
)

// windowSpan is the length of one timeline window.
const windowSpan = time.Second

// Errors of this package.
var (
	ErrBadRecord = errors.New("bad run record")
)

// Options change how a plan runs.
type Options struct {
	RunID  string
	OutDir string // created when missing; timeline.jsonl goes here
	// Progress receives progress lines; nil prints none. Terminal rewrites one line in place.
	Progress io.Writer
	Terminal bool
	// MetricsAddr, when set, serves Prometheus /metrics there for the length of the run.
	MetricsAddr string
	// Segment is this agent's share of every phase's arrivals; the zero value is all of them.
	Segment load.Segment
	// PlanSource is the plan file's text, echoed into the record.
	PlanSource []byte
	// Gauges, when set, samples the target's gauges (consumer lag, ...) once a second; the
	// runner stamps each with the time and phase and bounds the call with gaugeTimeout.
	Gauges func(ctx context.Context) ([]metrics.Gauge, error)
	// Started is called once the metrics server listens, with its address ("" without one).
	Started func(metricsAddr string)
	// TargetAdmin reaches the built-in target's admin API: its topology is then the faults'
	// inventory. Nil for a URL target, whose inventory is the plan's (link and processes).
	TargetAdmin *chaos.AdminRef
}

// runner is the state of one run; its methods run on the goroutine of Run only.
type runner struct {
	opts      Options
	plan      *plan.Plan
	collector *metrics.Collector
	timeline  *metrics.TimelineWriter
	progress  *progressPrinter
	start     time.Time
	record    *Record
	targetURL string    // the plan's target, before the fault proxy took its place
	chaos     *chaosRig // nil without faults
	guards    []verify.GuardState
	mu        sync.Mutex // the timeline and the record's marks: fault marks come from the orchestrator
}

// Run executes p and returns its record. It blocks until every phase ended, an abort condition
// tripped, or ctx was cancelled; in the last two cases the record says why and the error is nil:
// the outputs of an aborted run are still written. An error means the run could not be made.
func Run(ctx context.Context, p *plan.Plan, opts Options) (*Record, error) {
	if p.Target().Marker != plan.MarkerOff && opts.RunID != "" {
		if err := shadow.ValidRun(opts.RunID); err != nil {
			return nil, fmt.Errorf("mark the requests with run id %q: %w", opts.RunID, err)
		}
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	start := time.Now()
	r := &runner{
		opts:      opts,
		plan:      p,
		collector: metrics.NewCollector(start),
		progress:  &progressPrinter{w: opts.Progress, terminal: opts.Terminal, plainEvery: 5 * time.Second},
		start:     start,
		targetURL: p.Target().URL,
	}
	// Everything that can fail to start does so before the timeline is created: a run that
	// cannot start leaves a directory's earlier run as it was.
	proxied, err := r.startChaos()
	defer r.closeChaos()
	if err != nil {
		return nil, err
	}
	r.plan = proxied
	metricsAddr := ""
	if opts.MetricsAddr != "" {
		srv, err := startMetricsServer(opts.MetricsAddr, opts.RunID, r.collector)
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		metricsAddr = srv.Addr()
	}
	f, err := os.Create(filepath.Join(opts.OutDir, TimelineFile))
	if err != nil {
		return nil, fmt.Errorf("create timeline: %w", err)
	}
	defer f.Close()
	r.timeline = metrics.NewTimelineWriter(f)
	if opts.Started != nil {
		opts.Started(metricsAddr)
	}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	if err := r.timeline.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close timeline: %w", err)
	}
	if err := r.closeChaos(); err != nil {
		return nil, err
	}
	r.chaos = nil
	return r.record, nil
}

func (r *runner) run(ctx context.Context) error {
	meta := Meta{
		SchemaVersion: SchemaVersion,
		RunID:         r.opts.RunID,
		PlanName:      r.plan.Name(),
		PlanFile:      r.plan.File(),
		PlanSource:    string(r.opts.PlanSource),
		TargetURL:     r.targetURL,
		Segment:       segmentLabel(r.opts.Segment),
		Share:         segmentShare(r.opts.Segment),
		Started:       r.start,
	}
	r.record = &Record{Meta: meta}
	if err := r.mark(metrics.Mark{Time: r.start, Kind: MarkRunStart, Detail: mustJSON(meta)}); err != nil {
		return err
	}
	phases := r.plan.Phases()
	for i, ph := range phases {
		r.record.Phases = append(r.record.Phases, Phase{PhaseMeta: r.phaseMeta(ph)})
		if r.record.Abort != "" { // recorded as not run, its faults as never injected
			r.faultsNotRun(ph)
			continue
		}
		if err := r.runPhase(ctx, i, len(phases)); err != nil {
			return err
		}
	}
	end := time.Now()
	if err := r.writeWindows(r.collector.Rotate(end)); err != nil {
		return err
	}
	r.record.Ended = end
	return r.mark(metrics.Mark{Time: end, Kind: MarkRunEnd, Detail: r.record.Abort})
}

func (r *runner) phaseMeta(ph plan.Phase) PhaseMeta {
	m := PhaseMeta{
		Name:      ph.Name,
		Judge:     ph.Judge,
		Shape:     ph.Shape,
		Scheduled: ph.Duration,
		PlanRPS:   ph.TargetRPS(),
	}
	m.TargetRPS = m.PlanRPS * r.record.Share
	if ph.Load != nil {
		m.PeakRPS = ph.Load.Profile.PeakRPS()
		m.TargetRPS = ownedRPS(ph.Load.Profile, r.opts.Segment, m.TargetRPS)
	}
	return m
}

// ownedRPS is the mean rate of the arrivals seg owns in pr: for an agent, the arrivals it is
// due to send (a third of 21 arrivals may be 9, not 7), which its validity is judged against.
// Without a segment, or when pr has no schedule, it returns fallback.
func ownedRPS(pr load.Profile, seg load.Segment, fallback float64) float64 {
	owned, _, err := seg.ArrivalsOf(pr)
	secs := pr.Duration().Seconds()
	if seg.Den == 0 || err != nil || secs <= 0 {
		return fallback
	}
	return float64(owned) / secs
}

// runPhase runs the load of phase i, rotating the collector every second: each window goes to
// the timeline and the progress line, and the running totals are checked for abort conditions.
func (r *runner) runPhase(ctx context.Context, i, n int) error {
	rec := &r.record.Phases[i]
	ph := r.plan.Phases()[i]
	cfg := *ph.Load
	cfg.Segment = r.opts.Segment
	cfg.Vars.RunID = r.opts.RunID // {{run}}: the run id, unique per run
	cfg.Requests = r.plan.Target().Marker.Mark(cfg.Requests, r.opts.RunID)
	cfg.Vars.Seed = phaseSeed(cfg.Vars.Seed, ph.Name)
	gen, err := load.NewGenerator(cfg, r.collector)
	if err != nil {
		return fmt.Errorf("start phase %s: %w", ph.Name, err)
	}
	rec.Started = time.Now()
	if err := r.mark(metrics.Mark{Time: rec.Started, Phase: ph.Name, Kind: metrics.MarkPhaseStart, Name: ph.Name, Detail: mustJSON(rec.PhaseMeta)}); err != nil {
		return err
	}
	phaseCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.guards = make([]verify.GuardState, len(ph.AbortWhen))
	faultsDone := r.runFaults(phaseCtx, ph, rec.Started)
	done := make(chan error, 1)
	// Owned by runPhase: it waits for done before returning.
	go func() {
		_, err := gen.Run(phaseCtx)
		done <- err
	}()
	tick := time.NewTicker(windowSpan)
	defer tick.Stop()
	last := rec.Started
	var genErr error
loop:
	for {
		select {
		case genErr = <-done:
			break loop
		case now := <-tick.C:
			if err := r.sampleGauges(ctx, rec, now); err != nil {
				cancel()
				<-done
				r.record.Faults = append(r.record.Faults, <-faultsDone...)
				return err
			}
			if err := r.tick(ph, rec, gen, now, now.Sub(last), i, n, cancel); err != nil {
				cancel()
				<-done
				r.record.Faults = append(r.record.Faults, <-faultsDone...)
				return err
			}
			last = now
		}
	}
	// A generator that failed by itself (not stopped by a signal or an abort) is a run error.
	stopped := phaseCtx.Err() != nil
	cancel() // the load ended: faults still in place are recovered now
	r.record.Faults = append(r.record.Faults, <-faultsDone...)
	rec.Ended = time.Now()
	// A last sample, after the faults' recovery: what the phase left behind (lag drained or not).
	if err := r.sampleGauges(context.WithoutCancel(ctx), rec, rec.Ended); err != nil {
		return err
	}
	if ctx.Err() != nil && r.record.Abort == "" {
		r.record.Abort = AbortInterrupted
	}
	// A cancelled phase (a signal, an abort condition) is a record's abort, not a run error.
	if genErr != nil && !stopped {
		return fmt.Errorf("run phase %s: %w", ph.Name, genErr)
	}
	if err := r.writeWindows(r.collector.Rotate(rec.Ended)); err != nil {
		return err
	}
	rec.All, rec.ByOp = r.collector.Phase(ph.Name)
	r.progress.say("phase %s done: %d requests, %d failed, %d dropped, p99 %s",
		ph.Name, rec.All.Requests, rec.All.Failed, rec.All.Dropped, rec.All.Latency.Percentile(99))
	if r.record.Abort != "" {
		return r.mark(metrics.Mark{Time: rec.Ended, Phase: ph.Name, Kind: metrics.MarkAbort, Detail: r.record.Abort})
	}
	return r.mark(metrics.Mark{Time: rec.Ended, Phase: ph.Name, Kind: metrics.MarkPhaseEnd, Name: ph.Name})
}

// tick closes a window: timeline, progress line, abort conditions.
func (r *runner) tick(ph plan.Phase, rec *Phase, gen *load.Generator, now time.Time, span time.Duration, i, n int, stop func()) error {
	ws := r.collector.Rotate(now)
	if err := r.writeWindows(ws); err != nil {
		return err
	}
	achieved, offered, p99, failed, dropped := foldWindows(ws, span)
	r.progress.print(progressLine{
		Elapsed: now.Sub(r.start), Phase: ph.Name, PhaseIndex: i, Phases: n,
		OfferedRPS: offered, AchievedRPS: achieved, P99: p99, Failed: failed, Dropped: dropped,
		InFlight: gen.Progress().InFlight,
	})
	in := r.plan.Input(ph)
	in.Duration = now.Sub(rec.Started)
	in.All, in.ByOp = r.collector.Phase(ph.Name)
	// The target's gauges sampled so far: a criterion on them (shadow_leaks count==0 with
	// abortOnFail) stops the run at the first sample that breaks it, not at the phase's end.
	in.External = map[verify.Metric]float64{}
	gaugeExternal(in.External, rec.Gauges)
	if abort, ok := verify.CheckAbort(in, r.plan.Criteria()); ok && r.record.Abort == "" {
		r.record.Abort = abort.Reason()
		r.progress.say("aborting: %s", abort.Reason())
		stop()
	}
	if reason, ok := r.stepGuards(ph, ws, in.External, span, in.Duration, r.guards); ok && r.record.Abort == "" {
		r.record.Abort = reason
		r.progress.say("aborting: %s", reason)
		stop()
	}
	return nil
}

func (r *runner) writeWindows(ws []metrics.Window) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range ws {
		if err := r.timeline.Write(metrics.Entry{Kind: metrics.KindWindow, Window: &ws[i]}); err != nil {
			return err
		}
	}
	// Each second's windows reach the file as they close: a run killed mid-way leaves what it
	// measured up to its last second, and the marks before it.
	return r.timeline.Flush()
}

func (r *runner) mark(m metrics.Mark) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record.Marks = append(r.record.Marks, m)
	return r.timeline.Write(metrics.Entry{Kind: metrics.KindMark, Mark: &m})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // plain structs of this package: a bug
	}
	return string(b)
}

func segmentLabel(s load.Segment) string {
	if s.Den == 0 {
		return "0:1"
	}
	return s.String()
}

func segmentShare(s load.Segment) float64 {
	if s.Den == 0 {
		return 1
	}
	return s.Share()
}

// phaseSeed gives each phase its own stream of template values: a plan's seed alone would draw
// the same {{uuid}}s in every phase (idempotency keys that collide across phases). Every agent
// derives the same seed, so segments still split one run's requests exactly. 0 stays 0: the
// generator picks a random seed.
func phaseSeed(seed int64, phase string) int64 {
	if seed == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(phase))
	if s := seed ^ int64(h.Sum64()); s != 0 {
		return s
	}
	return seed
}
