package plan_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/plan"
)

// base is a valid plan; each bad row changes one thing in it. Its lines, for reading rows:
//
//	 1 apiVersion: redline/v1
//	 2 kind: Rehearsal
//	 3 metadata: {name: base}
//	 4 target: {url: "http://127.0.0.1:8080"}
//	 5 peak: {rate: 100/s}
//	 6 sla:
//	 7   http_req_duration: ["p(99)<100"]
//	 8   http_req_failed: ["rate<0.01"]
//	 9 defaults:
//	10   requests:
//	11     - {name: get, path: /}
//	12 phases:
//	13   - {name: warmup, load: {rate: 50%, duration: 5s}, judge: false}
//	14   - {name: steady, load: {rate: 100%, duration: 10s}}
const base = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: base}
target: {url: "http://127.0.0.1:8080"}
peak: {rate: 100/s}
sla:
  http_req_duration: ["p(99)<100"]
  http_req_failed: ["rate<0.01"]
defaults:
  requests:
    - {name: get, path: /}
phases:
  - {name: warmup, load: {rate: 50%, duration: 5s}, judge: false}
  - {name: steady, load: {rate: 100%, duration: 10s}}
`

// mutate returns base with old replaced by new, failing when old is not in base exactly once.
func mutate(t testing.TB, old, new string) string {
	t.Helper()
	if strings.Count(base, old) != 1 {
		t.Fatalf("%q is not in base exactly once", old)
	}
	return strings.Replace(base, old, new, 1)
}

// problems parses data and returns its problems as lines; none when it is valid.
func problems(t testing.TB, data string, opts plan.Options) []string {
	t.Helper()
	_, err := plan.Parse("plan.yaml", []byte(data), opts)
	if err == nil {
		return nil
	}
	var pe *plan.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Parse: %v is not a *plan.Error", err)
	}
	if !errors.Is(err, plan.ErrInvalid) {
		t.Fatalf("Parse: %v does not wrap ErrInvalid", err)
	}
	var lines []string
	for _, p := range pe.Problems {
		lines = append(lines, p.String())
	}
	return lines
}

func TestParseBase(t *testing.T) {
	if got := problems(t, base, plan.Options{}); got != nil {
		t.Fatalf("base plan has problems:\n%s", strings.Join(got, "\n"))
	}
}

// badRows each make one mistake in base; want is the problem, a line each when several.
var badRows = []struct {
	name, old, new string
	want           string
}{
	// header
	{"api version", "redline/v1", "redline/v2", `1:13: apiVersion: want redline/v1, got "redline/v2"`},
	{"kind", "kind: Rehearsal", "kind: Drill", `2:7: kind: want Rehearsal, got "Drill"`},
	{"kind missing", "kind: Rehearsal\n", "", `1:1: kind: missing; want kind: Rehearsal`},
	{"unknown top-level key", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nvar: {}", `6:1: var: unknown key (did you mean vars?)`},
	{"unknown key far from any", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nextra: 1", `6:1: extra: unknown key (want one of: apiVersion, kind, metadata, target, peak, vars, defaults, sla, abortWhen, phases)`},
	{"duplicate key", "peak: {rate: 100/s}", "peak: {rate: 100/s}\npeak: {rate: 10/s}", `6:1: peak: duplicate key (first at line 5)`},
	{"name missing", "metadata: {name: base}", "metadata: {}", `3:11: metadata.name: missing; every plan needs a name`},
	{"bad name", "{name: base}", "{name: \"two words\"}", `3:18: metadata.name: name "two words": want letters, digits, '.', '_' and '-', starting with a letter or digit`},
	{"metadata not a mapping", "metadata: {name: base}", "metadata: base", `3:11: metadata: want a mapping, got a string`},
	// target
	{"target missing", "target: {url: \"http://127.0.0.1:8080\"}\n", "", `1:1: target: missing; want target: {url: ...} or target: {builtin: {...}}`},
	{"target both", `target: {url: "http://127.0.0.1:8080"}`, `target: {url: "http://127.0.0.1:8080", builtin: {}}`, `4:9: target: set url or builtin, not both`},
	{"target scheme", `"http://127.0.0.1:8080"`, `"ftp://x"`, `4:15: target.url: want an http:// or https:// URL, got "ftp://x"`},
	{"target no host", `"http://127.0.0.1:8080"`, `"http:///x"`, `4:15: target.url: URL "http:///x" has no host`},
	{"target query", `"http://127.0.0.1:8080"`, `"http://h/?a=1"`, `4:15: target.url: URL "http://h/?a=1" has a query or fragment; put those in request paths`},
	{"builtin units", `target: {url: "http://127.0.0.1:8080"}`, `target: {builtin: {units: 0}}`, `4:27: target.builtin.units: 0 is out of range [1, 64]`},
	{"builtin unknown key", `target: {url: "http://127.0.0.1:8080"}`, `target: {builtin: {cells: 2}}`, `4:20: target.builtin.cells: unknown key (want one of: units, accounts)`},
	// peak and rates
	{"peak relative", "peak: {rate: 100/s}", "peak: {rate: 100%}", `5:14: peak.rate: peak.rate must be absolute, like 2000/s, got "100%"`},
	{"peak without unit", "peak: {rate: 100/s}", "peak: {rate: 100}", `5:14: peak.rate: want a rate like 2000/s, 120/m or 110% (of peak.rate), got an integer 100`},
	{"zero rate", "rate: 100%, duration: 10s", "rate: 0/s, duration: 10s", `14:33: phases[1].load.rate: rate must be positive, got 0/s`},
	{"negative rate", "rate: 100%, duration: 10s", "rate: -5/s, duration: 10s", `14:33: phases[1].load.rate: rate must be positive, got -5/s`},
	{"rate unit", "rate: 100%, duration: 10s", "rate: 100/d, duration: 10s", `14:33: phases[1].load.rate: want a rate like 2000/s, 120/m or 110% (of peak.rate), got "100/d"`},
	{"percent over limit", "rate: 100%, duration: 10s", "rate: 1001%, duration: 10s", `14:33: phases[1].load.rate: 1001% is over the limit of 1000% of peak.rate`},
	{"absolute over limit", "rate: 100%, duration: 10s", "rate: 2000000/s, duration: 10s", `14:33: phases[1].load.rate: rate 2000000/s is over the limit of 1000000/s`},
	{"relative without peak", "peak: {rate: 100/s}\n", "", `12:33: phases[0].load.rate: relative rate 50% needs peak.rate
13:33: phases[1].load.rate: relative rate 100% needs peak.rate`},
	// durations
	{"duration unparsable", "duration: 10s}}", "duration: 10 seconds}}", `14:49: phases[1].load.duration: want a duration, like 30s, 2m or 1m30s, got "10 seconds"`},
	{"duration number", "duration: 10s}}", "duration: 10}}", `14:49: phases[1].load.duration: want a duration with a unit, like 30s or 2m, got the number 10`},
	{"duration zero", "duration: 10s}}", "duration: 0s}}", `14:49: phases[1].load.duration: duration must be positive, got 0s`},
	{"duration negative", "duration: 10s}}", "duration: -1s}}", `14:49: phases[1].load.duration: duration must not be negative, got -1s`},
	{"duration over limit", "duration: 10s}}", "duration: 25h}}", `14:49: phases[1].load.duration: duration 25h is over the limit of 24h0m0s`},
	{"duration missing", "load: {rate: 100%, duration: 10s}", "load: {rate: 100%}", `14:26: phases[1].load.duration: missing; want a duration like 60s`},
	{"timeout", "  requests:\n", "  timeout: 0.5\n  requests:\n", `10:12: defaults.timeout: want a duration with a unit, like 30s or 2m, got the number 0.5`},
	// load forms
	{"load forms mixed", "load: {rate: 100%, duration: 10s}", "load: {rate: 100%, duration: 10s, stages: [{target: 1/s, duration: 1s}]}", `14:26: phases[1].load: choose one form: rate and duration, stages (with startRate), or spike`},
	{"load empty", "load: {rate: 100%, duration: 10s}", "load: {}", `14:26: phases[1].load: want rate and duration, stages (with startRate), or spike`},
	{"load missing", "{name: steady, load: {rate: 100%, duration: 10s}}", "{name: steady}", `14:5: phases[1].load: missing; want load: {rate, duration}, {stages} or {spike}`},
	{"load of no request", "load: {rate: 100%, duration: 10s}", "load: {rate: 1/h, duration: 3s}", `14:26: phases[1].load: the load asks for 0.000833 requests in 3s; want at least one (a higher rate or a longer phase)`},
	{"expectStatus empty", "- {name: get, path: /}", "- {name: get, path: /, expectStatus: []}", `11:42: defaults.requests[0].expectStatus: an empty list; name the statuses that count as success, or leave expectStatus out (200..399)`},
	{"delayAbortEval alone", `http_req_failed: ["rate<0.01"]`, `http_req_failed: [{threshold: "rate<0.01", delayAbortEval: 10s}]`, `8:62: sla.http_req_failed[0].delayAbortEval: delays an abort, but abortOnFail is not true: it would do nothing`},
	{"ramp never rises", "load: {rate: 100%, duration: 10s}", "load: {stages: [{target: 0/s, duration: 10s}]}", `14:26: phases[1].load: the rate never rises above 0/s`},
	{"ramp lasts nothing", "load: {rate: 100%, duration: 10s}", "load: {stages: [{target: 5/s, duration: 0s}]}", `14:26: phases[1].load: the stages last 0s; want a positive total duration`},
	{"stage target missing", "load: {rate: 100%, duration: 10s}", "load: {stages: [{duration: 10s}]}", `14:36: phases[1].load.stages[0].target: missing; want a rate like 2000/s or 110%`},
	{"spike peak below base", "load: {rate: 100%, duration: 10s}", "load: {spike: {base: 50%, peak: 40%, rampUp: 1s, hold: 1s, decay: 1s}}", `14:52: phases[1].load.spike.peak: peak 40/s must be above base 50/s`},
	{"spike hold missing", "load: {rate: 100%, duration: 10s}", "load: {spike: {base: 0/s, peak: 40%, rampUp: 1s, decay: 1s}}", `14:34: phases[1].load.spike.hold: missing; want a duration like 30s`},
	// phases
	{"duplicate phase", "{name: steady,", "{name: warmup,", `14:12: phases[1].name: duplicate phase name "warmup" (first at phases[0])`},
	{"phase name missing", "{name: steady, load", "{load", `14:5: phases[1].name: missing; every phase needs a name`},
	{"phase unknown key", "duration: 10s}}", "duration: 10s}, wait: 1s}", `14:55: phases[1].wait: unknown key (want one of: name, load, requests, judge, workers, timeout, faults, abortWhen, replay)`},
	{"judge bad", "judge: false}", "judge: maybe}", `13:60: phases[0].judge: want true, false or headroom, got a string "maybe"`},
	{"headroom without peak", "peak: {rate: 100/s}\n", "", `12:33: phases[0].load.rate: relative rate 50% needs peak.rate
13:33: phases[1].load.rate: relative rate 100% needs peak.rate`},
	{"nothing judged", "duration: 10s}}", "duration: 10s}, judge: false}", `12:1: phases: no phase is judged: set judge: true (or headroom) on at least one`},
	{"phases empty", "phases:\n  - {name: warmup, load: {rate: 50%, duration: 5s}, judge: false}\n  - {name: steady, load: {rate: 100%, duration: 10s}}\n", "phases: []\n", `12:9: phases: want at least one phase`},
	{"phases not a list", "phases:\n  - {name: warmup, load: {rate: 50%, duration: 5s}, judge: false}\n  - {name: steady, load: {rate: 100%, duration: 10s}}\n", "phases: {a: 1}\n", `12:9: phases: want a list, got a mapping`},
	{"workers zero", "duration: 10s}}", "duration: 10s}, workers: 0}", `14:64: phases[1].workers: 0 is out of range [1, 100000]`},
	{"workers string", "duration: 10s}}", "duration: 10s}, workers: many}", `14:64: phases[1].workers: want an integer, got a string "many"`},
	{"fault percent over 100", "duration: 10s}}", "duration: 10s}, faults: [{at: 2s, kind: PodChaos, spec: {action: pod-kill, mode: fixed-percent, value: \"150\", selector: {labelSelectors: {role: target}}}}]}", `14:142: phases[1].faults[0].spec.value: Invalid value: "150": value of 150 is invalid, Must be (0,100] with mode:fixed-percent (chaos mesh)`},
	{"fault spec unknown key", "duration: 10s}}", "duration: 10s}, faults: [{at: 2s, kind: PodChaos, spec: {action: pod-failure, mode: one, selectr: {}}}]}", `14:137: phases[1].faults[0].spec.selectr: unknown key (did you mean selector?)`},
	{"fault kind unknown", "duration: 10s}}", "duration: 10s}, faults: [{kind: PodChoas, spec: {}}]}", `14:71: phases[1].faults[0].kind: unknown kind "PodChoas" (want one of: PodChaos, NetworkChaos, StressChaos, HTTPChaos, ConsumerChaos)`},
	{"fault after its phase", "duration: 10s}}", "duration: 10s}, faults: [{at: 8s, duration: 5s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 10ms}}}]}", `14:83: phases[1].faults[0].duration: the fault would end at 13s, after its phase (10s): every fault is recovered within its phase`},
	{"fault selects nothing", "duration: 10s}}", "duration: 10s}, faults: [{kind: ConsumerChaos, spec: {group: settlement, rate: 10%}}]}", `14:92: phases[1].faults[0].spec.selector: group=settlement (all) selects no target of this plan (ConsumerChaos targets: none; consumer groups belong to the built-in target)`},
	{"fault one-shot with duration", "duration: 10s}}", "duration: 10s}, faults: [{duration: 1s, kind: PodChaos, spec: {action: pod-kill, mode: one, selector: {}}}]}", `14:75: phases[1].faults[0].duration: PodChaos pod-kill is one-shot: it has no duration`},
	{"abortWhen bad", "duration: 10s}}", "duration: 10s}, abortWhen: \"http_req_failed p(99)>1\"}", `14:66: phases[1].abortWhen: bad abort condition: aggregation not allowed: p(99) on http_req_failed, a rate metric (want rate)`},
	{"abortWhen unknown phase", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nabortWhen: \"http_req_failed{phase:stedy} rate>0.5\"", `6:12: abortWhen: unknown phase "stedy" (want one of: warmup, steady)`},
	{"abortWhen unknown op", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nabortWhen: [\"http_req_failed{op:gte} rate>0.5\"]", `6:13: abortWhen[0]: op "gte" is not a request of any phase it guards (their requests: get)`},
	{"abortWhen of a phase on another", "duration: 10s}}", "duration: 10s}, abortWhen: \"http_req_failed{phase:warmup} rate>0.5\"}", `14:66: phases[1].abortWhen: a guard of phase "steady" on phase "warmup" would never be checked`},
	{"abortWhen on a target metric, URL target", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nabortWhen: \"shadow_leaks count>0\"", `6:12: abortWhen: shadow_leaks is reported by the built-in target (its audit and admin API); a URL target has no source for it: it would never have data`},
	{"sla on a target metric, URL target", "  http_req_failed: [\"rate<0.01\"]", "  http_req_failed: [\"rate<0.01\"]\n  payments_lost: [\"count==0\"]", `9:3: sla.payments_lost: payments_lost is reported by the built-in target (its audit and admin API); a URL target has no source for it: it would never have data`},
	{"replay refused", "{name: steady, load: {rate: 100%, duration: 10s}}", "{name: steady, replay: {recording: a.rlog, speed: 2}}", `14:20: phases[1].replay: replay is not supported in this build yet (shadow traffic comes later); remove it to run this plan`},
	// requests
	{"requests missing", "defaults:\n  requests:\n    - {name: get, path: /}\n", "", `10:5: phases[0].requests: missing; set requests here or in defaults.requests
11:5: phases[1].requests: missing; set requests here or in defaults.requests`},
	{"request path relative", "path: /}", "path: x}", `11:25: defaults.requests[0].path: want a path starting with /, relative to the target URL, got "x"`},
	{"request path absolute URL", "path: /}", "path: \"http://other/\"}", `11:25: defaults.requests[0].path: want a path starting with /, relative to the target URL, got "http://other/"`},
	{"request path missing", "{name: get, path: /}", "{name: get}", `11:7: defaults.requests[0].path: missing; want a path like /pay, relative to the target URL`},
	{"request name missing", "{name: get, path: /}", "{path: /}", `11:7: defaults.requests[0].name: missing; every request needs a name (its op in metrics)`},
	{"request duplicate name", "- {name: get, path: /}", "- {name: get, path: /}\n    - {name: get, path: /x}", `12:14: defaults.requests[1].name: duplicate request name "get" (first at defaults.requests[0])`},
	{"request method", "path: /}", "path: /, method: FETCH}", `11:36: defaults.requests[0].method: unknown method "FETCH" (want one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)`},
	{"request weight", "path: /}", "path: /, weight: 0}", `11:36: defaults.requests[0].weight: 0 is out of range [1, 10000]`},
	{"request template", "path: /}", "path: \"/u/{{user}}\"}", `11:25: defaults.requests[0].path: unknown template variable {{user}} (want {{uid}}, {{uid2}}, {{uuid}}, {{seq}}, {{amount}}, {{run}})`},
	{"request template unclosed", "path: /}", "path: /, body: \"{{uid\"}", `11:34: defaults.requests[0].body: unclosed {{ in template`},
	{"request status", "path: /}", "path: /, expectStatus: [200, 700]}", `11:48: defaults.requests[0].expectStatus[1]: 700 is out of range [100, 599]`},
	{"request header name", "path: /}", "path: /, headers: {\"a b\": x}}", `11:38: defaults.requests[0].headers.a b: invalid header name "a b"`},
	{"request header int", "path: /}", "path: /, headers: {X-Try: 3}}", `11:45: defaults.requests[0].headers.X-Try: want a string, got an integer 3`},
	{"request unknown key", "path: /}", "path: /, url: /x}", `11:28: defaults.requests[0].url: unknown key (want one of: name, weight, method, path, headers, body, expectStatus)`},
	{"requests empty", "  requests:\n    - {name: get, path: /}\n", "  requests: []\n", `10:13: defaults.requests: want at least one request`},
	// vars
	{"vars min above max", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 10, max: 1}}", `6:13: vars.uid: min 10 is above max 1`},
	{"vars amount zero", "peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {amount: {min: 0}}", `6:22: vars.amount.min: 0 is out of range [1, 9007199254740991]`},
	{"target user info", `"http://127.0.0.1:8080"`, `"http://u:p@h"`, `4:15: target.url: URL "http://u:p@h" has user info; send credentials in request headers`},
	{"target port out of range", `"http://127.0.0.1:8080"`, `"http://127.0.0.1:99999"`, `4:15: target.url: URL "http://127.0.0.1:99999": port 99999 is not between 1 and 65535`},
	{"target port zero", `"http://127.0.0.1:8080"`, `"http://h:0"`, `4:15: target.url: URL "http://h:0": port 0 is not between 1 and 65535`},
	{"header NUL", "path: /}", "path: /, headers: {X-A: \"a\\0b\"}}", `11:43: defaults.requests[0].headers.X-A: header value has a line break or NUL`},
	// sla
	{"sla unknown metric", "http_req_failed:", "http_req_faild:", `8:3: sla.http_req_faild: unknown metric "http_req_faild" (did you mean http_req_failed?)`},
	{"sla k6 metric not here", "http_req_failed:", "vus:", `8:3: sla.vus: unknown metric "vus"`},
	{"sla bad expression", `["rate<0.01"]`, `["rate<<0.01"]`, `8:21: sla.http_req_failed[0]: bad threshold: "rate<<0.01": want a number, got "<0.01"`},
	{"sla aggregation not allowed", `["rate<0.01"]`, `["p(99)<0.01"]`, `8:21: sla.http_req_failed[0]: aggregation not allowed: p(99) on http_req_failed, a rate metric (want rate)`},
	{"sla counter rate ok, trend rate not", `["p(99)<100"]`, `["rate<100"]`, `7:23: sla.http_req_duration[0]: aggregation not allowed: rate on http_req_duration, a trend metric (want avg, min, max, med, p(N))`},
	{"sla not a list", `["rate<0.01"]`, `"rate<0.01"`, `8:20: sla.http_req_failed: want a list of thresholds, like ["p(99)<100"], got a string`},
	{"sla unknown phase", "http_req_failed:", "http_req_failed{phase:peak}:", `8:3: sla.http_req_failed{phase:peak}: unknown phase "peak" (want one of: warmup, steady)`},
	{"sla phase not judged", "http_req_failed:", "http_req_failed{phase:warmup}:", `8:3: sla.http_req_failed{phase:warmup}: phase "warmup" is not judged (judge: false): its thresholds would never be checked`},
	{"sla unknown op", "http_req_failed:", "http_req_failed{op:pay}:", `8:3: sla.http_req_failed{op:pay}: op "pay" is not a request of judged phase "steady" (its requests: get)`},
	{"sla unknown tag", "http_req_failed:", "http_req_failed{status:500}:", `8:3: sla.http_req_failed{status:500}: bad threshold key: "http_req_failed{status:500}": unknown tag "status" (want phase or op)`},
	{"sla op on audit metric", "http_req_failed:", "payments_lost{op:pay}:", `8:3: sla.payments_lost{op:pay}: bad threshold key: "payments_lost{op:pay}": tag op does not apply to payments_lost, which the target reports per phase only`},
	{"sla object unknown key", `["rate<0.01"]`, `[{threshold: "rate<0.01", abort: true}]`, `8:46: sla.http_req_failed[0].abort: unknown key (want one of: threshold, abortOnFail, delayAbortEval)`},
	{"sla object threshold missing", `["rate<0.01"]`, `[{abortOnFail: true}]`, `8:21: sla.http_req_failed[0].threshold: missing; want threshold: "p(99)<100"`},
	{"sla abortOnFail not bool", `["rate<0.01"]`, `[{threshold: "rate<0.01", abortOnFail: yes}]`, `8:59: sla.http_req_failed[0].abortOnFail: want true or false, got a string "yes"`},
	{"sla delay bad", `["rate<0.01"]`, `[{threshold: "rate<0.01", delayAbortEval: soon}]`, `8:62: sla.http_req_failed[0].delayAbortEval: want a duration, like 30s, 2m or 1m30s, got "soon"`},
	// yaml itself
	{"yaml syntax", "kind: Rehearsal", "kind: [Rehearsal", `1: YAML syntax: did not find expected ',' or ']'`},
	{"two documents", "phases:", "---\nphases:", `12:1: a plan file holds one YAML document; found another`},
	{"merge key", "metadata: {name: base}", "metadata: {<<: {name: x}, name: base}", `3:12: metadata.<<: merge keys (<<) are not supported: write the keys out`},
	{"alias", "  requests:\n    - {name: get, path: /}", "  requests: &mix\n    - {name: get, path: /}\n  timeout: *mix", `10:13: defaults.timeout: want a duration, like 30s or 2m, got a list`},
}

