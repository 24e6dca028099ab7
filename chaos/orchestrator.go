package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// Limits of the orchestrator.
const (
	// RecoverTimeout bounds one recovery, retries included; it runs on a context that
	// cancelling the run cannot end.
	RecoverTimeout = 10 * time.Second
	// InjectTimeout bounds one injection call.
	InjectTimeout = 5 * time.Second
	// EvidenceTimeout bounds the wait for evidence; a fault also stops waiting at its deadline.
	EvidenceTimeout = 5 * time.Second
	// TargetsPerFaultMax bounds the targets one fault acts on.
	TargetsPerFaultMax = 256
	// EventsMax bounds the events of one record.
	EventsMax = 16
	// recoverAttempts is how often a failing recovery is tried within RecoverTimeout.
	recoverAttempts = 3
)

// Record phases: where one fault stands on one target (Chaos Mesh's per-target record).
const (
	PhaseNotInjected = "NotInjected" // never injected: no target, cancelled before its time
	PhaseInjected    = "Injected"    // in effect (a record read back after a crash may end here)
	PhaseRecovered   = "Recovered"
	PhaseFailed      = "Failed" // injection or recovery failed; Error says which
)

// Event is one step of a record.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // Scheduled, Injected, Evidence, Recovered, Failed
	Message string    `json:"message,omitempty"`
}

// Record is one fault on one target: what happened, when, and the evidence.
type Record struct {
	ID             string     `json:"id"`
	Fault          Fault      `json:"fault"`
	Target         *Target    `json:"target,omitempty"` // nil when nothing was selected
	Phase          string     `json:"phase"`
	InjectedCount  int        `json:"injected_count"`
	RecoveredCount int        `json:"recovered_count"`
	Scheduled      time.Time  `json:"scheduled"`
	Injected       *time.Time `json:"injected,omitempty"`
	Recovered      *time.Time `json:"recovered,omitempty"`
	// Lateness is the injection's start minus its scheduled time.
	Lateness time.Duration `json:"lateness_ns"`
	Evidence Evidence      `json:"evidence"`
	Error    string        `json:"error,omitempty"`
	Events   []Event       `json:"events"`
}

func (r *Record) event(typ, format string, args ...any) {
	if len(r.Events) >= EventsMax {
		return
	}
	r.Events = append(r.Events, Event{Time: time.Now(), Type: typ, Message: fmt.Sprintf(format, args...)})
}

// Options configure an Orchestrator.
type Options struct {
	// Executors act on targets by how they are reached.
	Executors map[Via]Executor
	// Inventory lists the targets at the moment of an injection (a topology changes as
	// processes restart).
	Inventory func(ctx context.Context) ([]Target, error)
	// Journal records injections before they happen; nil only in tests.
	Journal *Journal
	// Marks receives fault_inject and fault_recover marks, from several goroutines at once.
	Marks func(metrics.Mark)
	// Rand draws targets; nil draws from a random seed.
	Rand *rand.Rand
}

// Orchestrator selects targets, schedules faults, gathers evidence and recovers: the one place
// where faults meet the clock. It is safe for concurrent use.
type Orchestrator struct {
	opts Options

	mu      sync.Mutex
	rngMu   sync.Mutex
	seq     int
	effects map[string]*effect
	records []Record
}

// effect is one shared effect (a stopped process, a stopped link) and how many injections hold it.
type effect struct {
	mu sync.Mutex
	n  int
}

// New returns an orchestrator.
func New(opts Options) *Orchestrator {
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if opts.Marks == nil {
		opts.Marks = func(metrics.Mark) {}
	}
	return &Orchestrator{opts: opts, effects: map[string]*effect{}}
}

// Records returns every finished record so far, in the order they finished.
func (o *Orchestrator) Records() []Record {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Record(nil), o.records...)
}

// RunPhase injects each fault at start+At and recovers it at its deadline or when ctx ends,
// whichever comes first. The caller cancels ctx when the phase ends (or the run aborts); RunPhase
// returns only when every injection it made is recovered or its recovery failed, with the
// phase's records.
func (o *Orchestrator) RunPhase(ctx context.Context, start time.Time, faults []Fault) []Record {
	var wg sync.WaitGroup
	out := make(chan Record, 16)
	var recs []Record
	collected := make(chan struct{})
	// Owned by RunPhase: it ends when out closes, after wg.
	go func() {
		defer close(collected)
		for r := range out {
			recs = append(recs, r)
		}
	}()
	for _, f := range faults {
		wg.Add(1)
		// Owned by RunPhase through wg.
		go func() {
			defer wg.Done()
			o.runFault(ctx, start, f, out)
		}()
	}
	wg.Wait()
	close(out)
	<-collected
	return recs
}

