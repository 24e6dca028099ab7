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
