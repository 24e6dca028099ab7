package plan_test

import (
	"errors"
	"flag"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/scenarios"
	"github.com/redline-dev/redline/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestFiveMistakes(t *testing.T) {
	_, err := plan.Load("testdata/five-mistakes.yaml", plan.Options{})
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Load: %v, want a *plan.Error", err)
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, p.String())
	}
	want := []string{
		`testdata/five-mistakes.yaml:7:3: sla.http_req_duraton: unknown metric "http_req_duraton" (did you mean http_req_duration?)`,
		`testdata/five-mistakes.yaml:8:21: sla.http_req_failed[0]: aggregation not allowed: p(99) on http_req_failed, a rate metric (want rate)`,
		`testdata/five-mistakes.yaml:13:48: phases[0].load.duration: want a duration with a unit, like 30s or 2m, got the number 30`,
		`testdata/five-mistakes.yaml:14:31: phases[1].load.rate: 1100% is over the limit of 1000% of peak.rate`,
		`testdata/five-mistakes.yaml:15:12: phases[2].name: duplicate phase name "peak" (first at phases[1])`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestSummary pins the timeline summaries of the shipped plans and of testdata/ramp.yaml.
func TestSummary(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range shipped(t) {
		data, err := fs.ReadFile(scenarios.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	data, err := os.ReadFile("testdata/ramp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files["ramp.yaml"] = data
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			p, err := plan.Parse(name, data, plan.Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			golden(t, strings.TrimSuffix(name, ".yaml")+".summary", p.Summary())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func shipped(t testing.TB) []string {
	t.Helper()
	names, err := fs.Glob(scenarios.FS, "*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no shipped plans: %v", err)
	}
	return names
}

// TestShippedPlansValidate is the scenarios package's test: every shipped plan compiles as
// written, and a plan for a URL target also pointed at another one. A plan on the built-in
// target may select its processes for faults, which no other target has.
func TestShippedPlansValidate(t *testing.T) {
	for _, name := range shipped(t) {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(scenarios.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, opts := range []plan.Options{{}, {TargetURL: "https://example.test:8443/api"}} {
				if opts.TargetURL != "" && strings.Contains(string(data), "builtin:") {
					continue
				}
				p, err := plan.Parse(name, data, opts)
				if err != nil {
					t.Fatalf("Parse(%+v):\n%v", opts, err)
				}
				if p.Name()+".yaml" != name {
					t.Errorf("metadata.name %q does not match the file name %s", p.Name(), name)
				}
			}
		})
	}
}

// TestSmokeIsQuick holds smoke.yaml to its promise: under 30 s, grace periods included.
func TestSmokeIsQuick(t *testing.T) {
	data, err := fs.ReadFile(scenarios.FS, "smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse("smoke.yaml", data, plan.Options{TargetURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	total, judged := p.Duration(), 0
	for _, ph := range p.Phases() {
		total += ph.Load.GracePeriod
		if ph.Judge.Judged() {
			judged++
		}
	}
	if total >= 30*time.Second || judged == 0 || len(p.Criteria()) == 0 {
		t.Errorf("smoke: %s with grace periods, %d judged phases, %d criteria; want < 30s, some, some", total, judged, len(p.Criteria()))
	}
}

func TestCompile(t *testing.T) {
	p, err := plan.Load("testdata/ramp.yaml", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Target(), (plan.Target{Builtin: &plan.Builtin{Units: 4, Accounts: 100000}, Marker: plan.MarkerHeader}); !cmp.Equal(got, want) {
		t.Errorf("Target() = %+v, want %+v", got, want)
	}
	if p.PeakRPS() != 2000 || p.Name() != "ramp" || p.Duration() != 7*time.Minute+10*time.Second {
		t.Errorf("PeakRPS, Name, Duration = %v, %q, %v", p.PeakRPS(), p.Name(), p.Duration())
	}
	vars := load.Vars{UIDMin: 1, UIDMax: 100000, AmountMinorMin: 100, AmountMinorMax: 50000, Seed: 42}
	pay := load.Request{Name: "pay", Weight: 9, Method: "POST", URL: "/v1/payments",
		Header:       http.Header{"Idempotency-Key": {"{{uuid}}"}, "X-Run": {"{{run}}"}},
		Body:         `{"from": {{uid}}, "to": {{uid2}}, "amount": {{amount}}}`,
		ExpectStatus: []int{200, 201}}
	balance := load.Request{Name: "balance", Weight: 1, Method: "GET", URL: "/v1/accounts/{{uid}}"}
	mix := []load.Request{pay, balance}
	cfg := func(name string, pr load.Profile, reqs []load.Request, workers int, timeout time.Duration) *load.Config {
		return &load.Config{Phase: name, Profile: pr, Requests: reqs, Vars: vars, Workers: workers, Timeout: timeout, GracePeriod: timeout}
	}
	want := []plan.Phase{
		{Name: "warmup", Start: 0, Duration: 30 * time.Second, Judge: verify.JudgeOff, Shape: plan.ShapeConstant,
			Load: cfg("warmup", load.Constant(600, 30*time.Second), mix, 3000, 2*time.Second)},
		{Name: "ramp", Start: 30 * time.Second, Duration: 2 * time.Minute, Judge: verify.JudgeSLA, Shape: plan.ShapeRamp,
			Load: cfg("ramp", load.Profile{StartRPS: 200, Stages: []load.Stage{{TargetRPS: 1000, Duration: 30 * time.Second}, {TargetRPS: 2000, Duration: 30 * time.Second}, {TargetRPS: 2000, Duration: time.Minute}}}, mix, 3000, 2*time.Second)},
		{Name: "midnight", Start: 150 * time.Second, Duration: 100 * time.Second, Judge: verify.JudgeSLA, Shape: plan.ShapeSpike,
			Load: cfg("midnight", load.Spike(400, 6000, 10*time.Second, time.Minute, 30*time.Second),
				[]load.Request{{Name: "pay", Weight: 1, Method: "POST", URL: "/v1/payments", Body: "{}"}}, 8000, 2*time.Second)},
		{Name: "per-minute", Start: 250 * time.Second, Duration: time.Minute, Judge: verify.JudgeSLA, Shape: plan.ShapeConstant,
			Load: cfg("per-minute", load.Constant(100, time.Minute), mix, 3000, time.Second)},
		{Name: "headroom", Start: 310 * time.Second, Duration: 2 * time.Minute, Judge: verify.JudgeHeadroom, Shape: plan.ShapeConstant,
			Load: cfg("headroom", load.Constant(2200, 2*time.Minute), mix, 3000, 2*time.Second)},
	}
	if diff := cmp.Diff(want, p.Phases(), approx); diff != "" {
		t.Errorf("Phases() (-want +got):\n%s", diff)
	}
	var criteria []string
	for _, c := range p.Criteria() {
		criteria = append(criteria, c.String())
	}
	wantCriteria := []string{
		"http_req_duration p(99)<100", "http_req_duration p(99.9)<250", "http_req_failed rate<0.001",
		"http_req_duration{phase:headroom,op:pay} med<20", "payments_lost count==0", "consumer_lag value==0",
	}
	if diff := cmp.Diff(wantCriteria, criteria); diff != "" {
		t.Errorf("Criteria() (-want +got):\n%s", diff)
	}
	if c := p.Criteria()[2]; !c.AbortOnFail || c.DelayAbortEval != 10*time.Second {
		t.Errorf("abortOnFail criterion = %+v", c)
	}
	in := p.Input(p.Phases()[1])
	if in.Name != "ramp" || in.Judge != verify.JudgeSLA || in.PeakRPS != 2000 || math.Abs(in.TargetRPS-1525) > 1e-9 || in.Duration != 2*time.Minute {
		t.Errorf("Input(ramp) = %+v; want mean rate 1525/s", in)
	}
}

// approx compares rates that went through percent arithmetic.
var approx = cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a)) })

func TestTargetURL(t *testing.T) {
	p, err := plan.Load("testdata/ramp.yaml", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.WithTargetURL("http://127.0.0.1:9000/")
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Phases()[0].Load.Requests[1].URL; got != "http://127.0.0.1:9000/v1/accounts/{{uid}}" {
		t.Errorf("after WithTargetURL, URL = %q", got)
	}
	if q.Target().Builtin == nil || p.Target().URL != "" || p.Phases()[0].Load.Requests[1].URL != "/v1/accounts/{{uid}}" {
		t.Errorf("WithTargetURL changed the original or dropped the builtin: %+v %+v", p.Target(), q.Target())
	}
	if _, err := p.WithTargetURL("ftp://x"); !errors.Is(err, plan.ErrInvalid) {
		t.Errorf("WithTargetURL(ftp) = %v, want ErrInvalid", err)
	}

	// The built-in target's own metrics have no source on another target.
	_, err = plan.Load("testdata/ramp.yaml", plan.Options{TargetURL: "https://gw.example.test/base"})
	if err == nil || !strings.Contains(err.Error(), "sla.payments_lost: payments_lost is reported by the built-in target") ||
		!strings.Contains(err.Error(), "sla.consumer_lag: consumer_lag is reported by the built-in target") {
		t.Errorf("ramp.yaml with --target-url: %v; want its payments_lost and consumer_lag refused", err)
	}
	// Judged again after it ran, a plan keeps its own target; one without any takes where it ran.
	again, err := plan.Load("testdata/ramp.yaml", plan.Options{RanAt: "http://127.0.0.1:9000"})
	if err != nil {
		t.Errorf("ramp.yaml judged again: %v", err)
	} else if again.Target().Builtin == nil {
		t.Errorf("ramp.yaml judged again: target %+v; want the built-in target kept", again.Target())
	}
	if q, err := plan.Parse("plan.yaml", []byte(mutate(t, "target: {url: \"http://127.0.0.1:8080\"}\n", "")), plan.Options{RanAt: "http://h:1/"}); err != nil || q.Target().URL != "http://h:1" {
		t.Errorf("a plan without target judged again: %v; want the URL it ran at", err)
	}
	o := rampOnURL(t, "https://gw.example.test/base")
	if got := o.Target(); got.Builtin != nil || got.URL != "https://gw.example.test/base" {
		t.Errorf("with --target-url, Target() = %+v", got)
	}
	if got := o.Phases()[4].Load.Requests[0].URL; got != "https://gw.example.test/base/v1/payments" {
		t.Errorf("with --target-url, URL = %q", got)
	}
	got := problems(t, base, plan.Options{TargetURL: "localhost:8080"})
	if diff := cmp.Diff([]string{`plan.yaml: --target-url: want an http:// or https:// URL, got "localhost:8080"`}, got); diff != "" {
		t.Errorf("bad --target-url (-want +got):\n%s", diff)
	}
	if got := problems(t, mutate(t, "target: {url: \"http://127.0.0.1:8080\"}\n", ""), plan.Options{TargetURL: "http://h"}); got != nil {
		t.Errorf("a plan without target is valid with --target-url; got %v", got)
	}
}

// rampOnURL is testdata/ramp.yaml pointed at url, without the criteria only the built-in
// target can report.
func rampOnURL(t *testing.T, url string) *plan.Plan {
	t.Helper()
	data, err := os.ReadFile("testdata/ramp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "payments_lost") && !strings.Contains(line, "consumer_lag") {
			kept = append(kept, line)
		}
	}
	p, err := plan.Parse("testdata/ramp.yaml", []byte(strings.Join(kept, "\n")), plan.Options{TargetURL: url})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestThroughProxy: requests sent through the fault proxy keep the target's own Host header.
func TestThroughProxy(t *testing.T) {
	p := rampOnURL(t, "http://gw.example.test:8080/base")
	q, err := p.ThroughProxy("http://127.0.0.1:9000/base")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range q.Phases()[4].Load.Requests {
		if !strings.HasPrefix(r.URL, "http://127.0.0.1:9000/base/") || r.Header.Get("Host") != "gw.example.test:8080" {
			t.Errorf("through the proxy: %s with Host %q; want the proxy's URL and the target's host", r.URL, r.Header.Get("Host"))
		}
	}
	for _, r := range p.Phases()[4].Load.Requests {
		if r.Header.Get("Host") != "" {
			t.Errorf("ThroughProxy changed the original: Host %q", r.Header.Get("Host"))
		}
	}
	own, err := plan.Load("testdata/ramp.yaml", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.ThroughProxy("http://127.0.0.1:9000"); !errors.Is(err, plan.ErrInvalid) {
		t.Errorf("ThroughProxy on a target without URL = %v, want ErrInvalid", err)
	}
}

// TestPhasesIsACopy: the plan is immutable through its accessors.
func TestPhasesIsACopy(t *testing.T) {
	p, err := plan.Load("testdata/ramp.yaml", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ph := p.Phases()
	ph[0].Load.Requests[0].Header.Set("X-Run", "changed")
	ph[0].Load.Requests[0].ExpectStatus[0] = 500
	ph[1].Load.Profile.Stages[0].TargetRPS = 1
	p.Criteria()[0].Threshold.Value = 1
	p.Target().Builtin.Units = 99
	again := p.Phases()
	if again[0].Load.Requests[0].Header.Get("X-Run") != "{{run}}" || again[0].Load.Requests[0].ExpectStatus[0] != 200 ||
		again[1].Load.Profile.Stages[0].TargetRPS != 1000 || p.Criteria()[0].Threshold.Value != 100 || p.Target().Builtin.Units != 4 {
		t.Error("changing what an accessor returned changed the plan")
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := plan.Load("testdata/no-such-plan.yaml", plan.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	_, err = plan.Load("testdata", plan.Options{})
	if err == nil || errors.Is(err, plan.ErrInvalid) {
		t.Errorf("Load(directory) = %v, want a read error", err)
	}
}

func TestLimits(t *testing.T) {
	phases := func(n int) string {
		var b strings.Builder
		b.WriteString(base[:strings.Index(base, "phases:")])
		b.WriteString("phases:\n")
		for i := range n {
			b.WriteString("  - {name: p" + itoa(i) + ", load: {rate: 1/s, duration: 1s}}\n")
		}
		return b.String()
	}
	bomb := strings.Replace(base, "sla:\n", `x0: &x0 ["a","a","a","a","a","a","a","a","a","a"]
x1: &x1 [*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0]
x2: &x2 [*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1]
x3: &x3 [*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2]
x4: &x4 [*x3,*x3,*x3,*x3,*x3,*x3,*x3,*x3,*x3,*x3]
x5: &x5 [*x4,*x4,*x4,*x4,*x4,*x4,*x4,*x4,*x4,*x4]
x6: &x6 [*x5,*x5,*x5,*x5,*x5,*x5,*x5,*x5,*x5,*x5]
x7: &x7 [*x6,*x6,*x6,*x6,*x6,*x6,*x6,*x6,*x6,*x6]
x8: &x8 [*x7,*x7,*x7,*x7,*x7,*x7,*x7,*x7,*x7,*x7]
sla:
`, 1)
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"file over 1 MiB", base + "#" + strings.Repeat("x", plan.FileBytesMax-len(base)) + "\n",
			[]string{"plan.yaml: plan file is larger than 1048576 bytes (1 MiB, the limit)"}},
		{"alias bomb", bomb,
			[]string{"plan.yaml:6:22: the document expands to more than 1000000 YAML nodes (limit; aliases count each time they are used)"}},
		{"1,000 phases", phases(1000), nil},
		{"1,001 phases", phases(1001),
			[]string{"plan.yaml:13:3: phases: 1001 phases, over the limit of 1000"}},
		{"nesting", strings.Replace(base, "peak: {rate: 100/s}", "peak: {rate: 100/s}\nx: "+strings.Repeat("[", 40)+strings.Repeat("]", 40), 1),
			[]string{"plan.yaml:6:36: YAML nested deeper than 32 levels (limit)"}},
		{"body", mutate(t, "path: /}", "path: /, body: \""+strings.Repeat("b", plan.BodyBytesMax+1)+"\"}"),
			[]string{"plan.yaml:11:34: defaults.requests[0].body: 65537 bytes, over the limit of 65536"}},
		{"requests", mutate(t, "    - {name: get, path: /}\n", requests(plan.RequestsMax+1)),
			[]string{"plan.yaml:11:5: defaults.requests: 101 requests, over the limit of 100"}},
		{"stages", mutate(t, "load: {rate: 100%, duration: 10s}", "load: {stages: ["+strings.Repeat("{target: 1/s, duration: 1s},", plan.StagesMax+1)+"]}"),
			[]string{"plan.yaml:14:35: phases[1].load.stages: 101 stages, over the limit of 100"}},
		{"plan duration", mutate(t, "duration: 10s}}", "duration: 24h}}\n  - {name: a, load: {rate: 1/s, duration: 24h}}\n  - {name: b, load: {rate: 1/s, duration: 24h}}\n  - {name: c, load: {rate: 1/s, duration: 24h}}\n  - {name: d, load: {rate: 1/s, duration: 24h}}\n  - {name: e, load: {rate: 1/s, duration: 24h}}\n  - {name: f, load: {rate: 1/s, duration: 24h}}\n  - {name: g, load: {rate: 1/s, duration: 24h}}"),
			[]string{"plan.yaml:12:1: phases: the phases last 192h0m5s, over the limit of 168h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := problems(t, tt.data, plan.Options{})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// requests writes n request templates, each its own name.
func requests(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("    - {name: r" + itoa(i) + ", path: /}\n")
	}
	return b.String()
}

func TestProblemsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	for i := range 300 {
		b.WriteString("junk" + itoa(i) + ": 1\n")
	}
	got := problems(t, b.String(), plan.Options{})
	if len(got) != plan.ProblemsMax+1 || got[len(got)-1] != "plan.yaml: 200 more problems not shown (limit 100)" {
		t.Errorf("got %d problems, last %q", len(got), got[len(got)-1])
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range shipped(f) {
		data, err := fs.ReadFile(scenarios.FS, name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range []string{"testdata/ramp.yaml", "testdata/five-mistakes.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	for _, row := range badRows {
		f.Add([]byte(strings.Replace(base, row.old, row.new, 1)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := plan.Parse("fuzz.yaml", data, plan.Options{})
		if err != nil {
			var pe *plan.Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 || !errors.Is(err, plan.ErrInvalid) {
				t.Fatalf("Parse: %v is not a *plan.Error with problems", err)
			}
			return
		}
		if len(p.Phases()) == 0 || p.Summary() == "" {
			t.Fatalf("valid plan without phases or summary")
		}
		q, err := p.WithTargetURL("http://127.0.0.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		for _, ph := range q.Phases() {
			if ph.Load == nil || ph.Load.Workers < 1 || ph.Duration <= 0 || ph.Load.Profile.PeakRPS() <= 0 || len(ph.Load.Requests) == 0 {
				t.Fatalf("valid plan with a bad phase: %+v", ph)
			}
			cfg := *ph.Load
			cfg.Vars.RunID = "run-1"
			if v, ok := any(cfg).(validator); ok {
				if errs := v.Validate(); len(errs) > 0 {
					t.Fatalf("valid plan, but load refuses phase %s: %v", ph.Name, errs)
				}
			}
		}
	})
}

// validator is load.Config's own check, when the load package has one: the plan compiler and
// the generator must agree on what is valid (assertions on both sides of the boundary).
type validator interface{ Validate() []error }

func TestCompiledConfigsSatisfyLoad(t *testing.T) {
	sources := map[string][]byte{}
	for _, name := range shipped(t) {
		data, err := fs.ReadFile(scenarios.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		sources[name] = data
	}
	data, err := os.ReadFile("testdata/ramp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sources["ramp.yaml"] = data
	for name, data := range sources {
		p, err := plan.Parse(name, data, plan.Options{})
		if err == nil && p.Target().URL == "" {
			p, err = p.WithTargetURL("http://127.0.0.1:8080") // as the runner does once the target is up
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ph := range p.Phases() {
			cfg := *ph.Load
			cfg.Vars.RunID = "run-1" // the runner's to set
			v, ok := any(cfg).(validator)
			if !ok {
				t.Skip("load.Config has no Validate method in this tree")
			}
			for _, err := range v.Validate() {
				t.Errorf("%s: phase %s: load refuses the compiled config: %v", name, ph.Name, err)
			}
		}
	}
}
