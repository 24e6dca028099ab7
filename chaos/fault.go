// Package chaos injects faults while a rehearsal's load runs, and always takes them back.
//
// The design follows Chaos Mesh: a fault implementation (an Executor) acts on one Target; the
// Orchestrator selects targets with a Selector and a Mode, schedules each fault at its offset in
// a phase, checks that it took effect (Evidence), recovers it at its deadline, and keeps a
// Record per target (phase, injected and recovered counts, events). The vocabulary is Chaos
// Mesh's (PodChaos, NetworkChaos, StressChaos, HTTPChaos) plus Redline's ConsumerChaos; the
// Chaos Mesh types themselves live in chaos/mesh only, which decodes, validates and exports
// them, so that this package stays light.
//
// Every injection is written to a Journal (fsynced JSON lines) before it happens, and every
// recovery after, so that Recover can undo what a crashed run left behind. Recovery runs on
// context.WithoutCancel with its own timeout: cancelling a run never skips it.
package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kind is a fault's family, named as Chaos Mesh names its resources.
type Kind string

// Kinds.
const (
	KindPod      Kind = "PodChaos"
	KindNetwork  Kind = "NetworkChaos"
	KindStress   Kind = "StressChaos"
	KindHTTP     Kind = "HTTPChaos"
	KindConsumer Kind = "ConsumerChaos" // Redline's own: no Chaos Mesh kind throttles a consumer
)

// Kinds lists every kind, in the order documentation shows them.
func Kinds() []Kind { return []Kind{KindPod, KindNetwork, KindStress, KindHTTP, KindConsumer} }

// Action is what a fault of a kind does. Actions are Chaos Mesh's strings; (Kind, Action) names
// a fault, since NetworkChaos and HTTPChaos both have a delay.
type Action string

// Actions.
const (
	ActionPodKill       Action = "pod-kill"       // SIGKILL; one-shot
	ActionPodFailure    Action = "pod-failure"    // SIGSTOP until recovery, then SIGCONT
	ActionContainerKill Action = "container-kill" // SIGKILL of the process; one-shot
	ActionDelay         Action = "delay"          // NetworkChaos and HTTPChaos
	ActionLoss          Action = "loss"
	ActionPartition     Action = "partition"
	ActionBandwidth     Action = "bandwidth"
	ActionStress        Action = "stress" // StressChaos has no action in Chaos Mesh; this is its name here
	ActionAbort         Action = "abort"  // HTTPChaos
	ActionThrottle      Action = "throttle"
)

// Limits of a fault.
const (
	// DurationMax bounds every fault's duration: its recovery deadline can never be later.
	DurationMax = 24 * time.Hour
	// OneShotDeadline is the recovery deadline of a one-shot fault (pod-kill): how long the
	// orchestrator keeps it open for evidence before recording it recovered.
	OneShotDeadline = 5 * time.Second
	// LatencyMax bounds an added latency or jitter.
	LatencyMax = time.Minute
	// StressWorkersMax bounds the CPU burners of a StressChaos; StressMemoryBytesMax its memory.
	// They bound the fault as a whole, over every target it selects (see Fault.CheckTargets),
	// and every stress Redline runs at once: all of them run inside Redline's own process.
	StressWorkersMax     = 64
	StressMemoryBytesMax = 4 << 30
	// NameBytesMax bounds a fault's name.
	NameBytesMax = 63
)

// Errors of this package.
var (
	ErrInvalid      = errors.New("invalid fault")
	ErrNoExecutor   = errors.New("no executor for this fault on this target")
	ErrNoTarget     = errors.New("no target matches the selector")
	ErrGone         = errors.New("target process is gone")
	ErrProtected    = errors.New("no fault may act on Redline, its ancestors or init")
	ErrUnsupported  = errors.New("the target does not support this fault")
	ErrBadJournal   = errors.New("bad chaos journal")
	ErrNotRecovered = errors.New("fault not recovered")
)

