package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// load is a phase's worth of samples: n completed requests, failed of them failed, each
// latency long (from the intended time) and sent late after it, plus dropped arrivals.
type load struct {
	n, failed, dropped int
	latency, late      time.Duration
}

func (l load) stats() *metrics.Stats {
	s := metrics.NewStats()
	t0 := time.Unix(1_700_000_000, 0)
	for i := range l.n {
		s.Add(metrics.Sample{
			Intended: t0, Sent: t0.Add(l.late), Done: t0.Add(l.latency),
			Status: 200, Failed: i < l.failed, BytesSent: 100, BytesReceived: 1000,
		})
	}
	s.Dropped = int64(l.dropped)
	return s
}

// phase is a judged phase of 10 s at 100/s that received l.
func phase(name string, l load) PhaseInput {
	s := l.stats()
	return PhaseInput{Name: name, Judge: JudgeSLA, TargetRPS: 100, Duration: 10 * time.Second,
		All: s, ByOp: map[string]*metrics.Stats{"get": s}}
}

func criterion(t *testing.T, key, expr string) Criterion {
	t.Helper()
	k, err := ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	th, err := ParseThreshold(expr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCriterion(k, th)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var healthy = load{n: 1000, latency: 50 * time.Millisecond, late: time.Millisecond}

func TestJudge(t *testing.T) {
	type row struct {
		name    string
		phases  []PhaseInput
		sla     [][2]string
		status  Status
		phase   []Status
		reasons []string
	}
	tests := []row{
		{
			name:    "pass",
			phases:  []PhaseInput{phase("steady", healthy)},
			sla:     [][2]string{{"http_req_duration", "p(99)<100"}, {"http_req_failed", "rate<0.01"}},
			status:  StatusPass,
			phase:   []Status{StatusPass},
			reasons: []string{"1 judged phase passed, 2 criteria held"},
		},
		{
			name:    "latency over the threshold fails",
			phases:  []PhaseInput{phase("steady", load{n: 1000, latency: 150 * time.Millisecond})},
			sla:     [][2]string{{"http_req_duration", "p(99)<100"}},
			status:  StatusFail,
			phase:   []Status{StatusFail},
			reasons: []string{"phase steady: http_req_duration p(99)<100: observed 150.015 ms"},
		},
		{
			name: "warmup is not judged",
			phases: []PhaseInput{
				{Name: "warmup", Judge: JudgeOff, All: load{n: 10, latency: time.Second}.stats(), Duration: time.Second},
				phase("steady", healthy),
			},
			sla:     [][2]string{{"http_req_duration", "p(99)<100"}},
			status:  StatusPass,
			phase:   []Status{StatusSkipped, StatusPass},
			reasons: []string{"1 judged phase passed, 1 criterion held"},
		},
		{
			name:    "a rate with no requests is no data, which fails",
			phases:  []PhaseInput{phase("steady", load{})},
			sla:     [][2]string{{"http_req_failed", "rate<0.01"}},
			status:  StatusInvalid,
			phase:   []Status{StatusInvalid},
			reasons: []string{"phase steady: achieved 0/s, 0% of the target 100/s (at least 97% needed)", "phase steady: http_req_failed rate<0.01: no data"},
		},
		{
			name:    "reserved metric without a source is no data",
			phases:  []PhaseInput{phase("steady", healthy)},
			sla:     [][2]string{{"payments_lost", "count==0"}},
			status:  StatusFail,
			phase:   []Status{StatusFail},
			reasons: []string{"phase steady: payments_lost count==0: no data"},
		},
		{
			name:    "short rate is invalid, not a pass",
			phases:  []PhaseInput{phase("steady", load{n: 960, latency: time.Millisecond})},
			sla:     [][2]string{{"http_req_duration", "p(99)<100"}},
			status:  StatusInvalid,
			phase:   []Status{StatusInvalid},
			reasons: []string{"phase steady: achieved 96/s, 96% of the target 100/s (at least 97% needed)"},
		},
		{
			name:    "97% is enough",
			phases:  []PhaseInput{phase("steady", load{n: 970, latency: time.Millisecond})},
			status:  StatusPass,
			phase:   []Status{StatusPass},
			reasons: []string{"1 judged phase passed, 0 criteria held"},
		},
		{
			name:    "drops over 1% are invalid",
			phases:  []PhaseInput{phase("steady", load{n: 1000, dropped: 11, latency: time.Millisecond})},
			status:  StatusInvalid,
			phase:   []Status{StatusInvalid},
			reasons: []string{"phase steady: dropped 11 of 1011 arrivals, 1.088% (at most 1% allowed)"},
		},
		{
			name:    "a judged phase that did not run makes the run invalid",
			phases:  []PhaseInput{phase("steady", healthy), {Name: "peak", Judge: JudgeSLA, TargetRPS: 100, Duration: time.Second}},
			status:  StatusInvalid,
			phase:   []Status{StatusPass, StatusSkipped},
			reasons: []string{"phase peak: did not run"},
		},
		{
			name:    "a failure outranks invalidity",
			phases:  []PhaseInput{phase("a", load{n: 1000, failed: 500, latency: time.Millisecond}), phase("b", load{n: 10})},
			sla:     [][2]string{{"http_req_failed", "rate<0.01"}},
			status:  StatusFail,
			phase:   []Status{StatusFail, StatusInvalid},
			reasons: []string{"phase a: http_req_failed rate<0.01: observed 0.5", "phase b: achieved 1/s, 1% of the target 100/s (at least 97% needed)"},
		},
		{
			name:    "nothing judged is invalid",
			phases:  []PhaseInput{{Name: "warmup", Judge: JudgeOff}},
			status:  StatusInvalid,
			phase:   []Status{StatusSkipped},
			reasons: []string{"no phase was judged: nothing was verified"},
		},
		{
			name:    "scoped criterion judges its phase only",
			phases:  []PhaseInput{phase("a", healthy), phase("b", load{n: 1000, latency: time.Second})},
			sla:     [][2]string{{"http_req_duration{phase:a}", "p(99)<100"}},
			status:  StatusPass,
			phase:   []Status{StatusPass, StatusPass},
			reasons: []string{"2 judged phases passed, 1 criterion held"},
		},
		{
			name:    "criterion scoped to a missing phase",
			phases:  []PhaseInput{phase("a", healthy)},
			sla:     [][2]string{{"http_req_duration{phase:b}", "p(99)<100"}},
			status:  StatusInvalid,
			phase:   []Status{StatusPass},
			reasons: []string{`criterion http_req_duration{phase:b} p(99)<100: phase "b" is not a judged phase of this run`},
		},
		{
			name:    "op without samples is no data",
			phases:  []PhaseInput{phase("a", healthy)},
			sla:     [][2]string{{"http_req_duration{op:pay}", "p(99)<100"}, {"http_req_duration{op:get}", "p(99)<100"}},
			status:  StatusFail,
			phase:   []Status{StatusFail},
			reasons: []string{"phase a: http_req_duration{op:pay} p(99)<100: no data"},
		},
		{
			name:    "counter rate is per second",
			phases:  []PhaseInput{phase("a", healthy)},
			sla:     [][2]string{{"http_reqs", "rate>=100"}, {"http_reqs", "count==1000"}, {"data_received", "rate==100000"}, {"dropped_iterations", "count==0"}},
			status:  StatusPass,
			phase:   []Status{StatusPass},
			reasons: []string{"1 judged phase passed, 4 criteria held"},
		},
		{
			name:    "service time and lateness are separate trends",
			phases:  []PhaseInput{phase("a", load{n: 1000, latency: 80 * time.Millisecond, late: 60 * time.Millisecond})},
			sla:     [][2]string{{"http_req_service_duration", "max<30"}, {"http_req_send_lateness", "min>=60"}, {"http_req_duration", "med>70"}},
			status:  StatusPass,
			phase:   []Status{StatusPass},
			reasons: []string{"1 judged phase passed, 3 criteria held"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var criteria []Criterion
			for _, kv := range tt.sla {
				criteria = append(criteria, criterion(t, kv[0], kv[1]))
			}
			got := Judge(tt.phases, criteria)
			var statuses []Status
			for _, p := range got.Phases {
				statuses = append(statuses, p.Status)
			}
			if diff := cmp.Diff(tt.status, got.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.phase, statuses); diff != "" {
				t.Errorf("phase statuses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.reasons, got.Reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudgeExternal(t *testing.T) {
	p := phase("a", healthy)
	p.External = map[Metric]float64{PaymentsLost: 0, ConsumerLag: 12, AuditViolations: math.NaN()}
	criteria := []Criterion{
		criterion(t, "payments_lost", "count==0"),
		criterion(t, "consumer_lag", "value==0"),
		criterion(t, "payments_duplicated", "count==0"),
		criterion(t, "audit_violations", "count==0"),
		criterion(t, "payments_lost", "rate==0"),
	}
	got := Judge([]PhaseInput{p}, criteria)
	want := []string{
		"phase a: consumer_lag value==0: observed 12",
		"phase a: payments_duplicated count==0: no data",
		"phase a: audit_violations count==0: no data",
	}
	if diff := cmp.Diff(want, got.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestWithAbort(t *testing.T) {
	v := Judge([]PhaseInput{phase("a", healthy)}, nil).WithAbort("signal")
	if v.Status != StatusAborted || v.Reasons[0] != "aborted: signal" || v.Phases[0].Status != StatusPass {
		t.Errorf("WithAbort: %+v", v)
	}
}

func TestNewCriterion(t *testing.T) {
	tests := []struct {
		key, expr string
		want      error
	}{
		{"http_req_duration", "p(99)<1", nil},
		{"http_req_duration", "avg<1", nil},
		{"http_req_duration", "rate<1", ErrAggregation},
		{"http_req_duration", "count<1", ErrAggregation},
		{"http_req_failed", "rate<0.1", nil},
		{"http_req_failed", "count<1", ErrAggregation},
		{"http_reqs", "count>1", nil},
		{"http_reqs", "rate>1", nil},
		{"http_reqs", "p(99)>1", ErrAggregation},
		{"consumer_lag", "value==0", nil},
		{"consumer_lag", "max==0", ErrAggregation},
		{"payments_lost{phase:x}", "count==0", nil},
	}
	for _, tt := range tests {
		k, err := ParseKey(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		th, err := ParseThreshold(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewCriterion(k, th); !errors.Is(err, tt.want) {
			t.Errorf("NewCriterion(%s, %s) = %v, want %v", tt.key, tt.expr, err, tt.want)
		}
	}
}

func TestCatalogue(t *testing.T) {
	for _, m := range Catalogue() {
		if len(m.Type.Aggregations()) == 0 {
			t.Errorf("%s: type %q allows no aggregation", m.Name, m.Type)
		}
		if m.Source == SourceLoad && m.count == nil && m.ratio == nil && m.histogram == nil {
			t.Errorf("%s: load metric without an observer", m.Name)
		}
		if m.Source == SourceTarget && !m.Reserved {
			t.Errorf("%s: target metric not marked reserved", m.Name)
		}
	}
}

func TestCheckAbort(t *testing.T) {
	abortRate := criterion(t, "http_req_failed", "rate<0.1")
	abortRate.AbortOnFail, abortRate.DelayAbortEval = true, 5*time.Second
	judgedOnly := criterion(t, "http_req_duration", "p(99)<1")
	bad := phase("a", load{n: 100, failed: 50, latency: time.Millisecond})

	tests := []struct {
		name    string
		running PhaseInput
		elapsed time.Duration
		want    bool
	}{
		{"breach after the delay", bad, 6 * time.Second, true},
		{"breach before the delay", bad, 4 * time.Second, false},
		{"no data yet", phase("a", load{}), 6 * time.Second, false},
		{"healthy", phase("a", healthy), 6 * time.Second, false},
		{"not judged", PhaseInput{Name: "w", Judge: JudgeOff, All: bad.All}, 6 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.running.Duration = tt.elapsed
			a, got := CheckAbort(tt.running, []Criterion{judgedOnly, abortRate})
			if got != tt.want {
				t.Fatalf("CheckAbort = %v (%+v), want %v", got, a, tt.want)
			}
			if got && a.Reason() != "phase a: http_req_failed rate<0.1 (abortOnFail): observed 0.5" {
				t.Errorf("Reason() = %q", a.Reason())
			}
		})
	}
}

// TestVerdictJSON pins the report.json shape of a verdict: update with -update.
func TestVerdictJSON(t *testing.T) {
	peak := phase("headroom", load{n: 1100, failed: 1, latency: 40 * time.Millisecond})
	peak.Judge, peak.TargetRPS, peak.PeakRPS = JudgeHeadroom, 110, 100
	peak.ByOp = map[string]*metrics.Stats{"pay": peak.All}
	pay := criterion(t, "http_req_duration{phase:headroom,op:pay}", "p(99)<100")
	pay.AbortOnFail = true
	v := Judge([]PhaseInput{
		{Name: "warmup", Judge: JudgeOff, Duration: 5 * time.Second},
		phase("steady", load{n: 1000, dropped: 20, latency: 30 * time.Millisecond}),
		peak,
	}, []Criterion{
		criterion(t, "http_req_duration", "p(99)<100"),
		criterion(t, "http_req_failed", "rate<0.01"),
		pay,
	})
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	golden(t, "verdict.json", got.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
	if !bytes.Equal(want, got) {
		t.Log("run go test -update to accept")
	}
}
