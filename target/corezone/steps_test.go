package corezone

import "testing"

// TestLanesOfSteps: a unit's tries travel apart from its confirms and cancels, and a stress
// run's steps apart from production's and from another run's.
func TestLanesOfSteps(t *testing.T) {
	try, confirm, cancel := stepRequest{Step: "try"}, stepRequest{Step: "confirm"}, stepRequest{Step: "cancel"}
	run1 := map[string]string{"X-Redline-Run": "r1"}
	run2 := map[string]string{"X-Redline-Run": "r2"}
	same := [][2]string{
		{laneOf("a", confirm, nil), laneOf("a", cancel, nil)},
		{laneOf("a", try, run1), laneOf("a", try, map[string]string{"X-Redline-Run": "r1"})},
	}
	for _, p := range same {
		if p[0] != p[1] {
			t.Errorf("lanes %q and %q, want one", p[0], p[1])
		}
	}
	apart := [][2]string{
		{laneOf("a", try, nil), laneOf("a", confirm, nil)},
		{laneOf("a", try, nil), laneOf("b", try, nil)},
		{laneOf("a", try, nil), laneOf("a", try, run1)},
		{laneOf("a", try, run1), laneOf("a", try, run2)},
		{laneOf("a", confirm, run1), laneOf("a", try, run1)},
	}
	for _, p := range apart {
		if p[0] == p[1] {
			t.Errorf("one lane %q, want two", p[0])
		}
	}
}