// runFault waits for the fault's time, selects its targets and runs it on each.
func (o *Orchestrator) runFault(ctx context.Context, start time.Time, f Fault, out chan<- Record) {
	f.Spec = nil // records carry the fault's meaning, not its Chaos Mesh text
	scheduled := start.Add(f.At)
	fail := func(format string, args ...any) {
		o.finish(o.notInjected(f, scheduled, fmt.Sprintf(format, args...)), out)
	}
	if !sleepUntil(ctx, scheduled) {
		fail("the phase ended before the fault's time")
		return
	}
	targets, err := o.selectTargets(ctx, f)
	if err != nil {
		fail("%v", err)
		return
	}
	if len(targets) == 0 {
		fail("mode %s selected no target", f.Selector.Mode)
		return
	}
	if err := f.CheckTargets(len(targets)); err != nil {
		fail("%v", err)
		return
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		// Owned by runFault through wg.
		go func() {
			defer wg.Done()
			o.runTarget(ctx, f, t, scheduled, out)
		}()
	}
	wg.Wait()
}

func (o *Orchestrator) selectTargets(ctx context.Context, f Fault) ([]Target, error) {
	if o.opts.Inventory == nil {
		return nil, fmt.Errorf("select targets of %s: no inventory", f)
	}
	all, err := o.opts.Inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("select targets of %s: %w", f, err)
	}
	var accepting []Target
	for _, t := range all {
		if t.Accepts(f.Kind) {
			accepting = append(accepting, t)
		}
	}
	o.rngMu.Lock()
	ts, err := Select(accepting, f.Selector, o.opts.Rand)
	o.rngMu.Unlock()
	if len(ts) > TargetsPerFaultMax {
		ts = ts[:TargetsPerFaultMax]
	}
	return ts, err
}

// runTarget is one fault on one target: journal, inject, evidence, wait, recover.
func (o *Orchestrator) runTarget(ctx context.Context, f Fault, t Target, scheduled time.Time, out chan<- Record) {
	tc := t.clone()
	r := Record{ID: o.nextID(f, &t), Fault: f, Target: &tc, Phase: PhaseNotInjected, Scheduled: scheduled, Events: []Event{}}
	ex, ok := o.opts.Executors[executorVia(f.Kind, t.Via)]
	var u Undo
	var err error
	if !ok {
		err = fmt.Errorf("%s on %s (via %s): %w", f, t.Name, executorVia(f.Kind, t.Via), ErrNoExecutor)
	} else {
		u, err = ex.Plan(f, t)
	}
	if err == nil && o.opts.Journal != nil {
		err = o.opts.Journal.Inject(r.ID, f.Name, f.Phase, t.Name, u)
	}
	if err != nil {
		r.Error, r.Evidence = err.Error(), Evidence{Status: EvidenceMissing, Detail: err.Error()}
		r.event(PhaseFailed, "%v", err)
		r.Phase = PhaseFailed
		o.finish(r, out)
		return
	}
	injected := o.inject(ctx, ex, f, t, u, &r)
	o.opts.Marks(metrics.Mark{Time: *r.Injected, Phase: f.Phase, Kind: metrics.MarkFaultInject, Name: r.ID, Detail: mustJSON(r)})
	if injected {
		due := scheduled.Add(f.Deadline() - f.At)
		r.Evidence = o.evidence(ctx, ex, f, t, u, due)
		r.event("Evidence", "%s: %s", r.Evidence.Status, r.Evidence.Detail)
		sleepUntil(ctx, due)
	}
	o.recover(ctx, ex, u, &r)
	o.finish(r, out)
}

// inject runs the injection to its end even when ctx ends meanwhile: a half-made injection is
// worse than a short one, and recovery follows at once.
func (o *Orchestrator) inject(ctx context.Context, ex Executor, f Fault, t Target, u Undo, r *Record) bool {
	e := o.effect(u)
	if e != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.n++
	}
	now := time.Now()
	r.Injected, r.Lateness = &now, now.Sub(r.Scheduled)
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), InjectTimeout)
	defer cancel()
	err := ex.Inject(ictx, f, t, u)
	switch {
	case errors.Is(err, ErrUnsupported):
		r.Phase, r.Error = PhaseFailed, err.Error()
		r.Evidence = Evidence{Status: EvidenceUnknown, Detail: "the target does not support it: " + err.Error()}
		r.event(PhaseFailed, "%v", err)
		return false
	case err != nil:
		r.Phase, r.Error = PhaseFailed, err.Error()
		r.Evidence = Evidence{Status: EvidenceMissing, Detail: err.Error()}
		r.event(PhaseFailed, "%v", err)
		return false
	}
	r.Phase, r.InjectedCount = PhaseInjected, r.InjectedCount+1
	r.event(PhaseInjected, "%s on %s, %s after its time", f, t.Name, r.Lateness.Round(time.Microsecond))
	return true
}

