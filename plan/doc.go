// Package plan reads rehearsal plan files: YAML at the edge, decoded strictly through yaml.Node,
// then compiled in one step into an immutable *Plan holding the engines' own config types
// (load.Config per phase, verify.Criterion per threshold). The engines never see YAML.
//
// Every problem of a file is reported at once, each as file:line:col: path: message, for
// example
//
//	double11.yaml:14:33: phases[2].load.rate: 1100% is over the limit of 1000% of peak.rate
//
// # The format
//
//	apiVersion: redline/v1                 # required, exactly
//	kind: Rehearsal                        # required, exactly
//	metadata: {name: double11}             # letters, digits, . _ -
//	target: {url: "https://gw.internal"}   # or: target: {builtin: {units: 4, accounts: 100000}}
//	peak: {rate: 2000/s}                   # the expected peak; relative rates are percents of it
//	vars:                                  # bounds of the request template values
//	  uid: {min: 1, max: 100000}           # {{uid}}, {{uid2}}; default 1..accounts or 1..10000
//	  uid2: {stride: 100, offStride: 20%}  # {{uid2}} = {{uid}} ± k·100: the same bucket (shard);
//	                                       # offStride: that share of them {{uid}} ± 1 + k·100
//	                                       # instead, the next bucket: on the built-in target
//	                                       # (buckets round-robin over units) another unit, so a
//	                                       # cross-unit payment; without a stride, any other uid
//	  amount: {min: 100, max: 50000}       # {{amount}}, integer minor units
//	  seed: 42                             # fixes the random values; default: random
//	sla:                                   # k6 thresholds, judged on each judged phase
//	  http_req_duration: ["p(99)<100"]     # ms from the intended send time
//	  http_req_failed:
//	    - {threshold: "rate<0.001", abortOnFail: true, delayAbortEval: 10s}
//	  http_req_duration{phase:headroom,op:pay}: ["p(99.9)<250"]   # tags narrow a key
//	defaults:                              # what phases inherit
//	  workers: 2000                        # in-flight bound; default: peak rate × 1 s, at least 16
//	  timeout: 10s                         # per request; also the grace period after a phase
//	  requests:                            # a weighted mix of request templates
//	    - name: pay                        # the op in metrics and in {op:...} tags
//	      weight: 9                        # default 1
//	      method: POST                     # GET (default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS
//	      path: /v1/payments               # relative to the target URL
//	      headers: {Idempotency-Key: "{{uuid}}"}
//	      body: '{"from": {{uid}}, "to": {{uid2}}, "amount": {{amount}}}'
//	      expectStatus: [200, 201]         # default: 200-399
//	phases:                                # run one after another
//	  - {name: warmup, load: {rate: 30%, duration: 30s}, judge: false}
//	  - name: ramp
//	    load: {startRate: 0/s, stages: [{target: 100%, duration: 60s}, {target: 100%, duration: 30s}]}
//	  - name: midnight
//	    load: {spike: {base: 20%, peak: 300%, rampUp: 10s, hold: 60s, decay: 30s}}
//	  - {name: headroom, load: {rate: 110%, duration: 120s}, judge: headroom, workers: 5000}
//	  - name: unit-kill
//	    load: {rate: 100%, duration: 60s}
//	    abortWhen: "http_req_failed rate>0.2 for 10s"   # or a list; the plan's own apply to every phase
//	    faults:                            # Chaos Mesh kinds and specs, validated by Chaos Mesh's rules
//	      - name: kill-b                   # default <phase>-<index>; unique in the plan
//	        at: 20s                        # offset from the phase's start (default 0s)
//	        kind: PodChaos                 # pod-kill | container-kill (one-shot) | pod-failure
//	        spec: {action: pod-kill, mode: one, selector: {labelSelectors: {unit: b, role: primary}}}
//	      - {at: 10s, duration: 30s, kind: NetworkChaos,     # delay | loss | partition | bandwidth
//	         spec: {action: delay, mode: all, selector: {labelSelectors: {role: router}}, delay: {latency: 100ms}}}
//	      - {at: 10s, duration: 30s, kind: ConsumerChaos, spec: {group: settlement, rate: 10%}}
//
// A fault's duration defaults to the rest of its phase and must end inside it: every fault is
// recovered by its phase's end at the latest. Selectors match target labels: unit, replica,
// role (primary, standby, core, router) and group on the built-in target; target.labels for
// the link to a URL target (default {role: target}), and the labels of target.processes:
//
//	target:
//	  url: http://127.0.0.1:8080
//	  labels: {role: gateway}
//	  processes: [{name: api, pid: 4242, labels: {unit: a}}, {name: worker, pidFile: /run/w.pid}]
//
// Every request carries the stress marker, the run id, so that the target can keep its writes
// apart from production data (the built-in target writes them to its shadow plane). target.marker
// says how: header (the default: X-Redline-Run: <run id>), baggage (W3C baggage
// redline.run=<run id>, appended to the request's own baggage) or off (no marker: the traffic is
// production traffic). With a marker, a request may not set X-Redline-Run or a redline.run
// baggage member itself. On the built-in target, shadow_leaks counts stress writes that reached
// production data (sampled every second and after the run): shadow_leaks: ["count==0"]; with
// abortOnFail the first sampled leak stops the run (exit 4).
//
// abortWhen guards say what is bad ("metric aggregation>number [for duration]") and stop the
// run when it holds on every per-second window for the duration.
//
// Rates are arrivals per second, minute or hour (2000/s, 120/m, 10/h) or percents of peak.rate
// (110%, at most 1000%); durations are Go's (30s, 2m, 1m30s). judge is true (the default),
// false, or headroom (judged, and the achieved rate reported against the peak). The replay key
// of a phase is recognised and refused: shadow replay comes later.
//
// Limits (limits.go) bound the file (1 MiB), YAML alias expansion, nesting, phases, requests,
// stages, headers, bodies, rates and durations; a plan over one is refused with its name.
package plan
