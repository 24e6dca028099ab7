package run

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/verify"
)

// MarkAudit is the mark that carries the target's audit after the run.
const MarkAudit = "audit"

// Audit is the target's audit after a run, as its admin API answers it: one result per
// invariant (true, false or unknown) with a detail and the figures behind it.
type Audit struct {
	Verdict string       `json:"verdict"`
	Checks  []AuditCheck `json:"checks"`
}

// AuditCheck is one invariant of the audit.
type AuditCheck struct {
	Name    string           `json:"name"`
	Verdict string           `json:"verdict"`
	Detail  string           `json:"detail"`
	Figures map[string]int64 `json:"figures"`
}

// auditFigures maps the audit's figures to the verify metrics that plans may judge.
var auditFigures = map[verify.Metric]string{
	verify.PaymentsLost:       "lost_acknowledged",
	verify.PaymentsDuplicated: "committed_not_once",
	verify.ShadowLeaks:        "stress_writes_in_production",
}

// ParseAudit reads an audit answer; anything without a verdict and checks is an error.
func ParseAudit(data []byte) (*Audit, error) {
	var a Audit
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("parse audit: %w", err)
	}
	if a.Verdict == "" || len(a.Checks) == 0 {
		return nil, fmt.Errorf("parse audit: %w: no verdict or no checks", ErrBadRecord)
	}
	return &a, nil
}

// AppendAudit records the audit in the run directory's timeline (so that verify and report
// judge it again) and in rec.
func AppendAudit(dir string, rec *Record, a *Audit) error {
	f, err := os.OpenFile(filepath.Join(dir, TimelineFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("record audit: %w", err)
	}
	defer f.Close()
	w := metrics.NewTimelineWriter(f)
	m := metrics.Mark{Time: time.Now(), Kind: MarkAudit, Detail: mustJSON(a)}
	if err := w.Write(metrics.Entry{Kind: metrics.KindMark, Mark: &m}); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record audit: %w", err)
	}
	rec.Audit = a
	rec.Marks = append(rec.Marks, m)
	return nil
}

// checks are the audit's invariants as run checks for the verdict.
func (a *Audit) checks() []verify.RunCheck {
	out := make([]verify.RunCheck, 0, len(a.Checks))
	for _, c := range a.Checks {
		out = append(out, verify.RunCheck{Name: "audit." + c.Name, Result: c.Verdict, Detail: c.Detail})
	}
	return out
}

// external returns the values of the target-reported metrics the audit provides: the same for
// every phase, since the audit runs once, after the last one. An audit metric whose figure is
// absent or whose check is unknown has no data.
func (a *Audit) external() map[verify.Metric]float64 {
	out := map[verify.Metric]float64{}
	violations := 0
	known := true
	for _, c := range a.Checks {
		switch c.Verdict {
		case verify.CheckFalse:
			violations++
		case verify.CheckTrue:
		default:
			known = false
		}
		for m, figure := range auditFigures {
			if v, ok := c.Figures[figure]; ok && c.Verdict != verify.CheckUnknown {
				out[m] += float64(v)
			}
		}
	}
	if known || violations > 0 {
		out[verify.AuditViolations] = float64(violations)
	}
	return out
}
