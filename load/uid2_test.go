package load

import (
	"errors"
	"testing"
)

func TestUID2Stride(t *testing.T) {
	tests := []struct {
		name             string
		min, max, stride int64
	}{
		{"any other uid", 1, 10, 0},
		{"stride one is any other uid", 1, 10, 1},
		{"buckets of 100", 1, 100_000, 100},
		{"the smallest range a stride allows", 0, 199, 100},
		{"odd bounds", 7, 1_234, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := &Vars{UIDMin: tt.min, UIDMax: tt.max, UID2Stride: tt.stride}
			below, above := 0, 0
			for seq := range int64(20_000) {
				r := newArrivalRand(42, seq)
				var v values
				v.draw(&r, vars, usesUID|usesUID2, seq)
				if v.uid2 == v.uid || v.uid2 < tt.min || v.uid2 > tt.max {
					t.Fatalf("seq %d: uid %d, uid2 %d: want another uid within %d..%d", seq, v.uid, v.uid2, tt.min, tt.max)
				}
				if tt.stride > 1 && (v.uid2-v.uid)%tt.stride != 0 {
					t.Fatalf("seq %d: uid %d, uid2 %d: want a difference that is a multiple of %d", seq, v.uid, v.uid2, tt.stride)
				}
				if v.uid2 < v.uid {
					below++
				} else {
					above++
				}
			}
			// Partners are drawn on both sides, not always the next stride up.
			if below < 2_000 || above < 2_000 {
				t.Errorf("uid2 below uid %d times, above %d times: want both common", below, above)
			}
		})
	}
}

func TestUID2StrideNeedsTwoStrides(t *testing.T) {
	cfg := validConfig()
	cfg.Requests[0].Body = `{"from":{{uid}},"to":{{uid2}}}`
	cfg.Vars.UIDMin, cfg.Vars.UIDMax, cfg.Vars.UID2Stride = 0, 150, 100
	errs := cfg.Validate()
	if len(errs) != 1 || !errors.Is(errs[0], ErrBadVars) {
		t.Fatalf("Validate() = %v, want one ErrBadVars about the stride", errs)
	}
}

// TestUID2OffStride: a share of the draws leaves the stride by one (the next or previous
// bucket), the rest stay on it.
func TestUID2OffStride(t *testing.T) {
	tests := []struct {
		name     string
		min, max int64
		off      float64
	}{
		{"a fifth off", 0, 99_999, 0.2},
		{"all off", 1, 1_000, 1},
		{"none off", 0, 999, 0},
		{"the smallest range", 0, 199, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := &Vars{UIDMin: tt.min, UIDMax: tt.max, UID2Stride: 100, UID2OffStride: tt.off}
			const n = 20_000
			off := 0
			for seq := range int64(n) {
				r := newArrivalRand(7, seq)
				var v values
				v.draw(&r, vars, usesUID|usesUID2, seq)
				if v.uid2 == v.uid || v.uid2 < tt.min || v.uid2 > tt.max {
					t.Fatalf("seq %d: uid %d, uid2 %d: want another uid within %d..%d", seq, v.uid, v.uid2, tt.min, tt.max)
				}
				switch d := ((v.uid2-v.uid)%100 + 100) % 100; d {
				case 0:
				case 1, 99:
					off++
				default:
					t.Fatalf("seq %d: uid %d, uid2 %d: want the same bucket or a neighbour", seq, v.uid, v.uid2)
				}
			}
			if got := float64(off) / n; got < tt.off-0.02 || got > tt.off+0.02 {
				t.Errorf("%.3f of the draws off the stride, want %.2f", got, tt.off)
			}
		})
	}
	cfg := validConfig()
	cfg.Requests[0].Body = `{"from":{{uid}},"to":{{uid2}}}`
	cfg.Vars.UIDMin, cfg.Vars.UIDMax, cfg.Vars.UID2Stride, cfg.Vars.UID2OffStride = 0, 999, 0, 0.2
	if errs := cfg.Validate(); len(errs) != 1 || !errors.Is(errs[0], ErrBadVars) {
		t.Errorf("a share off no stride: Validate() = %v, want one ErrBadVars", errs)
	}
}
