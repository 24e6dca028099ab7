// Package reports renders a finished run: the capacity report (report.json), k6's end-of-test
// summary (summary.json), JUnit (junit.xml). Every output is a function of the run's record and
// its verdict, so `redline report DIR` renders them again from the run directory.
package reports

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/verify"
)

// Output file names in a run directory: part of the CLI contract.
const (
	ReportFile  = "report.json"
	SummaryFile = "summary.json"
	JUnitFile   = "junit.xml"
)

// Report is report.json: the capacity report. Its shape is versioned by run.SchemaVersion and
// documented field by field in the README.
type Report struct {
	SchemaVersion int            `json:"schema_version"`
	RunID         string         `json:"run_id"`
	Plan          PlanEcho       `json:"plan"`
	TargetURL     string         `json:"target_url"`
	Segment       string         `json:"segment"`
	Started       time.Time      `json:"started"`
	Ended         time.Time      `json:"ended"`
	DurationMS    float64        `json:"duration_ms"`
	Abort         string         `json:"abort,omitempty"`
	Phases        []PhaseReport  `json:"phases"`
	Capacity      *Capacity      `json:"capacity"`
	Audit         *run.Audit     `json:"audit"`  // the target's audit after the run; null for a URL target
	Faults        []FaultReport  `json:"faults"` // every fault on every target, with its evidence
	Verdict       verify.Verdict `json:"verdict"`
}

// PlanEcho identifies the plan that ran.
type PlanEcho struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// PhaseReport is one phase's figures.
type PhaseReport struct {
	Name        string           `json:"name"`
	Judge       verify.JudgeMode `json:"judge"`
	Shape       string           `json:"shape"`
	Ran         bool             `json:"ran"`
	Started     *time.Time       `json:"started,omitempty"`
	Ended       *time.Time       `json:"ended,omitempty"`
	ScheduledMS float64          `json:"scheduled_ms"`
	TargetRPS   float64          `json:"target_rps"`
	PeakRPS     float64          `json:"peak_rps"`
	Figures
	Ops map[string]Figures `json:"ops,omitempty"`
	// Gauges are the target's sampled gauges in the phase (consumer_lag.<group>, ...): samples,
	// min, max and the last value.
	Gauges map[string]*run.GaugeStats `json:"gauges,omitempty"`
}

