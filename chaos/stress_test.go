package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStressLimits checks that the stress limits bound a fault over all the targets it
// selects: every stressor runs inside Redline's process.
func TestStressLimits(t *testing.T) {
	targets := []Target{{Name: "a", Via: ViaProcess, Labels: map[string]string{"x": "1"}}, {Name: "b", Via: ViaProcess, Labels: map[string]string{"x": "1"}}}
	tests := []struct {
		name    string
		workers int
		mode    Mode
		want    string // the records' phase
		detail  string // in a refused record's error
	}{
		{"within the limits on two targets", 32, ModeAll, PhaseRecovered, ""},
		{"within the limits on one of two targets", 40, ModeOne, PhaseRecovered, ""},
		{"over the limits on two targets", 40, ModeAll, PhaseNotInjected, "(2 targets × 40 cpu workers and 0 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStressor()
			o := New(Options{Executors: map[Via]Executor{ViaHost: s}, Inventory: staticInventory(targets)})
			f := Fault{Name: "s", Phase: "p", Kind: KindStress, Action: ActionStress, Duration: 300 * time.Millisecond,
				Selector: Selector{Mode: tt.mode}, Params: Params{CPUWorkers: tt.workers, CPULoadPercent: 1}}
			recs := o.RunPhase(context.Background(), time.Now(), []Fault{f})
			if len(recs) == 0 {
				t.Fatal("no record")
			}
			for _, r := range recs {
				if r.Phase != tt.want || !strings.Contains(r.Error, tt.detail) {
					t.Errorf("%s: %s (%q), want %s with %q", r.ID, r.Phase, r.Error, tt.want, tt.detail)
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.running) != 0 {
				t.Errorf("stressors still running: %v", s.running)
			}
		})
	}
}

// TestStressorSharesTheLimits checks that stresses running at once, of one fault or several,
// share the limits: the one that would take the sum over them is refused.
func TestStressorSharesTheLimits(t *testing.T) {
	s := NewStressor()
	ctx := context.Background()
	f := Fault{Name: "s", Phase: "p", Kind: KindStress, Action: ActionStress, Duration: time.Second,
		Selector: Selector{Mode: ModeOne}, Params: Params{CPUWorkers: 40, CPULoadPercent: 1}}
	var undos []Undo
	for i, name := range []string{"a", "b"} {
		tg := Target{Name: name, Via: ViaProcess}
		u, err := s.Plan(f, tg)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Inject(ctx, f, tg, u)
		switch {
		case i == 0 && err != nil:
			t.Fatalf("first stress: %v", err)
		case i == 1 && !errors.Is(err, ErrInvalid):
			t.Errorf("second stress: err = %v, want ErrInvalid (80 workers at once)", err)
		}
		undos = append(undos, u)
	}
	for _, u := range undos {
		if err := s.Recover(ctx, u); err != nil {
			t.Error(err)
		}
	}
	// With the first recovered, the same stress fits again.
	tg := Target{Name: "c", Via: ViaProcess}
	u, _ := s.Plan(f, tg)
	if err := s.Inject(ctx, f, tg, u); err != nil {
		t.Errorf("a stress after the others recovered: %v", err)
	}
	if err := s.Recover(ctx, u); err != nil {
		t.Error(err)
	}
}
