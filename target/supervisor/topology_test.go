package supervisor_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/targettest"
)

func TestMain(m *testing.M) { targettest.Main(m) }

// startMax is the bound on `redline target up`.
const startMax = 5 * time.Second

// alive says whether a process with pid exists (and is not a zombie we should have reaped).
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// auditFalse names the invariants the report calls false.
func auditFalse(rep audit.Report) []string {
	var names []string
	for _, c := range rep.Checks {
		if c.Verdict == ledger.False {
			names = append(names, c.Name+": "+c.Detail)
		}
	}
	return names
}

func TestSmoke(t *testing.T) {
	tg := targettest.Start(t, targettest.Options{})
	if tg.StartedIn > startMax {
		t.Errorf("started in %v, want under %v", tg.StartedIn, startMax)
	}
	t.Logf("4 units, %d processes ready in %v", len(tg.Ready.Processes), tg.StartedIn)

	top, err := supervisor.ReadTopology(tg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 + 4*2 + 1 + 1 + 3; len(top.Processes) != want { // core, units, router, broker, consumers
		t.Errorf("%d processes, want %d", len(top.Processes), want)
	}
	var pids []int
	for _, p := range top.Processes {
		if !p.Up || !alive(p.Pid) || !strings.HasPrefix(p.Addr, "127.0.0.1:") {
			t.Errorf("process %s: up %v pid %d alive %v addr %s", p.Key(), p.Up, p.Pid, alive(p.Pid), p.Addr)
		}
		pids = append(pids, p.Pid)
	}
	if fi, err := os.Stat(filepath.Join(tg.DataDir, "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	for _, name := range []string{"supervisor.log", "core-1.log", "unit-a-r1.log", "router.log"} {
		if fi, err := os.Stat(filepath.Join(tg.DataDir, "logs", name)); err != nil || fi.Size() == 0 {
			t.Errorf("logs/%s: %v, want a log", name, err)
		}
	}
	checkAdminAuth(t, tg)
	tg.WaitHealthy(t, 10*time.Second)

	w := &targettest.Workload{
		Client: targettest.NewClient(tg.RouterURL, 4), Accounts: 400, Balance: 10_000, Workers: 4,
		AmountMax: 50, RetryFor: 10 * time.Second,
	}
	ctx := context.Background()
	if err := w.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	checkBadRequests(t, tg, w.Client)

	// Load, a unit primary killed under it, the load on until the unit is whole again.
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(lctx) }() // ends with stop
	time.Sleep(500 * time.Millisecond)
	victim := primaryOf(t, tg, "a")
	tg.Signal(t, "kill", "unit", "a", victim)
	tg.WaitHealthy(t, 20*time.Second)
	w.Replay(ctx, 50)
	time.Sleep(300 * time.Millisecond)
	stop()
	<-done

	wit := w.Verify(ctx)
	t.Logf("witness: %v", wit)
	if !wit.OK() || wit.Committed == 0 {
		t.Errorf("the client's own witness found problems: %v", wit)
	}
	rep := tg.Audit(t)
	if rep.Verdict != ledger.True {
		t.Errorf("audit %s, want true: %v", rep.Verdict, auditFalse(rep))
	}
	if u := tg.Routing(t).Units["a"]; u.Failovers != 1 || u.Primary == victim || u.LastFailoverMS <= 0 {
		t.Errorf("unit a after the kill of its primary: %+v", u)
	}

	checkMetrics(t, tg)

	tg.Stop()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
		}
	}
	// The databases of a stopped target audit offline (redline target audit --data DIR).
	if off, err := audit.Offline(context.Background(), tg.DataDir); err != nil || off.Verdict != ledger.True {
		t.Errorf("offline audit: %v %s %v", err, off.Verdict, auditFalse(off))
	}
	after, _ := supervisor.ReadTopology(tg.DataDir)
	for _, p := range after.Processes {
		if p.Up || alive(p.Pid) {
			t.Errorf("after stop, %s: up %v pid %d", p.Key(), p.Up, p.Pid)
		}
	}
}

