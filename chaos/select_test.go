package chaos

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCount(t *testing.T) {
	tests := []struct {
		name string
		sel  Selector
		n    int
		pick int // what the random draw returns
		want int
	}{
		{"one", Selector{Mode: ModeOne}, 5, 0, 1},
		{"all", Selector{Mode: ModeAll}, 5, 0, 5},
		{"fixed", Selector{Mode: ModeFixed, Value: 2}, 5, 0, 2},
		{"fixed over the matches", Selector{Mode: ModeFixed, Value: 9}, 5, 0, 5},
		{"fixed-percent rounds down", Selector{Mode: ModeFixedPercent, Value: 50}, 5, 0, 2},
		{"fixed-percent of three at 20 is none", Selector{Mode: ModeFixedPercent, Value: 20}, 3, 0, 0},
		{"fixed-percent 100", Selector{Mode: ModeFixedPercent, Value: 100}, 3, 0, 3},
		{"random-max-percent draws 40 of 5", Selector{Mode: ModeRandomMaxPercent, Value: 60}, 5, 40, 2},
		{"random-max-percent draws 0", Selector{Mode: ModeRandomMaxPercent, Value: 60}, 5, 0, 0},
		{"nothing matches", Selector{Mode: ModeAll}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bound int
			got := tt.sel.Count(tt.n, func(k int) int { bound = k; return tt.pick })
			if got != tt.want {
				t.Errorf("Count(%d) = %d, want %d", tt.n, got, tt.want)
			}
			if tt.sel.Mode == ModeRandomMaxPercent && tt.n > 0 && bound != tt.sel.Value+1 {
				t.Errorf("drew in [0, %d), want [0, %d]", bound, tt.sel.Value)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	inv := []Target{
		{Name: "a1", Labels: map[string]string{"unit": "a", "role": "primary"}},
		{Name: "a2", Labels: map[string]string{"unit": "a", "role": "standby"}},
		{Name: "b1", Labels: map[string]string{"unit": "b", "role": "primary"}},
		{Name: "b2", Labels: map[string]string{"unit": "b", "role": "standby"}},
		{Name: "router", Labels: map[string]string{"role": "router"}},
	}
	names := func(ts []Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	tests := []struct {
		name    string
		sel     Selector
		want    []string
		wantErr error
	}{
		{"labels", Selector{Labels: map[string]string{"unit": "b", "role": "primary"}, Mode: ModeAll}, []string{"b1"}, nil},
		{"in", Selector{Expressions: []Requirement{{Key: "unit", Operator: OpIn, Values: []string{"a", "b"}}}, Mode: ModeAll}, []string{"a1", "a2", "b1", "b2"}, nil},
		{"not in and exists", Selector{Expressions: []Requirement{{Key: "unit", Operator: OpExists}, {Key: "role", Operator: OpNotIn, Values: []string{"standby"}}}, Mode: ModeAll}, []string{"a1", "b1"}, nil},
		{"does not exist", Selector{Expressions: []Requirement{{Key: "unit", Operator: OpDoesNotExist}}, Mode: ModeAll}, []string{"router"}, nil},
		{"no match", Selector{Labels: map[string]string{"unit": "z"}, Mode: ModeOne}, nil, ErrNoTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(inv, tt.sel, rand.New(rand.NewPCG(1, 2)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, names(got)); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
	// one picks exactly one, and every match can be picked.
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		got, err := Select(inv, Selector{Labels: map[string]string{"unit": "a"}, Mode: ModeOne}, rng)
		if err != nil || len(got) != 1 {
			t.Fatalf("one selected %v, %v", names(got), err)
		}
		seen[got[0].Name] = true
	}
	if !seen["a1"] || !seen["a2"] {
		t.Errorf("mode one never picked some matches: %v", seen)
	}
}

func TestParseProcStat(t *testing.T) {
	line := "1234 (a (weird) name) T 1 1234 1234 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100 18446744073709551615"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(procStat{state: 'T', ppid: 1, start: 98765}, st, cmp.AllowUnexported(procStat{})); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
}
