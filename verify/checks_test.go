package verify

import (
	"testing"
)

func TestWithChecks(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		checks []RunCheck
		want   Status
	}{
		{"all true keeps a pass", StatusPass, []RunCheck{{Name: "a", Result: CheckTrue}}, StatusPass},
		{"a false check fails a pass", StatusPass, []RunCheck{{Name: "a", Result: CheckFalse}}, StatusFail},
		{"a false check fails an invalid run", StatusInvalid, []RunCheck{{Name: "a", Result: CheckFalse}}, StatusFail},
		{"unknown makes a pass invalid", StatusPass, []RunCheck{{Name: "a", Result: CheckUnknown}}, StatusInvalid},
		{"a garbled result is unknown", StatusPass, []RunCheck{{Name: "a", Result: "maybe"}}, StatusInvalid},
		{"unknown leaves a failure failed", StatusFail, []RunCheck{{Name: "a", Result: CheckUnknown}}, StatusFail},
		{"aborted stays aborted", StatusAborted, []RunCheck{{Name: "a", Result: CheckFalse}}, StatusAborted},
		{"no checks change nothing", StatusPass, nil, StatusPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Verdict{Status: tt.status, Reasons: []string{"before"}}.WithChecks(tt.checks)
			if got.Status != tt.want {
				t.Errorf("status = %s, want %s (reasons %v)", got.Status, tt.want, got.Reasons)
			}
			if len(got.Checks) != len(tt.checks) {
				t.Errorf("checks = %v, want %v", got.Checks, tt.checks)
			}
		})
	}
}
