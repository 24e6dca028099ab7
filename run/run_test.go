package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/verify"
)

// planFor compiles a plan whose target is srv.
func planFor(t *testing.T, srv *httptest.Server, yaml string) (*plan.Plan, []byte) {
	t.Helper()
	src := []byte(strings.TrimSpace(yaml) + "\n")
	p, err := plan.Parse("test.yaml", src, plan.Options{TargetURL: srv.URL})
	if err != nil {
		t.Fatalf("parse plan: %v", err)
	}
	return p, src
}

// builtinPlanFor compiles a plan for the built-in target (whose metrics a test's Gauges
// stand in for) and points it at srv, as the runner does once the target is up.
func builtinPlanFor(t *testing.T, srv *httptest.Server, yaml string) (*plan.Plan, []byte) {
	t.Helper()
	const url = `target: {url: "http://127.0.0.1:1"}`
	if !strings.Contains(yaml, url) {
		t.Fatalf("the plan has no %s", url)
	}
	src := []byte(strings.TrimSpace(strings.Replace(yaml, url, `target: {builtin: {units: 1, accounts: 10}}`, 1)) + "\n")
	p, err := plan.Parse("test.yaml", src, plan.Options{})
	if err != nil {
		t.Fatalf("parse plan: %v", err)
	}
	if p, err = p.WithTargetURL(srv.URL); err != nil {
		t.Fatal(err)
	}
	return p, src
}

const twoPhases = `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: two}
target: {url: "http://127.0.0.1:1"}
peak: {rate: 200/s}
sla:
  http_req_duration: ["p(99)<1000"]
  http_req_failed: ["rate<0.5"]
defaults:
  timeout: 2s
  requests: [{name: get, method: GET, path: /x}]
phases:
  - {name: warm, load: {rate: 50%, duration: 1s}, judge: false}
  - {name: hot, load: {rate: 100%, duration: 2s}}
`

func TestRunWritesARecordThatReadsBackTheSame(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	p, src := planFor(t, srv, twoPhases)
	dir := t.TempDir()

	rec, err := Run(context.Background(), p, Options{RunID: "r1", OutDir: dir, PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Abort != "" {
		t.Fatalf("Abort = %q, want none", rec.Abort)
	}
	if len(rec.Phases) != 2 || !rec.Phases[0].Ran() || !rec.Phases[1].Ran() {
		t.Fatalf("phases = %+v, want two that ran", rec.Phases)
	}
	// 100/s for 1 s, then 200/s for 2 s: 500 arrivals, all sent.
	var total int64
	for _, ph := range rec.Phases {
		total += ph.All.Requests + ph.All.Dropped
	}
	if total != 500 || hits.Load() != rec.Phases[0].All.Requests+rec.Phases[1].All.Requests {
		t.Errorf("arrivals = %d (server saw %d), want 500, every sent one seen", total, hits.Load())
	}

	back, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, ph := range rec.Phases {
		got, want := back.Phases[i], ph
		if got.Name != want.Name || got.All.Requests != want.All.Requests || got.All.Dropped != want.All.Dropped ||
			got.All.Latency.Percentile(99) != want.All.Latency.Percentile(99) {
			t.Errorf("phase %s read back = %d req, %d dropped, p99 %v; live %d, %d, %v", ph.Name,
				got.All.Requests, got.All.Dropped, got.All.Latency.Percentile(99),
				want.All.Requests, want.All.Dropped, want.All.Latency.Percentile(99))
		}
	}
	live, again := Judge(p, rec), Judge(p, back)
	if live.Status != verify.StatusPass || again.Status != live.Status {
		t.Errorf("verdict live %s %v, read back %s %v; want pass twice", live.Status, live.Reasons, again.Status, again.Reasons)
	}
	if back.PlanSource != string(src) || back.RunID != "r1" || back.Share != 1 {
		t.Errorf("meta read back = %+v", back.Meta)
	}
}

func TestRunAbortsOnAbortOnFail(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: abort}
target: {url: "http://127.0.0.1:1"}
sla:
  http_req_failed: [{threshold: "rate<0.1", abortOnFail: true}]
defaults:
  requests: [{name: get, method: GET, path: /}]
phases:
  - {name: first, load: {rate: 100/s, duration: 20s}}
  - {name: never, load: {rate: 100/s, duration: 20s}}
`)
	start := time.Now()
	rec, err := Run(context.Background(), p, Options{RunID: "r2", OutDir: t.TempDir(), PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("run took %v: the abort did not stop it", elapsed)
	}
	if !strings.Contains(rec.Abort, "http_req_failed") || rec.Phases[1].Ran() {
		t.Errorf("Abort = %q, second phase ran = %v; want an abort naming the criterion, no second phase", rec.Abort, rec.Phases[1].Ran())
	}
	if v := Judge(p, rec); v.Status != verify.StatusAborted {
		t.Errorf("verdict = %s, want aborted", v.Status)
	}
}

func TestRunInterruptedStillWritesTheTimeline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, twoPhases)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	rec, err := Run(ctx, p, Options{RunID: "r3", OutDir: dir, PlanSource: src})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Abort != AbortInterrupted {
		t.Errorf("Abort = %q, want %q", rec.Abort, AbortInterrupted)
	}
	back, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Abort != AbortInterrupted || back.Phases[0].All.Requests == 0 {
		t.Errorf("read back abort %q with %d requests, want interrupted with some", back.Abort, back.Phases[0].All.Requests)
	}
}

func TestReadRecordRefusesDamage(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"window first", `{"kind":"mark","mark":{"kind":"phase_start","detail":"{}"}}`},
		{"bad meta", `{"kind":"mark","mark":{"kind":"run_start","detail":"{"}}`},
		{"future schema", `{"kind":"mark","mark":{"kind":"run_start","detail":"{\"schema_version\":99}"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, TimelineFile), []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadRecord(dir); err == nil {
				t.Fatal("ReadRecord = nil error, want one")
			}
		})
	}
}

