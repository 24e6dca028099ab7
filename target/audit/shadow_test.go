package audit

import (
	"testing"

	"github.com/redline-dev/redline/target/ledger"
)

func TestJudgeLeaks(t *testing.T) {
	tests := []struct {
		name    string
		leaks   map[string]int64
		missing []string
		want    ledger.Verdict
		total   int64
	}{
		{"none", map[string]int64{"a": 0, "b": 0}, nil, ledger.True, 0},
		{"a leak", map[string]int64{"a": 0, "b": 2}, nil, ledger.False, 2},
		{"a leak beside an unread replica", map[string]int64{"b": 1}, []string{"a/r1"}, ledger.False, 1},
		{"an unread replica", map[string]int64{"b": 0}, []string{"a/r1"}, ledger.Unknown, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := judgeLeaks(tt.leaks, 4, tt.missing)
			if c.Verdict != tt.want || c.Figures["stress_writes_in_production"] != tt.total || c.Name != CheckShadowLeaks {
				t.Errorf("judgeLeaks = %+v, want %s with %d", c, tt.want, tt.total)
			}
		})
	}
}