// checkAdminAuth: no token or a wrong one is 401; an unknown process is 404.
func checkAdminAuth(t *testing.T, tg *targettest.Target) {
	t.Helper()
	for _, token := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, tg.AdminURL+"/admin/topology", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := tg.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", token, resp.StatusCode)
		}
	}
	err := tg.Admin(context.Background(), http.MethodPost, "/admin/processes/unit/z/r1/kill", nil)
	if err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("kill of an unknown process: %v, want 404", err)
	}
}

// checkBadRequests sends bad requests and checks each gets a 4xx JSON error and changes no balance.
func checkBadRequests(t *testing.T, tg *targettest.Target, c *targettest.Client) {
	t.Helper()
	ctx := context.Background()
	tests := []struct {
		name string
		body string
	}{
		{"missing key", `{"from_uid":1,"to_uid":101,"amount_minor":5}`},
		{"missing to", `{"key":"bad1","from_uid":1,"amount_minor":5}`},
		{"missing amount", `{"key":"bad2","from_uid":1,"to_uid":101}`},
		{"negative amount", `{"key":"bad3","from_uid":1,"to_uid":101,"amount_minor":-5}`},
		{"zero amount", `{"key":"bad4","from_uid":1,"to_uid":101,"amount_minor":0}`},
		{"unknown account", `{"key":"bad5","from_uid":1,"to_uid":100001,"amount_minor":5}`},
		{"malformed JSON", `{"key":"bad6","from_uid":1,`},
		{"oversized body", `{"key":"` + strings.Repeat("x", 1<<20) + `","from_uid":1,"to_uid":101,"amount_minor":5}`},
		{"cross-unit to an unknown account", `{"key":"bad7","from_uid":1,"to_uid":100002,"amount_minor":5}`},
		{"cross-unit, negative amount", `{"key":"bad9","from_uid":1,"to_uid":2,"amount_minor":-5}`},
		{"self payment", `{"key":"bad8","from_uid":1,"to_uid":1,"amount_minor":5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.HTTP.Post(tg.RouterURL+"/v1/payments", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(string(b), `"error"`) {
				t.Errorf("status %d %s, want a 4xx JSON error", resp.StatusCode, b)
			}
		})
	}
	// Insufficient funds is an outcome: recorded as failed, without effect.
	status, out, _, err := c.Pay(ctx, targettest.Payment{Key: "too-much", FromUID: 3, ToUID: 103, AmountMinor: 1_000_000})
	if err != nil || status != http.StatusOK || out.Status != targettest.StatusFailed {
		t.Errorf("insufficient funds: %d %+v %v, want 200 failed", status, out, err)
	}
	for _, uid := range []int64{1, 2, 3, 101, 103} {
		if status, a, err := c.Account(ctx, uid); err != nil || status != http.StatusOK || a.BalanceMinor != 10_000 {
			t.Errorf("account %d after bad requests: %d %+v %v, want 10000", uid, status, a, err)
		}
	}
}

// primaryOf is the replica that is the unit's primary now.
func primaryOf(t *testing.T, tg *targettest.Target, unit string) string {
	t.Helper()
	return tg.Routing(t).Units[unit].Primary
}

// checkMetrics: the failover is on the core leader's /metrics, the payments on the router's.
func checkMetrics(t *testing.T, tg *targettest.Target) {
	t.Helper()
	get := func(addr string) string {
		resp, err := tg.HTTP.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var leader string
	for _, p := range tg.Topology(t).Processes {
		if p.Role == supervisor.RoleCore && p.Mode == "leader" {
			leader = p.Addr
		}
	}
	if m := get(leader); !strings.Contains(m, `redline_core_failovers_total{unit="a"} 1`) || !strings.Contains(m, "redline_core_failover_seconds_count 1") {
		t.Errorf("core leader %s metrics lack the failover of unit a", leader)
	}
	if m := get(tg.Ready.Router); !strings.Contains(m, `redline_router_requests_total{code="200",route="pay"}`) {
		t.Errorf("router metrics lack the payments")
	}
}