// TestTimelineIsWrittenAsWindowsClose: a run killed mid-way (no chance to flush at its end)
// leaves every second it measured in the file.
func TestTimelineIsWrittenAsWindowsClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: long}
target: {url: "http://127.0.0.1:1"}
defaults:
  requests: [{name: get, method: GET, path: /x}]
phases:
  - {name: long, load: {rate: 20/s, duration: 60s}}
`)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, p, Options{RunID: "w1", OutDir: dir, PlanSource: src})
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, TimelineFile))
		if strings.Contains(string(b), `"kind":"run_start"`) && strings.Contains(string(b), `"kind":"window"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s into the run the timeline holds %d bytes and no window", len(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunThatCannotStartChangesNothing: a metrics address in use fails the run before it
// touches the directory's earlier run.
func TestRunThatCannotStartChangesNothing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, twoPhases)
	dir := t.TempDir()
	earlier := filepath.Join(dir, TimelineFile)
	if err := os.WriteFile(earlier, []byte("an earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), p, Options{RunID: "m1", OutDir: dir, PlanSource: src,
		MetricsAddr: srv.Listener.Addr().String()})
	if err == nil {
		t.Fatal("Run with a metrics address in use = nil error")
	}
	if b, _ := os.ReadFile(earlier); string(b) != "an earlier run\n" {
		t.Errorf("the failed start left the timeline as %q", b)
	}
}

// TestAgentsJudgedOnTheArrivalsTheyOwn: three agents share 21 arrivals unevenly (the striping
// gives 9, 6 and 6), and each is valid: judged against what it was due to send, not a third.
func TestAgentsJudgedOnTheArrivalsTheyOwn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: thirds}
target: {url: "http://127.0.0.1:1"}
defaults:
  requests: [{name: get, method: GET, path: /x}]
phases:
  - {name: only, load: {rate: 7/s, duration: 3s}}
`)
	errs := make(chan error, 3)
	recs := make([]*Record, 3)
	for i := range 3 {
		go func() {
			var err error
			recs[i], err = Run(context.Background(), p, Options{RunID: "s" + strconv.Itoa(i), OutDir: t.TempDir(),
				PlanSource: src, Segment: load.Segment{FromNum: int64(i), ToNum: int64(i + 1), Den: 3}})
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	total := int64(0)
	for i, rec := range recs {
		total += rec.Phases[0].All.Requests
		if v := Judge(p, rec); v.Status != verify.StatusPass {
			t.Errorf("agent %d/3 sent %d requests: verdict %s %v", i, rec.Phases[0].All.Requests, v.Status, v.Reasons)
		}
	}
	if total != 21 {
		t.Errorf("the agents sent %d requests, want 21", total)
	}
}

// TestReadRecordOfAnUnfinishedRun: a timeline cut before its run_end mark (Redline killed) is
// read as an aborted run that ended at its last entry, never as one with a zero end.
func TestReadRecordOfAnUnfinishedRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, twoPhases)
	dir := t.TempDir()
	if _, err := Run(context.Background(), p, Options{RunID: "u1", OutDir: dir, PlanSource: src}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, TimelineFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	cut := strings.Join(lines[:len(lines)/2], "") // somewhere in the run: no run_end
	if err := os.WriteFile(path, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Abort != AbortUnfinished || !rec.Ended.After(rec.Started) {
		t.Errorf("read back abort %q, span %s..%s; want unfinished and a positive span", rec.Abort, rec.Started, rec.Ended)
	}
	for _, ph := range rec.Phases {
		if ph.Ran() && ph.Ended.Before(ph.Started) {
			t.Errorf("phase %s ends before it starts", ph.Name)
		}
	}
	if v := Judge(p, rec); v.Status != verify.StatusAborted {
		t.Errorf("verdict %s, want aborted", v.Status)
	}
}
