package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/run"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

const planYAML = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: golden}
target: {url: "http://127.0.0.1:8080"}
peak: {rate: 100/s}
sla:
  http_req_duration: ["p(99)<50"]
  http_req_duration{phase:headroom}: ["p(95)<20"]
  http_req_failed: ["rate<0.01"]
defaults:
  requests: [{name: pay, method: POST, path: /pay, weight: 3}, {name: get, method: GET, path: /get}]
phases:
  - {name: warmup, load: {rate: 50%, duration: 10s}, judge: false}
  - {name: steady, load: {rate: 100%, duration: 10s}}
  - {name: headroom, load: {rate: 110%, duration: 10s}, judge: headroom}
`

// fakeRecord builds a record as a run of planYAML would, with latencies chosen so that steady
// passes and headroom fails its p(95) criterion.
func fakeRecord(t *testing.T) (*plan.Plan, *run.Record) {
	t.Helper()
	p, err := plan.Parse("golden.yaml", []byte(planYAML), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &run.Record{Meta: run.Meta{SchemaVersion: run.SchemaVersion, RunID: "golden-run", PlanName: "golden",
		PlanFile: "golden.yaml", PlanSource: planYAML, TargetURL: "http://127.0.0.1:8080", Segment: "0:1", Share: 1, Started: t0}}
	at := t0
	for i, ph := range p.Phases() {
		rp := run.Phase{PhaseMeta: run.PhaseMeta{Name: ph.Name, Judge: ph.Judge, Shape: ph.Shape, Scheduled: ph.Duration,
			TargetRPS: ph.TargetRPS(), PlanRPS: ph.TargetRPS(), PeakRPS: ph.Load.Profile.PeakRPS()},
			Started: at, Ended: at.Add(ph.Duration), ByOp: map[string]*metrics.Stats{}}
		n := int(ph.TargetRPS() * ph.Duration.Seconds())
		for j := range n {
			op := "pay"
			if j%4 == 3 {
				op = "get"
			}
			// 1..(5+10i) ms, spread evenly: the headroom phase (i=2) has p95 ≈ 24 ms.
			lat := time.Duration(1+j%(5+10*i)) * time.Millisecond
			intended := at.Add(time.Duration(j) * ph.Duration / time.Duration(n))
			s := metrics.Sample{Phase: ph.Name, Op: op, Intended: intended, Sent: intended.Add(100 * time.Microsecond),
				Done: intended.Add(lat), Status: 200, BytesSent: 100, BytesReceived: 50}
			if rp.ByOp[op] == nil {
				rp.ByOp[op] = metrics.NewStats()
			}
			rp.ByOp[op].Add(s)
		}
		rp.All = metrics.NewStats()
		for _, s := range rp.ByOp {
			rp.All.Merge(s)
		}
		rec.Phases = append(rec.Phases, rp)
		at = at.Add(ph.Duration)
	}
	rec.Ended = at
	return p, rec
}

func TestGoldenOutputs(t *testing.T) {
	p, rec := fakeRecord(t)
	v := run.Judge(p, rec)
	dir := t.TempDir()
	if err := WriteAll(dir, rec, v, p.PeakRPS()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ReportFile, SummaryFile, JUnitFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden."+name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s differs from %s (-want +got):\n%s", name, golden, diff)
		}
	}
}

func TestReportFigures(t *testing.T) {
	p, rec := fakeRecord(t)
	r := Build(rec, run.Judge(p, rec), p.PeakRPS())
	if got := r.Verdict.Status; got != "fail" {
		t.Errorf("verdict = %s, want fail (headroom p(95)<20 breached)", got)
	}
	steady := r.Phases[1]
	if steady.AchievedRPS != 100 || steady.Requests != 1000 || steady.Ops["pay"].Requests != 750 {
		t.Errorf("steady = %.1f/s, %d requests, %d pay; want 100/s, 1000, 750", steady.AchievedRPS, steady.Requests, steady.Ops["pay"].Requests)
	}
	if steady.Latency.P99 < 14 || steady.Latency.P99 > 15.1 {
		t.Errorf("steady p99 = %v ms, want ~15", steady.Latency.P99)
	}
	// Steady passed at 100/s; headroom failed, so it proves nothing.
	if c := r.Capacity; c.ProvenPhase != "steady" || c.ProvenRPS != 100 || c.Headroom == nil || *c.Headroom != 0 {
		t.Errorf("capacity = %+v, want proven by steady at 100/s, headroom 0 (present: exactly the peak)", c)
	}
}

// TestCapacityCountsSuccesses: a passing phase proves only the requests it served, and an
// agent's capacity is against its share of the peak.
func TestCapacityCountsSuccesses(t *testing.T) {
	p, rec := fakeRecord(t)
	v := run.Judge(p, rec)
	rec.Phases[1].All.Failed = 100 // a tenth of steady's 1,000 requests, with no criterion on them
	c := capacity(v, rec.Phases, p.PeakRPS())
	if c.ProvenRPS != 90 || c.Headroom == nil || math.Abs(*c.Headroom+0.1) > 1e-9 {
		t.Errorf("capacity = %+v, want 90/s proven (100/s achieved, a tenth failed), headroom -0.1", c)
	}
	rec.Phases[1].All.Failed = 0
	rec.Share = 0.5
	if c := Build(rec, v, p.PeakRPS()).Capacity; c.PeakRPS != 50 || c.Headroom == nil || *c.Headroom != 1 {
		t.Errorf("half an agent's capacity = %+v, want peak 50/s (its share) and headroom 1", c)
	}
}

func TestSummaryThresholdsPerKey(t *testing.T) {
	p, rec := fakeRecord(t)
	s := Summary(rec, run.Judge(p, rec))
	tests := []struct {
		key, expr string
		ok        bool
	}{
		{"http_req_duration", "p(99)<50", true},
		{"http_req_duration{phase:headroom}", "p(95)<20", false},
		{"http_req_failed", "rate<0.01", true},
	}
	for _, tt := range tests {
		m, ok := s.Metrics[tt.key]
		if !ok {
			t.Errorf("summary has no metric %s", tt.key)
			continue
		}
		if got := m.Thresholds[tt.expr]; got.OK != tt.ok {
			t.Errorf("%s %s ok = %v, want %v", tt.key, tt.expr, got.OK, tt.ok)
		}
	}
	if got := s.Metrics["http_req_duration{phase:headroom}"].Values["p(95)"]; got < 20 || got > 30 {
		t.Errorf("headroom p(95) = %v, want the headroom phase's own (~24 ms)", got)
	}
	if got := s.Metrics["http_reqs"].Values["count"]; got != 2600 {
		t.Errorf("http_reqs count = %v, want 2600", got)
	}
}

// TestSummaryReadByK6HTMLReporter renders summary.json with k6-html-reporter, a tool made for
// k6 summaries, as its users run it. scripts/test.sh installs it; elsewhere the test skips
// unless REDLINE_REQUIRE_NODE_TOOLS is set.
func TestSummaryReadByK6HTMLReporter(t *testing.T) {
	tools, _ := filepath.Abs(filepath.Join("testdata", "k6tools"))
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(tools, "node_modules", "k6-html-reporter")); err != nil || statErr != nil {
		if os.Getenv("REDLINE_REQUIRE_NODE_TOOLS") != "" {
			t.Fatalf("node or k6-html-reporter missing (npm ci --prefix %s)", tools)
		}
		t.Skip("node or k6-html-reporter not installed; scripts/test.sh installs them")
	}
	p, rec := fakeRecord(t)
	dir := t.TempDir()
	if err := WriteAll(dir, rec, run.Judge(p, rec), p.PeakRPS()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(tools, "render.js"), filepath.Join(dir, SummaryFile), filepath.Join(dir, "html"))
	cmd.Dir = tools
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("k6-html-reporter: %v\n%s", err, out.String())
	}
	html, err := os.ReadFile(filepath.Join(dir, "html", "report.html"))
	if err != nil {
		t.Fatalf("k6-html-reporter wrote no report: %v\n%s", err, out.String())
	}
	for _, want := range []string{"http_req_duration{phase:headroom}", "p(95)&lt;20", "http_reqs", "dropped_iterations"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("k6-html-reporter's page lacks %q", want)
		}
	}
	var js map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
}

// TestJUnitRunChecks: the audit's invariants are test cases of their own, so a run failed by
// its audit is red in CI's test view too, not only by its exit code.
func TestJUnitRunChecks(t *testing.T) {
	p, rec := fakeRecord(t)
	rec.Audit = &run.Audit{Verdict: "false", Checks: []run.AuditCheck{
		{Name: "money_conserved", Verdict: "true"},
		{Name: "acknowledged_present_once", Verdict: "false", Detail: "1 acknowledged payment lost"},
		{Name: "lag_drained", Verdict: "unknown", Detail: "group settlement did not answer"},
	}}
	data, err := JUnit(rec, run.Judge(p, rec))
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	last := got.Suites[len(got.Suites)-1]
	var failed []string
	for _, c := range last.Cases {
		if c.Failure != nil {
			failed = append(failed, c.Name+": "+c.Failure.Text)
		}
	}
	want := []string{"audit.acknowledged_present_once: 1 acknowledged payment lost", "audit.lag_drained: group settlement did not answer"}
	if last.Time == "" {
		t.Error("the run suite has no time: JUnit readers parse it as a number")
	}
	if last.Name != "run" || last.Tests != 3 || last.Failures != 2 || !cmp.Equal(failed, want) {
		t.Errorf("run suite %s: %d tests, %d failures %v; want run, 3, 2 %v", last.Name, last.Tests, last.Failures, failed, want)
	}
	if got.Failures < 2 {
		t.Errorf("testsuites failures = %d, want the run checks counted", got.Failures)
	}
}
