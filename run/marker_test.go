package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/verify"
)

// TestRequestsCarryTheMarker: every request of a run carries the run id as the plan's
// target.marker says, and none with marker off.
func TestRequestsCarryTheMarker(t *testing.T) {
	for _, tt := range []struct {
		marker, header, want string
	}{
		{"header", "X-Redline-Run", "run-7"},
		{"baggage", "Baggage", "redline.run=run-7"},
		{`"off"`, "X-Redline-Run", ""},
	} {
		var mu sync.Mutex
		seen := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.Header.Get(tt.header)]++
			mu.Unlock()
		}))
		p, src := planFor(t, srv, strings.Replace(twoPhases, `target: {url: "http://127.0.0.1:1"}`,
			`target: {url: "http://127.0.0.1:1", marker: `+tt.marker+`}`, 1))
		if _, err := Run(context.Background(), p, Options{RunID: "run-7", OutDir: t.TempDir(), PlanSource: src}); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if len(seen) != 1 || seen[tt.want] == 0 {
			t.Errorf("marker %s: the server saw %s values %v, want only %q", tt.marker, tt.header, seen, tt.want)
		}
	}
}

// TestShadowLeaksJudged: the target's leak count, sampled during a phase, is the phase's
// shadow_leaks.
func TestShadowLeaksJudged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p, src := builtinPlanFor(t, srv, strings.Replace(twoPhases, `  http_req_failed: ["rate<0.5"]`,
		`  http_req_failed: ["rate<0.5"]
  shadow_leaks: ["count==0"]`, 1))
	var calls int
	leaks := func(context.Context) ([]metrics.Gauge, error) {
		calls++
		v := 0.0
		if calls > 2 { // a leak in the hot phase
			v = 1
		}
		return []metrics.Gauge{{Name: ShadowLeaksGauge, Value: v}}, nil
	}
	rec, err := Run(context.Background(), p, Options{RunID: "leaks", OutDir: t.TempDir(), PlanSource: src, Gauges: leaks})
	if err != nil {
		t.Fatal(err)
	}
	v := Judge(p, rec)
	if v.Status != verify.StatusFail {
		t.Fatalf("verdict %s, want fail", v.Status)
	}
	found := false
	for _, ph := range v.Phases {
		for _, c := range ph.Criteria {
			if ph.Phase == "hot" && c.Metric == string(verify.ShadowLeaks) {
				found = true
				if c.OK || c.Observed == nil || *c.Observed != 1 {
					t.Errorf("hot phase shadow_leaks: %+v", c)
				}
			}
		}
	}
	if !found {
		t.Errorf("no shadow_leaks criterion in the hot phase: %+v", v.Phases)
	}
	if _, err := Run(context.Background(), p, Options{RunID: "bad run id", OutDir: t.TempDir(), PlanSource: src}); err == nil {
		t.Error("a run id that is not a valid marker ran")
	}
}

// TestShadowLeakAborts: with abortOnFail, the first sample that shows a stress write in
// production stops the run there, with the reason, instead of at the phase's end.
func TestShadowLeakAborts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	long := strings.Replace(twoPhases, `{rate: 100%, duration: 2s}`, `{rate: 100%, duration: 30s}`, 1)
	p, src := builtinPlanFor(t, srv, strings.Replace(long, `  http_req_failed: ["rate<0.5"]`,
		`  http_req_failed: ["rate<0.5"]
  shadow_leaks: [{threshold: "count==0", abortOnFail: true}]`, 1))
	var calls int
	leaks := func(context.Context) ([]metrics.Gauge, error) {
		calls++
		v := 0.0
		if calls > 3 { // a leak early in the hot phase
			v = 1
		}
		return []metrics.Gauge{{Name: ShadowLeaksGauge, Value: v}}, nil
	}
	began := time.Now()
	rec, err := Run(context.Background(), p, Options{RunID: "leak-abort", OutDir: t.TempDir(), PlanSource: src, Gauges: leaks})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Abort, "shadow_leaks") {
		t.Fatalf("abort %q, want the shadow_leaks criterion", rec.Abort)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the run took %v: the leak did not stop the 30 s phase", took)
	}
	if v := Judge(p, rec); v.Status != verify.StatusAborted {
		t.Errorf("verdict %s, want aborted", v.Status)
	}
}

// TestGuardOnASampledGauge: an abortWhen guard on the target's consumer lag trips from the
// gauges sampled each second, like a criterion with abortOnFail does.
func TestGuardOnASampledGauge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	long := strings.Replace(twoPhases, `{rate: 100%, duration: 2s}`, `{rate: 100%, duration: 30s}`, 1)
	p, src := builtinPlanFor(t, srv, strings.Replace(long, "defaults:", "abortWhen: \"consumer_lag value>100 for 1s\"\ndefaults:", 1))
	lagging := func(context.Context) ([]metrics.Gauge, error) {
		return []metrics.Gauge{{Name: ConsumerLagGauge + "settlement", Value: 500}}, nil
	}
	began := time.Now()
	rec, err := Run(context.Background(), p, Options{RunID: "lag-guard", OutDir: t.TempDir(), PlanSource: src, Gauges: lagging})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Abort, "abortWhen consumer_lag value>100 for 1s: observed 500") {
		t.Fatalf("abort %q, want the consumer_lag guard", rec.Abort)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the run took %v: the guard did not stop it", took)
	}
}
