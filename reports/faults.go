package reports

import (
	"time"

	"github.com/redline-dev/redline/run"
)

// FaultReport is one fault on one target in report.json: what it was, where, when it was
// scheduled, injected and recovered, and the evidence that it took effect.
type FaultReport struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Phase      string            `json:"phase"`
	Kind       string            `json:"kind"`
	Action     string            `json:"action"`
	Selector   string            `json:"selector"`
	Target     string            `json:"target,omitempty"` // absent when nothing was selected
	Labels     map[string]string `json:"target_labels,omitempty"`
	Status     string            `json:"status"` // Recovered, Failed, NotInjected, or Injected (left by a crash)
	AtMS       float64           `json:"at_ms"`  // offset in its phase
	DurationMS float64           `json:"duration_ms"`
	Scheduled  time.Time         `json:"scheduled"`
	Injected   *time.Time        `json:"injected,omitempty"`
	Recovered  *time.Time        `json:"recovered,omitempty"`
	LatenessMS float64           `json:"lateness_ms"` // injection start minus its scheduled time
	Evidence   EvidenceReport    `json:"evidence"`
	Error      string            `json:"error,omitempty"`
	Events     []EventReport     `json:"events"`
	Recoveries int               `json:"recovered_count"`
	Injections int               `json:"injected_count"`
}

// EvidenceReport is what showed that a fault took effect, and after how long.
type EvidenceReport struct {
	Status     string  `json:"status"` // observed, missing, unknown
	LatencyMS  float64 `json:"latency_ms"`
	Detail     string  `json:"detail,omitempty"`
	FailoverMS float64 `json:"failover_ms,omitempty"` // the built-in target's failover after a kill
}

// EventReport is one step of a fault's record.
type EventReport struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Message string    `json:"message,omitempty"`
}

func faultReports(recs []run.FaultRecord) []FaultReport {
	out := make([]FaultReport, 0, len(recs))
	for _, r := range recs {
		fr := FaultReport{
			ID: r.ID, Name: r.Fault.Name, Phase: r.Fault.Phase, Kind: string(r.Fault.Kind), Action: string(r.Fault.Action),
			Selector: r.Fault.Selector.String(), Status: r.Phase, AtMS: ms(r.Fault.At), DurationMS: ms(r.Fault.Duration),
			Scheduled: r.Scheduled, Injected: r.Injected, Recovered: r.Recovered, LatenessMS: ms(r.Lateness),
			Evidence: EvidenceReport{Status: r.Evidence.Status, LatencyMS: ms(r.Evidence.Latency),
				Detail: r.Evidence.Detail, FailoverMS: r.Evidence.FailoverMS},
			Error: r.Error, Events: make([]EventReport, 0, len(r.Events)), Injections: r.InjectedCount, Recoveries: r.RecoveredCount,
		}
		for _, e := range r.Events {
			fr.Events = append(fr.Events, EventReport{Time: e.Time, Type: e.Type, Message: e.Message})
		}
		if r.Target != nil {
			fr.Target, fr.Labels = r.Target.Name, r.Target.Labels
		}
		out = append(out, fr)
	}
	return out
}
