package chaos

import (
	"errors"
	"testing"
	"time"
)

// TestFaultValidateParams checks the figures every part of Redline relies on: none out of
// range, none that makes the fault a no-op whose evidence would still read observed.
func TestFaultValidateParams(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		action  Action
		params  Params
		wantErr error
	}{
		{"delay", KindNetwork, ActionDelay, Params{Latency: 100 * time.Millisecond, Jitter: 10 * time.Millisecond}, nil},
		{"negative latency", KindNetwork, ActionDelay, Params{Latency: -500 * time.Millisecond}, ErrInvalid},
		{"negative jitter", KindNetwork, ActionDelay, Params{Latency: time.Second, Jitter: -100 * time.Millisecond}, ErrInvalid},
		{"delay of 0", KindNetwork, ActionDelay, Params{}, ErrInvalid},
		{"negative http delay", KindHTTP, ActionDelay, Params{Latency: -400 * time.Millisecond}, ErrInvalid},
		{"latency over the limit", KindHTTP, ActionDelay, Params{Latency: 2 * LatencyMax}, ErrInvalid},
		{"loss", KindNetwork, ActionLoss, Params{LossPercent: 5}, nil},
		{"loss of 0", KindNetwork, ActionLoss, Params{}, ErrInvalid},
		{"loss over 100", KindNetwork, ActionLoss, Params{LossPercent: 101}, ErrInvalid},
		{"stress", KindStress, ActionStress, Params{CPUWorkers: 2, CPULoadPercent: 50, MemoryBytes: 1 << 20}, nil},
		{"stress of memory only", KindStress, ActionStress, Params{MemoryBytes: 1 << 20}, nil},
		{"stress of nothing", KindStress, ActionStress, Params{}, ErrInvalid},
		{"negative workers", KindStress, ActionStress, Params{CPUWorkers: -4, CPULoadPercent: 100}, ErrInvalid},
		{"workers over the limit", KindStress, ActionStress, Params{CPUWorkers: StressWorkersMax + 1, CPULoadPercent: 100}, ErrInvalid},
		{"cpu load of 0", KindStress, ActionStress, Params{CPUWorkers: 1}, ErrInvalid},
		{"memory over the limit", KindStress, ActionStress, Params{MemoryBytes: StressMemoryBytesMax + 1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Fault{Name: "f", Phase: "p", Kind: tt.kind, Action: tt.action, Duration: time.Second,
				Selector: Selector{Mode: ModeAll}, Params: tt.params}
			if err := f.Validate(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