// Fault is one fault of a plan's phase: what to do, to which targets, when and for how long.
type Fault struct {
	// Name is unique in the plan: the phase's name and the fault's index unless the plan names it.
	Name   string `json:"name"`
	Phase  string `json:"phase"`
	Kind   Kind   `json:"kind"`
	Action Action `json:"action"`
	// At is the offset of the injection from the phase's start; Duration how long the fault
	// lasts (0 for a one-shot fault: pod-kill, container-kill).
	At       time.Duration `json:"at_ns"`
	Duration time.Duration `json:"duration_ns"`
	Selector Selector      `json:"selector"`
	Params   Params        `json:"params"`
	// Spec is the Chaos Mesh spec as the plan wrote it, defaulted and validated by Chaos Mesh's
	// own rules (chaos/mesh), for export; nil for ConsumerChaos.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Params are the figures of a fault; each action reads its own.
type Params struct {
	Latency time.Duration `json:"latency_ns,omitempty"` // delay: added latency
	Jitter  time.Duration `json:"jitter_ns,omitempty"`  // delay: its variation
	// LossPercent is the share of connections that lose every packet: TCP-level proxies cannot
	// drop single packets, so loss is emulated per connection.
	LossPercent float64 `json:"loss_percent,omitempty"`
	// PartitionReject refuses connections instead of dropping their packets (Chaos Mesh's
	// partitionBehavior: reject).
	PartitionReject bool  `json:"partition_reject,omitempty"`
	BandwidthBPS    int64 `json:"bandwidth_bytes_per_s,omitempty"`
	CPUWorkers      int   `json:"cpu_workers,omitempty"`
	CPULoadPercent  int   `json:"cpu_load_percent,omitempty"`
	MemoryBytes     int64 `json:"memory_bytes,omitempty"`
	// Group is the consumer group a ConsumerChaos throttles; RatePerSecond or Percent (of its
	// normal rate) is what it may still consume.
	Group         string  `json:"group,omitempty"`
	RatePerSecond float64 `json:"rate_per_s,omitempty"`
	Percent       float64 `json:"percent,omitempty"`
}

// OneShot reports whether the fault acts once and has nothing to undo (a kill).
func (f Fault) OneShot() bool {
	return f.Kind == KindPod && (f.Action == ActionPodKill || f.Action == ActionContainerKill)
}

// Deadline is when, from the phase's start, the fault must be recovered at the latest.
func (f Fault) Deadline() time.Duration {
	if f.OneShot() {
		return f.At + OneShotDeadline
	}
	return f.At + f.Duration
}

// Validate checks what every part of Redline relies on: a known kind and action, a duration
// within limits, a selector that can select. Chaos Mesh's own rules run in chaos/mesh.
func (f Fault) Validate() error {
	switch {
	case f.Name == "" || len(f.Name) > NameBytesMax:
		return fmt.Errorf("%w: name %q: want 1 to %d bytes", ErrInvalid, f.Name, NameBytesMax)
	case !knownAction(f.Kind, f.Action):
		return fmt.Errorf("%w: %s has no action %q here", ErrInvalid, f.Kind, f.Action)
	case f.At < 0 || f.Duration < 0:
		return fmt.Errorf("%w: negative at or duration", ErrInvalid)
	case f.Duration > DurationMax:
		return fmt.Errorf("%w: duration %s over the limit of %s", ErrInvalid, f.Duration, DurationMax)
	}
	if err := f.Params.check(f.Kind, f.Action); err != nil {
		return err
	}
	return f.Selector.Validate()
}

// check refuses figures that are out of range, or that would make the fault do nothing while
// its evidence reads "observed": a delay of 0, a loss of 0%, a stress that burns and holds
// nothing.
func (p Params) check(k Kind, a Action) error {
	switch {
	case p.Latency < 0 || p.Jitter < 0:
		return fmt.Errorf("%w: negative latency or jitter", ErrInvalid)
	case p.Latency > LatencyMax || p.Jitter > LatencyMax:
		return fmt.Errorf("%w: latency or jitter over the limit of %s", ErrInvalid, LatencyMax)
	case a == ActionDelay && p.Latency == 0:
		return fmt.Errorf("%w: a delay needs a latency above 0", ErrInvalid)
	case a == ActionLoss && (p.LossPercent <= 0 || p.LossPercent > 100):
		return fmt.Errorf("%w: loss %g%%: want above 0 and at most 100", ErrInvalid, p.LossPercent)
	case p.CPUWorkers < 0 || p.CPUWorkers > StressWorkersMax || p.MemoryBytes < 0 || p.MemoryBytes > StressMemoryBytesMax:
		return fmt.Errorf("%w: stress out of range (1..%d workers, up to %d bytes)", ErrInvalid, StressWorkersMax, StressMemoryBytesMax)
	case k == KindStress && p.CPUWorkers == 0 && p.MemoryBytes == 0:
		return fmt.Errorf("%w: a stress with no cpu workers and no memory does nothing", ErrInvalid)
	case p.CPUWorkers > 0 && (p.CPULoadPercent <= 0 || p.CPULoadPercent > 100):
		return fmt.Errorf("%w: cpu load %d%%: want above 0 and at most 100", ErrInvalid, p.CPULoadPercent)
	}
	return nil
}

// CheckTargets checks the fault on n targets at once against the limits. A StressChaos runs its
// stressors on every target it selects, as Chaos Mesh runs them in every selected pod; here
// they all run inside Redline's own process on one machine, so the limits bound the whole
// fault: n × workers and n × memory.
func (f Fault) CheckTargets(n int) error {
	if f.Kind != KindStress || n <= 0 {
		return nil
	}
	if err := CheckStress(n*f.Params.CPUWorkers, int64(n)*f.Params.MemoryBytes); err != nil {
		return fmt.Errorf("%w (%d targets × %d cpu workers and %s)", err, n, f.Params.CPUWorkers, mib(f.Params.MemoryBytes))
	}
	return nil
}

// CheckStress checks what stresses hold at once in Redline's process against the limits.
func CheckStress(workers int, memoryBytes int64) error {
	switch {
	case workers > StressWorkersMax:
		return fmt.Errorf("%w: stress of %d cpu workers in Redline's process, over the limit of %d", ErrInvalid, workers, StressWorkersMax)
	case memoryBytes > StressMemoryBytesMax:
		return fmt.Errorf("%w: stress of %s of memory in Redline's process, over the limit of %s", ErrInvalid, mib(memoryBytes), mib(StressMemoryBytesMax))
	}
	return nil
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', -1, 64) + " MiB" }

// knownAction is the one place that says which actions each kind has here.
func knownAction(k Kind, a Action) bool {
	switch k {
	case KindPod:
		return a == ActionPodKill || a == ActionPodFailure || a == ActionContainerKill
	case KindNetwork:
		return a == ActionDelay || a == ActionLoss || a == ActionPartition || a == ActionBandwidth
	case KindStress:
		return a == ActionStress
	case KindHTTP:
		return a == ActionAbort || a == ActionDelay
	case KindConsumer:
		return a == ActionThrottle
	}
	return false
}

// Actions returns the actions a kind has here.
func Actions(k Kind) []Action {
	var out []Action
	for _, a := range []Action{ActionPodKill, ActionPodFailure, ActionContainerKill, ActionDelay, ActionLoss,
		ActionPartition, ActionBandwidth, ActionStress, ActionAbort, ActionThrottle} {
		if knownAction(k, a) {
			out = append(out, a)
		}
	}
	return out
}

// String names the fault for people: "unit-kill-0 (PodChaos pod-kill)".
func (f Fault) String() string { return fmt.Sprintf("%s (%s %s)", f.Name, f.Kind, f.Action) }