// Figures are the measurements of a phase or of one operation in it.
type Figures struct {
	OfferedRPS    float64          `json:"offered_rps"`  // arrivals (sent or dropped) per scheduled second
	AchievedRPS   float64          `json:"achieved_rps"` // completed requests per scheduled second
	Requests      int64            `json:"requests"`
	Failed        int64            `json:"failed"`
	FailedRate    float64          `json:"failed_rate"`
	Dropped       int64            `json:"dropped"`
	BytesSent     int64            `json:"bytes_sent"`
	BytesReceived int64            `json:"bytes_received"`
	Latency       Latency          `json:"latency_ms"`       // from the intended send time: what users saw
	ServiceTime   Latency          `json:"service_time_ms"`  // from the actual send time
	SendLateness  Latency          `json:"send_lateness_ms"` // actual minus intended send time
	Statuses      map[string]int64 `json:"statuses"`
	Errors        map[string]int64 `json:"errors"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Capacity is what the run proved about the target's capacity: the highest rate a judged phase
// sustained within the SLA, and that rate against the plan's expected peak.
type Capacity struct {
	// ProvenRPS is the highest rate of successful requests (completed and not failed) of a
	// judged phase that passed.
	ProvenRPS   float64 `json:"proven_rps"`
	ProvenPhase string  `json:"proven_phase,omitempty"` // the phase that proved it
	// PeakRPS is the plan's expected peak; for one agent of several, its share of it.
	PeakRPS float64 `json:"peak_rps,omitempty"`
	// Headroom is proven / peak - 1 (0.1 is 10% above the peak, 0 exactly the peak); absent
	// without a peak or a proven rate.
	Headroom *float64 `json:"headroom,omitempty"`
}

// Build assembles the report of a record and its verdict. peakRPS is the plan's expected peak.
func Build(rec *run.Record, v verify.Verdict, peakRPS float64) Report {
	sum := sha256.Sum256([]byte(rec.PlanSource))
	r := Report{
		SchemaVersion: run.SchemaVersion,
		RunID:         rec.RunID,
		Plan:          PlanEcho{Name: rec.PlanName, File: rec.PlanFile, SHA256: hex.EncodeToString(sum[:])},
		TargetURL:     rec.TargetURL,
		Segment:       rec.Segment,
		Started:       rec.Started,
		Ended:         rec.Ended,
		DurationMS:    ms(rec.Ended.Sub(rec.Started)),
		Abort:         rec.Abort,
		Phases:        make([]PhaseReport, 0, len(rec.Phases)),
		Verdict:       v,
		Audit:         rec.Audit,
	}
	for _, p := range rec.Phases {
		r.Phases = append(r.Phases, phaseReport(p))
	}
	r.Faults = faultReports(rec.Faults)
	r.Capacity = capacity(v, rec.Phases, peakRPS*rec.ShareOfPlan())
	return r
}

func phaseReport(p run.Phase) PhaseReport {
	pr := PhaseReport{
		Name: p.Name, Judge: p.Judge, Shape: p.Shape, Ran: p.Ran(),
		ScheduledMS: ms(p.Scheduled), TargetRPS: p.TargetRPS, PeakRPS: p.PeakRPS,
	}
	if !p.Ran() {
		pr.Figures = figures(metrics.NewStats(), p.Scheduled)
		return pr
	}
	started, ended := p.Started, p.Ended
	pr.Started, pr.Ended = &started, &ended
	pr.Figures = figures(p.All, p.Scheduled)
	pr.Gauges = p.Gauges
	pr.Ops = make(map[string]Figures, len(p.ByOp))
	for op, s := range p.ByOp {
		pr.Ops[op] = figures(s, p.Scheduled)
	}
	return pr
}

func figures(s *metrics.Stats, scheduled time.Duration) Figures {
	f := Figures{
		Requests: s.Requests, Failed: s.Failed, FailedRate: s.FailedRate(), Dropped: s.Dropped,
		BytesSent: s.BytesSent, BytesReceived: s.BytesReceived,
		Latency: latency(s.Latency), ServiceTime: latency(s.Service), SendLateness: latency(s.Lateness),
		Statuses: s.Statuses, Errors: s.Errors,
	}
	if secs := scheduled.Seconds(); secs > 0 {
		f.OfferedRPS = float64(s.Arrivals()) / secs
		f.AchievedRPS = float64(s.Requests) / secs
	}
	return f
}

func latency(h *metrics.Histogram) Latency {
	return Latency{
		Min: ms(h.Min()), Mean: ms(h.Mean()), P50: ms(h.Percentile(50)), P90: ms(h.Percentile(90)),
		P95: ms(h.Percentile(95)), P99: ms(h.Percentile(99)), P999: ms(h.Percentile(99.9)), Max: ms(h.Max()),
	}
}

// capacity is what the passing judged phases proved: a rate counts only its successful
// requests, so a phase that passed with failures (no criterion on them) proves no more than
// what it served.
func capacity(v verify.Verdict, phases []run.Phase, peakRPS float64) *Capacity {
	c := &Capacity{PeakRPS: peakRPS}
	for _, pv := range v.Phases {
		if pv.Status != verify.StatusPass || pv.Validity == nil {
			continue
		}
		rps := pv.Validity.AchievedRPS
		if i := slices.IndexFunc(phases, func(p run.Phase) bool { return p.Name == pv.Phase }); i >= 0 && phases[i].All != nil {
			rps *= 1 - phases[i].All.FailedRate()
		}
		if rps > c.ProvenRPS {
			c.ProvenRPS, c.ProvenPhase = rps, pv.Phase
		}
	}
	if peakRPS > 0 && c.ProvenRPS > 0 {
		h := c.ProvenRPS/peakRPS - 1
		c.Headroom = &h
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteAll writes report.json, summary.json and junit.xml into dir.
func WriteAll(dir string, rec *run.Record, v verify.Verdict, peakRPS float64) error {
	r := Build(rec, v, peakRPS)
	if err := writeJSON(filepath.Join(dir, ReportFile), r); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, SummaryFile), Summary(rec, v)); err != nil {
		return err
	}
	data, err := JUnit(rec, v)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, JUnitFile), data)
}

func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // thresholds read "p(99)<100", not "p(99)\u003c100"
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFile(path, buf.Bytes())
}

// writeFile replaces path atomically: a reader never sees half a report.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