func TestParseBad(t *testing.T) {
	for _, tt := range badRows {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, mutate(t, tt.old, tt.new), plan.Options{})
			var want []string
			for _, line := range strings.Split(tt.want, "\n") {
				want = append(want, "plan.yaml:"+line)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseUID2: {{uid2}} must be able to differ from {{uid}}, as the generator requires.
func TestParseUID2(t *testing.T) {
	withUID2 := func(old, new string) string {
		return strings.Replace(mutate(t, old, new), "path: /}", `path: "/t/{{uid}}/{{uid2}}"}`, 1)
	}
	tests := []struct {
		name, data string
		want       []string
	}{
		{"two uids", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 7, max: 8}}"), nil},
		{"one uid", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 7, max: 7}}"),
			[]string{"plan.yaml:6:13: vars.uid: {{uid2}} needs two uids at least, got 7..7"}},
		{"one account", withUID2(`target: {url: "http://127.0.0.1:8080"}`, `target: {builtin: {accounts: 1}}`),
			[]string{"plan.yaml:4:30: target.builtin.accounts: {{uid2}} needs two uids at least, got 1..1"}},
		{"one uid, no uid2", mutate(t, "peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 7, max: 7}}"), nil},
		{"stride within range", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 1, max: 200}, uid2: {stride: 100}}"), nil},
		{"stride over half the range", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid: {min: 1, max: 150}, uid2: {stride: 100}}"),
			[]string{"plan.yaml:6:48: vars.uid2.stride: a stride of 100 needs at least 200 uids, the range has 1..150"}},
		{"stride zero", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid2: {stride: 0}}"),
			[]string{"plan.yaml:6:23: vars.uid2.stride: 0 is out of range [1, 9007199254740991]"}},
		{"a fifth off the stride", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid2: {stride: 100, offStride: 20%}}"), nil},
		{"off the stride, no stride", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid2: {offStride: 20%}}"),
			[]string{"plan.yaml:6:26: vars.uid2.offStride: a share off the stride needs vars.uid2.stride over 1"}},
		{"off the stride, not a percentage", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid2: {stride: 100, offStride: 0.2}}"),
			[]string{`plan.yaml:6:39: vars.uid2.offStride: want a percentage such as "20%", got a number 0.2`}},
		{"off the stride, over 100%", withUID2("peak: {rate: 100/s}", "peak: {rate: 100/s}\nvars: {uid2: {stride: 100, offStride: 120%}}"),
			[]string{`plan.yaml:6:39: vars.uid2.offStride: "120%": want a percentage from 0% to 100%`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(t, tt.data, plan.Options{})); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
