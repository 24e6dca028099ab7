package run

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/verify"
)

// Merge errors.
var (
	ErrMismatch = fmt.Errorf("%w: runs do not belong together", ErrBadRecord)
)

// segmentsMergedMax bounds the agents one merge reads.
const segmentsMergedMax = 1000

// Merge reads the run directories of several agents that each ran a segment of the same plan,
// and writes into out one run whose windows are all of theirs: HDR histograms merge exactly, so
// the SLA is judged once over every agent's data (where k6 judges each instance alone). The
// runs must share the plan text and their segments must not overlap. It returns the merged
// record, as ReadRecord(out) would.
func Merge(out string, dirs []string) (*Record, error) {
	if len(dirs) == 0 || len(dirs) > segmentsMergedMax {
		return nil, fmt.Errorf("merge runs: want 1 to %d run directories, got %d", segmentsMergedMax, len(dirs))
	}
	if err := checkMergeOut(out, dirs); err != nil {
		return nil, fmt.Errorf("merge runs: %w", err)
	}
	recs := make([]*Record, len(dirs))
	for i, d := range dirs {
		r, err := ReadRecord(d)
		if err != nil {
			return nil, fmt.Errorf("merge runs: %w", err)
		}
		recs[i] = r
	}
	merged, err := mergeRecords(recs)
	if err != nil {
		return nil, fmt.Errorf("merge runs: %w", err)
	}
	if err := writeMerged(out, merged, dirs); err != nil {
		return nil, fmt.Errorf("merge runs: %w", err)
	}
	return ReadRecord(out)
}

// checkMergeOut refuses an output directory that is one of the inputs: writing the merged
// timeline there would destroy that agent's before it is read.
func checkMergeOut(out string, dirs []string) error {
	o, err := os.Stat(out)
	if err != nil {
		return nil // not there yet: it cannot be an input
	}
	for _, d := range dirs {
		if in, err := os.Stat(d); err == nil && os.SameFile(o, in) {
			return fmt.Errorf("%w: --out %s is the input run %s: merge into a new directory", ErrMismatch, out, d)
		}
	}
	return nil
}

