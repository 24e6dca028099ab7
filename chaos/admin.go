package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Limits of admin API calls.
const (
	adminReplyBytesMax = 1 << 20
	adminTokenBytesMax = 4 << 10
	// failoverWaitMax bounds how long evidence of a kill waits for the target's failover.
	failoverWaitMax = 10 * time.Second
	failoverPoll    = 20 * time.Millisecond
)

// AdminExecutor acts on the processes of the built-in target through its admin API
// (target/PROTOCOL.md): pod-kill and container-kill POST .../kill (SIGKILL), pod-failure
// .../pause (SIGSTOP) and, on recovery, .../resume (SIGCONT). Evidence is read from /proc by
// pid; after killing a unit's primary it also waits for the failover and records its time.
type AdminExecutor struct {
	HTTP *http.Client // nil: a client with a 5 s timeout
}

var (
	_ Executor = AdminExecutor{}
	_ Prover   = AdminExecutor{}
)

// Plan names the admin call that will undo the fault.
func (AdminExecutor) Plan(f Fault, t Target) (Undo, error) {
	if f.Kind != KindPod || t.Admin == nil {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, ErrNoExecutor)
	}
	u := Undo{Op: OpAdminResume, Admin: t.Admin, Pid: t.Pid}
	if f.OneShot() {
		u.Op = OpNone
	}
	if start, err := ProcessStart(t.Pid); err == nil {
		u.PidStart = start
	}
	return u, nil
}

// Inject posts kill or pause.
func (e AdminExecutor) Inject(ctx context.Context, f Fault, t Target, u Undo) error {
	action := "kill"
	if f.Action == ActionPodFailure {
		action = "pause"
	}
	if _, err := adminCall(ctx, e.HTTP, http.MethodPost, *t.Admin, "/admin/processes/"+t.Admin.Path+"/"+action, nil); err != nil {
		return fmt.Errorf("inject %s on %s: %w", f, t.Name, err)
	}
	return nil
}

// Recover posts resume to a paused process.
func (e AdminExecutor) Recover(ctx context.Context, u Undo) error {
	if u.Op != OpAdminResume {
		return nil
	}
	if _, err := adminCall(ctx, e.HTTP, http.MethodPost, *u.Admin, "/admin/processes/"+u.Admin.Path+"/resume", nil); err != nil {
		return fmt.Errorf("resume %s: %w", u.Admin.Path, err)
	}
	return nil
}

// Evidence reads /proc by the topology's pid; a killed primary's failover time comes next.
func (e AdminExecutor) Evidence(ctx context.Context, f Fault, t Target, u Undo) Evidence {
	if u.PidStart == 0 {
		return Evidence{Status: EvidenceUnknown, Detail: fmt.Sprintf("pid %d was not readable in /proc", t.Pid)}
	}
	ev := processEvidence(ctx, f, u.Pid, u.PidStart)
	if !ev.Observed() || !f.OneShot() || t.Labels["role"] != "primary" || t.Labels["unit"] == "" {
		return ev
	}
	began := time.Now().Add(-ev.Latency)
	if ms, ok := e.waitFailover(ctx, *t.Admin, t.Labels["unit"], t.Pid, began); ok {
		ev.FailoverMS = ms
		ev.Detail += fmt.Sprintf("; unit %s failed over in %.0f ms", t.Labels["unit"], ms)
	}
	return ev
}

// waitFailover polls the topology until unit has a primary other than the killed pid.
func (e AdminExecutor) waitFailover(ctx context.Context, a AdminRef, unit string, killed int, began time.Time) (float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, failoverWaitMax)
	defer cancel()
	tick := time.NewTicker(failoverPoll)
	defer tick.Stop()
	for {
		if top, err := ReadTopology(ctx, e.HTTP, a); err == nil {
			for _, p := range top.Processes {
				if p.Role == "unit" && p.Unit == unit && p.Mode == "primary" && p.Up && p.Pid != killed {
					return float64(time.Since(began)) / float64(time.Millisecond), true
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-tick.C:
		}
	}
}

// ConsumerExecutor throttles a consumer group of the built-in target through its admin API:
//
//	POST   /admin/consumers/{group}/throttle  {"rate_per_s": 50} or {"percent": 10}
//	DELETE /admin/consumers/{group}/throttle
//	GET    /admin/consumers/{group}           {"group": "settlement", "throttled": true, ...}
//
// A target that answers 404 does not have the endpoint yet: the fault is then recorded with
// evidence "unknown", never as applied.
type ConsumerExecutor struct {
	HTTP *http.Client
}

var (
	_ Executor = ConsumerExecutor{}
	_ Prover   = ConsumerExecutor{}
)

// Plan names the group to unthrottle.
func (ConsumerExecutor) Plan(f Fault, t Target) (Undo, error) {
	group := t.Labels["group"]
	if f.Kind != KindConsumer || t.Admin == nil || group == "" {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, ErrNoExecutor)
	}
	return Undo{Op: OpUnthrottle, Admin: t.Admin, Group: group}, nil
}

