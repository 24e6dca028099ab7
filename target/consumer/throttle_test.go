package consumer

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestThrottleBody: a throttle sets exactly one limit in its range; {} is not a pause, and a
// percent beside a rate is refused, not silently preferred.
func TestThrottleBody(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		ok    bool
		limit float64 // with no unthrottled history, a percent is of 1 event per second
	}{
		{"a rate", `{"rate_per_s":5}`, true, 5},
		{"a pause", `{"rate_per_s":0}`, true, 0},
		{"a percent", `{"percent":10}`, true, 0.1},
		{"all of it", `{"percent":100}`, true, 1},
		{"nothing", `{}`, false, 0},
		{"zero percent", `{"percent":0}`, false, 0},
		{"both", `{"rate_per_s":5,"percent":10}`, false, 0},
		{"negative rate", `{"rate_per_s":-1}`, false, 0},
		{"rate over max", `{"rate_per_s":1000001}`, false, 0},
		{"percent over 100", `{"percent":100.5}`, false, 0},
		{"negative percent", `{"percent":-3}`, false, 0},
		{"null rate", `{"rate_per_s":null}`, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var th Throttle
			if err := json.Unmarshal([]byte(tt.body), &th); err != nil {
				t.Fatal(err)
			}
			thr := newThrottle()
			err := thr.apply(th)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, errBadThrottle)) {
				t.Fatalf("apply(%s) = %v, want ok %v", tt.body, err, tt.ok)
			}
			set, limit := thr.state()
			if !tt.ok {
				if set != nil {
					t.Errorf("a refused throttle was set: %+v", set)
				}
				return
			}
			if limit != tt.limit {
				t.Errorf("limit %v, want %v", limit, tt.limit)
			}
		})
	}
}
