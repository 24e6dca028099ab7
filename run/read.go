package run

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/metrics"
)

// ReadRecord rebuilds the record of a finished run from its directory's timeline: the run's meta
// from its first mark, each phase from its marks, and its totals by merging its windows. Reports
// and verdicts are recomputed from it; a damaged or foreign file is an error wrapping
// ErrBadRecord or metrics.ErrBadTimeline.
func ReadRecord(dir string) (*Record, error) {
	f, err := os.Open(filepath.Join(dir, TimelineFile))
	if err != nil {
		return nil, fmt.Errorf("read run record: %w", err)
	}
	defer f.Close()
	rb := recordBuilder{phases: map[string]int{}}
	if err := metrics.ReadTimeline(f, rb.add); err != nil {
		return nil, fmt.Errorf("read run record %s: %w", dir, err)
	}
	if rb.rec == nil {
		return nil, fmt.Errorf("read run record %s: %w: no %s mark", dir, ErrBadRecord, MarkRunStart)
	}
	rb.finish()
	for _, id := range rb.injectOrder {
		if f, open := rb.injected[id]; open {
			rb.rec.Faults = append(rb.rec.Faults, f) // injected, and the run ended before it recovered
		}
	}
	for i := range rb.rec.Phases {
		p := &rb.rec.Phases[i]
		if p.All == nil {
			p.All, p.ByOp = metrics.NewStats(), map[string]*metrics.Stats{}
		}
	}
	return rb.rec, nil
}

// AbortUnfinished is the abort reason of a run whose timeline has no run_end mark: Redline was
// killed, or the file was cut. What it measured until then is judged; its verdict is aborted.
const AbortUnfinished = "the run did not finish: its timeline has no run_end mark (Redline was killed, or the file was cut)"

// finish closes a record whose timeline stopped early: the run and its last phase end at the
// last time the timeline holds, and the run is aborted.
func (b *recordBuilder) finish() {
	if !b.rec.Ended.IsZero() {
		return
	}
	end := later(b.last, b.rec.Started)
	b.rec.Ended = end
	b.rec.Abort = AbortUnfinished
	for i := range b.rec.Phases {
		if p := &b.rec.Phases[i]; p.Ran() && p.Ended.IsZero() {
			p.Ended = later(end, p.Started)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// faultRecordsMax bounds the fault records read back from a timeline.
const faultRecordsMax = 1 << 16

// recordBuilder folds timeline entries into a record.
type recordBuilder struct {
	rec    *Record
	phases map[string]int // phase name → index in rec.Phases
	// injected holds fault records injected and not yet recovered, by id.
	injected    map[string]chaos.Record
	injectOrder []string
	last        time.Time // the latest time an entry holds
}

func (b *recordBuilder) add(e metrics.Entry) error {
	if e.Mark != nil && e.Mark.Kind == MarkRunStart {
		if b.rec != nil {
			return fmt.Errorf("%w: a second %s mark", ErrBadRecord, MarkRunStart)
		}
		var m Meta
		if err := json.Unmarshal([]byte(e.Mark.Detail), &m); err != nil {
			return fmt.Errorf("%w: run meta: %w", ErrBadRecord, err)
		}
		if m.SchemaVersion != SchemaVersion {
			return fmt.Errorf("%w: schema version %d, this build reads %d", ErrBadRecord, m.SchemaVersion, SchemaVersion)
		}
		b.rec = &Record{Meta: m}
	}
	if b.rec == nil {
		return fmt.Errorf("%w: the timeline does not start with a %s mark", ErrBadRecord, MarkRunStart)
	}
	switch {
	case e.Window != nil:
		b.last = later(b.last, e.Window.Start.Add(e.Window.Span))
		return b.addWindow(e.Window)
	case e.Gauge != nil:
		b.last = later(b.last, e.Gauge.Time)
		if i, ok := b.phases[e.Gauge.Phase]; ok {
			b.rec.Phases[i].foldGauge(*e.Gauge)
		}
	case e.Mark != nil:
		return b.addMark(*e.Mark)
	}
	return nil
}

func (b *recordBuilder) addMark(m metrics.Mark) error {
	b.rec.Marks = append(b.rec.Marks, m)
	if m.Kind != MarkAudit { // taken after the run: not part of its span
		b.last = later(b.last, m.Time)
	}
	switch m.Kind {
	case metrics.MarkPhaseStart:
		var pm PhaseMeta
		if err := json.Unmarshal([]byte(m.Detail), &pm); err != nil {
			return fmt.Errorf("%w: phase %s meta: %w", ErrBadRecord, m.Phase, err)
		}
		if _, dup := b.phases[pm.Name]; dup || pm.Name == "" {
			return fmt.Errorf("%w: phase %q started twice or has no name", ErrBadRecord, pm.Name)
		}
		b.phases[pm.Name] = len(b.rec.Phases)
		b.rec.Phases = append(b.rec.Phases, Phase{PhaseMeta: pm, Started: m.Time,
			All: metrics.NewStats(), ByOp: map[string]*metrics.Stats{}})
	case metrics.MarkPhaseEnd, metrics.MarkAbort:
		if i, ok := b.phases[m.Phase]; ok {
			b.rec.Phases[i].Ended = m.Time
		}
		if m.Kind == metrics.MarkAbort {
			b.rec.Abort = m.Detail
		}
	case MarkAudit:
		a, err := ParseAudit([]byte(m.Detail))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRecord, err)
		}
		b.rec.Audit = a
	case MarkRunEnd:
		b.rec.Ended = m.Time
		if m.Detail != "" {
			b.rec.Abort = m.Detail
		}
	case metrics.MarkFaultInject:
		f, err := faultFromMark(m)
		if err != nil {
			return err
		}
		if b.injected == nil {
			b.injected = map[string]chaos.Record{}
		}
		if _, dup := b.injected[m.Name]; !dup && len(b.injectOrder) < faultRecordsMax {
			b.injectOrder = append(b.injectOrder, m.Name)
		}
		b.injected[m.Name] = f
	case metrics.MarkFaultRecover:
		f, err := faultFromMark(m)
		if err != nil {
			return err
		}
		delete(b.injected, m.Name)
		if len(b.rec.Faults) < faultRecordsMax {
			b.rec.Faults = append(b.rec.Faults, f)
		}
	}
	return nil
}

func (b *recordBuilder) addWindow(w *metrics.Window) error {
	i, ok := b.phases[w.Phase]
	if !ok {
		return fmt.Errorf("%w: a window of phase %q before its start", ErrBadRecord, w.Phase)
	}
	p := &b.rec.Phases[i]
	p.All.Merge(w.Stats)
	op, ok := p.ByOp[w.Op]
	if !ok {
		op = metrics.NewStats()
		p.ByOp[w.Op] = op
	}
	op.Merge(w.Stats)
	return nil
}