// mergeRecords checks that recs belong together and folds their meta and phase meta.
func mergeRecords(recs []*Record) (*Record, error) {
	first := recs[0]
	sum := sha256.Sum256([]byte(first.PlanSource))
	var spans [][2]float64
	m := &Record{Meta: first.Meta}
	m.RunID = first.RunID + "-merged"
	m.Share = 0
	for i, r := range recs {
		if sha256.Sum256([]byte(r.PlanSource)) != sum {
			return nil, fmt.Errorf("%w: run %d (%s) ran a different plan than run 1 (%s)", ErrMismatch, i+1, r.RunID, first.RunID)
		}
		from, to, err := parseSegmentLabel(r.Segment)
		if err != nil {
			return nil, fmt.Errorf("%w: run %s: %w", ErrBadRecord, r.RunID, err)
		}
		spans = append(spans, [2]float64{from, to})
		m.Share += r.Share
		if r.Started.Before(m.Started) {
			m.Started = r.Started
		}
		if r.Ended.After(m.Ended) {
			m.Ended = r.Ended
		}
		if r.Abort != "" && m.Abort == "" {
			m.Abort = r.Abort
		}
		mergePhases(m, r)
	}
	slices.SortFunc(spans, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(spans); i++ {
		if spans[i][0] < spans[i-1][1]-1e-9 {
			return nil, fmt.Errorf("%w: segments overlap (%g:%g and %g:%g): an arrival would count twice",
				ErrMismatch, spans[i-1][0], spans[i-1][1], spans[i][0], spans[i][1])
		}
	}
	m.Segment = segmentsLabel(spans)
	if m.Share > 1-1e-9 {
		m.Segment, m.Share = "0:1", 1
	}
	return m, nil
}

// mergePhases folds r's phases into m by name: earliest start, latest end, summed target rate.
func mergePhases(m, r *Record) {
	for _, p := range r.Phases {
		i := slices.IndexFunc(m.Phases, func(q Phase) bool { return q.Name == p.Name })
		if i < 0 {
			q := p
			q.All, q.ByOp = nil, nil
			m.Phases = append(m.Phases, q)
			continue
		}
		q := &m.Phases[i]
		q.TargetRPS += p.TargetRPS
		if p.Started.Before(q.Started) {
			q.Started = p.Started
		}
		if p.Ended.After(q.Ended) {
			q.Ended = p.Ended
		}
	}
}

// writeMerged writes the merged timeline: the merged marks first, then every agent's windows
// and fault marks, then the agents' audits as one.
func writeMerged(out string, m *Record, dirs []string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	f, err := os.Create(filepath.Join(out, TimelineFile))
	if err != nil {
		return err
	}
	defer f.Close()
	w := metrics.NewTimelineWriter(f)
	write := func(mk metrics.Mark) error { return w.Write(metrics.Entry{Kind: metrics.KindMark, Mark: &mk}) }
	if err := write(metrics.Mark{Time: m.Started, Kind: MarkRunStart, Detail: mustJSON(m.Meta)}); err != nil {
		return err
	}
	for _, p := range m.Phases {
		if err := write(metrics.Mark{Time: p.Started, Phase: p.Name, Kind: metrics.MarkPhaseStart, Name: p.Name, Detail: mustJSON(p.PhaseMeta)}); err != nil {
			return err
		}
	}
	var audits []*Audit
	for i, d := range dirs {
		// Every agent samples the same target's gauges: one agent's samples are the gauges.
		a, err := copyEntries(w, d, i)
		if err != nil {
			return err
		}
		if a != nil {
			audits = append(audits, a)
		}
	}
	if a := mergeAudits(audits); a != nil {
		if err := write(metrics.Mark{Time: m.Ended, Kind: MarkAudit, Detail: mustJSON(a)}); err != nil {
			return err
		}
	}
	for _, p := range m.Phases {
		if err := write(metrics.Mark{Time: p.Ended, Phase: p.Name, Kind: metrics.MarkPhaseEnd, Name: p.Name}); err != nil {
			return err
		}
	}
	if err := write(metrics.Mark{Time: m.Ended, Kind: MarkRunEnd, Detail: m.Abort}); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// copyEntries streams the windows and fault marks of agent i (and its gauges, if it is the
// first) into w, and returns its audit, if it recorded one: memory stays bounded by one line.
func copyEntries(w *metrics.TimelineWriter, dir string, i int) (*Audit, error) {
	f, err := os.Open(filepath.Join(dir, TimelineFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var audit *Audit
	err = metrics.ReadTimeline(f, func(e metrics.Entry) error {
		switch {
		case e.Window != nil, e.Gauge != nil && i == 0:
			return w.Write(e)
		case e.Mark == nil:
			return nil
		}
		switch e.Mark.Kind {
		case metrics.MarkFaultInject, metrics.MarkFaultRecover:
			if i > 0 { // each agent's faults apart: an injection pairs with its own agent's recovery
				m := *e.Mark
				m.Name = fmt.Sprintf("%s@agent%d", m.Name, i)
				e.Mark = &m
			}
			return w.Write(e)
		case MarkAudit:
			a, err := ParseAudit([]byte(e.Mark.Detail))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrBadRecord, err)
			}
			audit = a
		}
		return nil
	})
	return audit, err
}

// mergeAudits folds the agents' audits into one: per invariant the worst verdict any agent
// saw (false, then unknown, then true), with its detail and figures. Nil without any.
func mergeAudits(audits []*Audit) *Audit {
	if len(audits) == 0 {
		return nil
	}
	out := &Audit{Verdict: verify.CheckTrue}
	index := map[string]int{}
	for _, a := range audits {
		if verify.WorseCheck(a.Verdict, out.Verdict) {
			out.Verdict = a.Verdict
		}
		for _, c := range a.Checks {
			i, seen := index[c.Name]
			switch {
			case !seen:
				index[c.Name] = len(out.Checks)
				out.Checks = append(out.Checks, c)
			case verify.WorseCheck(c.Verdict, out.Checks[i].Verdict):
				out.Checks[i] = c
			}
		}
	}
	return out
}

// parseSegmentLabel reads a segment label: "0:1", or "a/d:b/d" as load.Segment writes it.
func parseSegmentLabel(s string) (from, to float64, err error) {
	if s == "0:1" || s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("segment %q: want a/d:b/d", s)
	}
	if from, err = parseFraction(a); err == nil {
		to, err = parseFraction(b)
	}
	if err != nil || from < 0 || to > 1 || from >= to {
		return 0, 0, fmt.Errorf("segment %q: want 0 <= from < to <= 1", s)
	}
	return from, to, nil
}

func parseFraction(s string) (float64, error) {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return strconv.ParseFloat(s, 64)
	}
	num, err1 := strconv.ParseInt(n, 10, 64)
	den, err2 := strconv.ParseInt(d, 10, 64)
	if err1 != nil || err2 != nil || den <= 0 {
		return 0, fmt.Errorf("fraction %q", s)
	}
	return float64(num) / float64(den), nil
}

func segmentsLabel(spans [][2]float64) string {
	parts := make([]string, len(spans))
	for i, s := range spans {
		parts[i] = strconv.FormatFloat(s[0], 'g', 6, 64) + ":" + strconv.FormatFloat(s[1], 'g', 6, 64)
	}
	return strings.Join(parts, ",")
}
