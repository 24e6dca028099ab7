package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Via says how Redline reaches a target, and so which executor acts on it.
type Via string

// Ways to reach a target.
const (
	ViaProcess  Via = "process"  // a local process, by pid or pid file: signals
	ViaAdmin    Via = "admin"    // a process of the built-in target, through its admin API
	ViaProxy    Via = "proxy"    // the link through Redline's embedded fault proxy
	ViaConsumer Via = "consumer" // a consumer group, through the target's admin API
	ViaHost     Via = "host"     // the machine Redline runs on (StressChaos)
)

// Target is one thing a fault can act on, with the labels selectors match.
type Target struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Via    Via               `json:"via"`
	// Pid is the process (ViaProcess, ViaAdmin); PidFile, when set, is read at injection time.
	Pid     int    `json:"pid,omitempty"`
	PidFile string `json:"pid_file,omitempty"`
	// Admin reaches the built-in target's admin API (ViaAdmin, ViaConsumer).
	Admin *AdminRef `json:"admin,omitempty"`
	// Link names the proxy link in front of the target (ViaProxy).
	Link string `json:"link,omitempty"`
}

// Accepts reports whether a fault of kind can act on the target: pod and stress faults on
// processes, network and HTTP faults on proxy links, consumer faults on consumer groups. The
// orchestrator selects among accepting targets only, so that {role: router} means the router
// process to a PodChaos and the link in front of it to a NetworkChaos.
func (t Target) Accepts(k Kind) bool {
	switch k {
	case KindPod, KindStress:
		return t.Via == ViaProcess || t.Via == ViaAdmin
	case KindNetwork, KindHTTP:
		return t.Via == ViaProxy
	case KindConsumer:
		return t.Via == ViaConsumer
	}
	return false
}

// executorVia is which executor runs a fault of kind on a target reached via v: stress acts on
// the machine the process runs on, the rest on the target itself.
func executorVia(k Kind, v Via) Via {
	if k == KindStress {
		return ViaHost
	}
	return v
}

// AdminRef is how to call the built-in target's admin API about one process or group. The
// token is read from TokenFile at each call, so the journal never holds a secret.
type AdminRef struct {
	URL       string `json:"url"`        // http://127.0.0.1:port
	TokenFile string `json:"token_file"` // DATA/admin.token
	// Path names the process as the admin API does: "unit/b/r1", "core/-/2", "router/-/-";
	// or the consumer group for ViaConsumer.
	Path string `json:"path"`
}

// Executor is a fault implementation: it acts on one target. Inject and Recover are idempotent;
// Inject returns the Undo that Recover takes, which the journal holds before injection.
type Executor interface {
	// Plan returns the Undo an injection of f on t will need, before anything happens: the
	// journal writes it first.
	Plan(f Fault, t Target) (Undo, error)
	Inject(ctx context.Context, f Fault, t Target, u Undo) error
	Recover(ctx context.Context, u Undo) error
}

// Prover is an Executor that can tell whether a fault took effect: Evidence blocks until it
// has seen the effect, ctx ends, or it knows it never will.
type Prover interface {
	Evidence(ctx context.Context, f Fault, t Target, u Undo) Evidence
}

// Undo is what recovering one injection takes, written to the journal before the injection:
// plain data, so that `redline chaos recover` can act on it after a crash.
type Undo struct {
	Op Op `json:"op"`
	// Pid and PidStart identify a process: the start time (clock ticks since boot, from
	// /proc/PID/stat) keeps a recovery from signalling a new process that reused the pid.
	Pid      int       `json:"pid,omitempty"`
	PidStart uint64    `json:"pid_start,omitempty"`
	Admin    *AdminRef `json:"admin,omitempty"`
	Link     string    `json:"link,omitempty"`
	Toxic    string    `json:"toxic,omitempty"`
	Group    string    `json:"group,omitempty"`
	// InProcess marks an effect that lives in Redline's own process (a proxy toxic, a stress
	// burner): it ends with the process, so a crash undoes it.
	InProcess bool `json:"in_process,omitempty"`
}

// Op is how an Undo recovers.
type Op string

// Recovery operations.
const (
	OpNone         Op = "none"          // one-shot faults: nothing to take back
	OpContinue     Op = "sigcont"       // a stopped local process
	OpAdminResume  Op = "admin-resume"  // a paused process of the built-in target
	OpRemoveToxic  Op = "remove-toxic"  // a proxy toxic
	OpStartLink    Op = "start-link"    // a proxy link stopped for a rejecting partition
	OpUnthrottle   Op = "unthrottle"    // a throttled consumer group
	OpStopStressor Op = "stop-stressor" // CPU and memory burners
)

// key is what overlapping injections share: two pod-failures of one process stop it once, and
// only the last recovery continues it.
func (u Undo) key() string {
	switch u.Op {
	case OpContinue:
		return fmt.Sprintf("stop/%d/%d", u.Pid, u.PidStart)
	case OpAdminResume:
		return "pause/" + u.Admin.URL + "/" + u.Admin.Path
	case OpStartLink:
		return "link-stop/" + u.Link
	case OpUnthrottle:
		return "throttle/" + u.Admin.URL + "/" + u.Group
	}
	return "" // not shared: each toxic and stressor has its own name
}

// Evidence statuses.
const (
	EvidenceObserved = "observed" // the effect was seen
	EvidenceMissing  = "missing"  // looked for and not seen within the limit
	EvidenceUnknown  = "unknown"  // could not be looked for (the target cannot say)
)

// Evidence is what showed that a fault took effect, and how long after injection it showed.
type Evidence struct {
	Status  string        `json:"status"`
	Latency time.Duration `json:"latency_ns"` // from injection to the observation
	Detail  string        `json:"detail,omitempty"`
	// FailoverMS is the built-in target's failover time after a primary was killed, when seen.
	FailoverMS float64 `json:"failover_ms,omitempty"`
}

// Observed reports whether the fault was seen to take effect.
func (e Evidence) Observed() bool { return e.Status == EvidenceObserved }

// clone returns a deep copy: records keep targets while inventories change.
func (t Target) clone() Target {
	c := t
	if t.Labels != nil {
		c.Labels = make(map[string]string, len(t.Labels))
		for k, v := range t.Labels {
			c.Labels[k] = v
		}
	}
	if t.Admin != nil {
		a := *t.Admin
		c.Admin = &a
	}
	return c
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // plain structs of this package: a bug
	}
	return string(b)
}
