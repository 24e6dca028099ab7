package router

import (
	"net/http"
	"strings"
	"testing"

	"github.com/redline-dev/redline/shadow"
)

// TestStressMarker: a marked request reaches its unit with the plane and the normalized run id;
// an unmarked one with neither; a malformed or inconsistent marker is refused before any unit
// sees it.
func TestStressMarker(t *testing.T) {
	e := start(t)
	var planes, runs []string
	e.a1.setAnswer(func(r *http.Request, _ []byte) (int, string) {
		planes = append(planes, r.Header.Get(shadow.PlaneHeader))
		runs = append(runs, r.Header.Get(shadow.Header))
		return 200, `{}`
	})
	send := func(h http.Header) (int, string) {
		return e.doWith(t, http.MethodPost, "/v1/payments", `{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`, h)
	}
	ok := []struct {
		name      string
		h         http.Header
		plane     string
		run       string
		wantCalls int
	}{
		{"production", nil, "", "", 1},
		{"header", http.Header{shadow.Header: {"run-1"}}, "shadow", "run-1", 2},
		{"baggage", http.Header{"Baggage": {"a=b, redline.run=run-2;p"}}, "shadow", "run-2", 3},
	}
	for _, tt := range ok {
		if status, body := send(tt.h); status != 200 {
			t.Fatalf("%s: %d %s", tt.name, status, body)
		}
		if len(planes) != tt.wantCalls || planes[len(planes)-1] != tt.plane || runs[len(runs)-1] != tt.run {
			t.Errorf("%s: unit saw planes %q runs %q", tt.name, planes, runs)
		}
	}
	bad := []struct {
		name string
		h    http.Header
	}{
		{"empty", http.Header{shadow.Header: {""}}},
		{"too long", http.Header{shadow.Header: {strings.Repeat("x", shadow.RunBytesMax+1)}}},
		{"disagree", http.Header{shadow.Header: {"run-1"}, "Baggage": {"redline.run=run-2"}}},
		{"repeated", http.Header{shadow.Header: {"run-1", "run-2"}}},
		{"malformed baggage", http.Header{"Baggage": {"redline.run=a b"}}},
	}
	for _, tt := range bad {
		status, body := send(tt.h)
		if status != http.StatusBadRequest || errorCode(body) != "bad_stress_marker" {
			t.Errorf("%s: %d %s, want 400 bad_stress_marker", tt.name, status, body)
		}
	}
	if len(planes) != len(ok) {
		t.Errorf("the unit saw %d requests, want %d: refused ones must not be forwarded", len(planes), len(ok))
	}
}