// evidence waits for the fault's effect, at most EvidenceTimeout and never past due, its
// recovery deadline.
func (o *Orchestrator) evidence(ctx context.Context, ex Executor, f Fault, t Target, u Undo, due time.Time) Evidence {
	pr, ok := ex.(Prover)
	if !ok {
		return Evidence{Status: EvidenceUnknown, Detail: "this executor cannot observe its effect"}
	}
	wait := min(EvidenceTimeout, time.Until(due))
	ectx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
	defer cancel()
	return pr.Evidence(ectx, f, t, u)
}

// recover undoes the injection on a context the run's cancellation cannot end, retrying within
// RecoverTimeout. An effect shared with a later injection stays until the last one recovers.
func (o *Orchestrator) recover(ctx context.Context, ex Executor, u Undo, r *Record) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RecoverTimeout)
	defer cancel()
	e := o.effect(u)
	last := true
	if e != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.n-- // inject counted every attempt, failed or not
		last = e.n <= 0
	}
	var err error
	if last {
		for i := range recoverAttempts {
			if err = ex.Recover(rctx, u); err == nil || rctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(i+1) * 50 * time.Millisecond)
		}
	}
	now := time.Now()
	r.Recovered = &now
	if err != nil {
		r.Phase, r.Error = PhaseFailed, fmt.Sprintf("recover: %v", err)
		r.event(PhaseFailed, "recover: %v", err)
		return
	}
	if o.opts.Journal != nil {
		if jerr := o.opts.Journal.Recovered(r.ID, ""); jerr != nil {
			r.event(PhaseFailed, "%v", jerr)
		}
	}
	if r.Phase == PhaseInjected {
		r.Phase, r.RecoveredCount = PhaseRecovered, r.RecoveredCount+1
		r.event(PhaseRecovered, "after %s", now.Sub(*r.Injected).Round(time.Millisecond))
	}
}

func (o *Orchestrator) effect(u Undo) *effect {
	k := u.key()
	if k == "" {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.effects[k]
	if e == nil {
		e = &effect{}
		o.effects[k] = e
	}
	return e
}

func (o *Orchestrator) finish(r Record, out chan<- Record) {
	o.keep(r)
	out <- r
}

// keep adds a finished record to the orchestrator's and marks it on the timeline.
func (o *Orchestrator) keep(r Record) {
	o.mu.Lock()
	o.records = append(o.records, r)
	o.mu.Unlock()
	at := r.Scheduled
	if r.Recovered != nil {
		at = *r.Recovered
	}
	o.opts.Marks(metrics.Mark{Time: at, Phase: r.Fault.Phase, Kind: metrics.MarkFaultRecover, Name: r.ID, Detail: mustJSON(r)})
}

// notInjected is the record of fault f, due at scheduled, that was never injected, and why.
func (o *Orchestrator) notInjected(f Fault, scheduled time.Time, why string) Record {
	f.Spec = nil
	r := Record{ID: o.nextID(f, nil), Fault: f, Phase: PhaseNotInjected, Scheduled: scheduled, Error: why, Events: []Event{}}
	r.Evidence = Evidence{Status: EvidenceMissing, Detail: why}
	r.event(PhaseNotInjected, "%s", why)
	return r
}

// NotRun records the faults of a phase the run never reached (it stopped before), as never
// injected and why: the same records and marks as a fault whose phase ended before its time.
func (o *Orchestrator) NotRun(faults []Fault, why string) []Record {
	recs := make([]Record, 0, len(faults))
	for _, f := range faults {
		r := o.notInjected(f, time.Now(), why)
		o.keep(r)
		recs = append(recs, r)
	}
	return recs
}

func (o *Orchestrator) nextID(f Fault, t *Target) string {
	o.mu.Lock()
	o.seq++
	n := o.seq
	o.mu.Unlock()
	if t == nil {
		return fmt.Sprintf("%s#%d", f.Name, n)
	}
	return fmt.Sprintf("%s@%s#%d", f.Name, t.Name, n)
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
