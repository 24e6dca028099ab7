package nearest

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	metrics := []string{"http_reqs", "http_req_failed", "http_req_duration", "iterations"}
	tests := []struct {
		name, in string
		want     string
	}{
		{"one letter missing", "http_req_duraton", "http_req_duration"},
		{"case is ignored", "HTTP_REQS", "http_reqs"},
		{"the nearest, not the first", "http_req", "http_reqs"},
		{"too far", "latency", ""},
		{"exact", "iterations", "iterations"},
		{"over the length bound", strings.Repeat("x", 100), ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Name(tt.in, metrics); got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
