package verify

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseGuard(t *testing.T) {
	tests := []struct {
		in      string
		key     string
		expr    string
		dur     time.Duration
		wantErr bool
	}{
		{in: "http_req_failed rate>0.2 for 10s", key: "http_req_failed", expr: "rate>0.2", dur: 10 * time.Second},
		{in: "  http_req_duration{op:pay} p(99) > 500  ", key: "http_req_duration{op:pay}", expr: "p(99) > 500"},
		{in: "http_req_duration{phase:kill, op:pay} p(99)>500 for 1m", key: "http_req_duration{phase:kill,op:pay}", expr: "p(99)>500", dur: time.Minute},
		{in: "http_req_failed", wantErr: true},
		{in: "http_req_failed p(99)>1", wantErr: true},                 // a rate metric has no percentile
		{in: "http_req_failed rate>0.2 for ever", wantErr: true},       // not a duration
		{in: "http_req_failed rate>0.2 for 2h", wantErr: true},         // over GuardForMax
		{in: "http_req_faild rate>0.2", wantErr: true},                 // unknown metric
		{in: "http_req_failed{op:pay rate>0.2 for 10s", wantErr: true}, // unclosed tags
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := ParseGuard(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadGuard) {
					t.Fatalf("err = %v, want ErrBadGuard", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{g.Key.String(), g.Breach.String(), g.For}
			if diff := cmp.Diff([]any{tt.key, tt.expr, tt.dur}, got); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGuardStep(t *testing.T) {
	g, err := ParseGuard("http_req_failed rate>0.2 for 3s")
	if err != nil {
		t.Fatal(err)
	}
	bad := phase("p", load{n: 100, failed: 50})
	good := phase("p", load{n: 100, failed: 1})
	empty := phase("p", load{})
	for _, w := range []*PhaseInput{&bad, &good, &empty} {
		w.Duration = time.Second
	}
	steps := []struct {
		window PhaseInput
		trips  bool
	}{
		{bad, false}, {bad, false}, {good, false}, // a good second resets the breach
		{bad, false}, {empty, false}, // no data resets it too
		{bad, false}, {bad, false}, {bad, true}, // three bad seconds in a row
	}
	var st GuardState
	for i, s := range steps {
		var tripped bool
		st, tripped = g.Step(st, s.window, time.Duration(i+1)*time.Second)
		if tripped != s.trips {
			t.Fatalf("second %d: tripped %v, want %v (state %+v)", i+1, tripped, s.trips, st)
		}
	}
	if want := "phase p: abortWhen http_req_failed rate>0.2 for 3s: observed 0.5 for 3s"; g.Reason("p", st) != want {
		t.Errorf("reason %q, want %q", g.Reason("p", st), want)
	}
}

func TestFaultWithoutEvidenceIsInvalid(t *testing.T) {
	p := phase("kill", load{n: 1000})
	p.Faults = []FaultCheck{{Name: "kill@b1", Evidence: true}, {Name: "lag@settlement", Detail: "the target answered 404"}}
	v := Judge([]PhaseInput{p}, nil)
	pv := v.Phases[0]
	if pv.Status != StatusInvalid || pv.Validity.Faults != 2 || pv.Validity.FaultsWithoutEvidence != 1 {
		t.Fatalf("phase verdict %+v, validity %+v", pv, pv.Validity)
	}
	want := []string{"fault lag@settlement: no evidence that it took effect (the target answered 404)"}
	if diff := cmp.Diff(want, pv.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}