// Inject posts the throttle. A 404 is ErrUnsupported.
func (e ConsumerExecutor) Inject(ctx context.Context, f Fault, t Target, u Undo) error {
	body := map[string]float64{}
	if f.Params.Percent > 0 {
		body["percent"] = f.Params.Percent
	} else {
		body["rate_per_s"] = f.Params.RatePerSecond
	}
	if _, err := adminCall(ctx, e.HTTP, http.MethodPost, *u.Admin, "/admin/consumers/"+u.Group+"/throttle", body); err != nil {
		return fmt.Errorf("inject %s on %s: %w", f, t.Name, err)
	}
	return nil
}

// Recover deletes the throttle; a 404 means there is none.
func (e ConsumerExecutor) Recover(ctx context.Context, u Undo) error {
	_, err := adminCall(ctx, e.HTTP, http.MethodDelete, *u.Admin, "/admin/consumers/"+u.Group+"/throttle", nil)
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("unthrottle %s: %w", u.Group, err)
	}
	return nil
}

// Evidence asks the target whether the group is throttled.
func (e ConsumerExecutor) Evidence(ctx context.Context, _ Fault, _ Target, u Undo) Evidence {
	began := time.Now()
	b, err := adminCall(ctx, e.HTTP, http.MethodGet, *u.Admin, "/admin/consumers/"+u.Group, nil)
	if err != nil {
		return Evidence{Status: EvidenceUnknown, Latency: time.Since(began), Detail: err.Error()}
	}
	var st struct {
		Throttled bool `json:"throttled"`
	}
	if err := json.Unmarshal(b, &st); err != nil || !st.Throttled {
		return Evidence{Status: EvidenceMissing, Latency: time.Since(began), Detail: "the target reports the group unthrottled"}
	}
	return Evidence{Status: EvidenceObserved, Latency: time.Since(began), Detail: "the target reports group " + u.Group + " throttled"}
}

// Topology is the part of the built-in target's topology (GET /admin/topology, topology.json)
// that chaos reads.
type Topology struct {
	Router    string            `json:"router"`
	Admin     string            `json:"admin"`
	Processes []TopologyProcess `json:"processes"`
}

// TopologyProcess is one process of the built-in target.
type TopologyProcess struct {
	Role    string `json:"role"` // unit, core, router
	Unit    string `json:"unit,omitempty"`
	Replica string `json:"replica,omitempty"`
	Mode    string `json:"mode,omitempty"` // a unit replica's primary or standby
	Pid     int    `json:"pid"`
	Addr    string `json:"addr"`
	Up      bool   `json:"up"`
}

// ReadTopology asks the admin API for the target's processes.
func ReadTopology(ctx context.Context, c *http.Client, a AdminRef) (Topology, error) {
	var top Topology
	b, err := adminCall(ctx, c, http.MethodGet, a, "/admin/topology", nil)
	if err != nil {
		return top, err
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return top, fmt.Errorf("read topology: %w", err)
	}
	return top, nil
}

// Targets turns a topology into chaos targets labelled process (unit, core, router), unit,
// replica and role (a unit replica's primary or standby; otherwise the process kind).
func (top Topology) Targets(admin AdminRef) []Target {
	var out []Target
	for _, p := range top.Processes {
		unit, replica := dash(p.Unit), dash(p.Replica)
		labels := map[string]string{"process": p.Role, "role": p.Role}
		if p.Unit != "" {
			labels["unit"] = p.Unit
		}
		if p.Replica != "" {
			labels["replica"] = p.Replica
		}
		if p.Role == "unit" && p.Mode != "" {
			labels["role"] = p.Mode
		}
		a := admin
		a.Path = p.Role + "/" + unit + "/" + replica
		out = append(out, Target{Name: "builtin/" + a.Path, Labels: labels, Via: ViaAdmin, Pid: p.Pid, Admin: &a})
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// adminCall makes one admin API call with the bearer token read from a.TokenFile.
func adminCall(ctx context.Context, c *http.Client, method string, a AdminRef, path string, body any) ([]byte, error) {
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	token, err := readToken(a.TokenFile)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode admin request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, adminReplyBytesMax))
	if err != nil {
		return nil, fmt.Errorf("admin %s %s: read reply: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("admin %s %s: 404: %w", method, path, ErrUnsupported)
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("admin %s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, adminTokenBytesMax))
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
