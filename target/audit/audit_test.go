package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

func TestOnlineAndOffline(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	ctx := context.Background()
	if _, err := p.Client.Open(ctx, p.Primary().Addr(), p.Epoch(), []ledger.Account{{UID: 1, BalanceMinor: 50}, {UID: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Client.Pay(ctx, p.Primary().Addr(), p.Epoch(), ledger.Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: 20}); err != nil {
		t.Fatal(err)
	}
	// Offline adds the leak invariant (zero stress writes in production) to the seven.
	checks := map[string]int{"online": 7, "offline": 8}
	for name, rep := range map[string]audit.Report{"online": p.AuditOnline(t), "offline": p.AuditOffline(t)} {
		if rep.Verdict != ledger.True || rep.Failed() || len(rep.Checks) != checks[name] || len(rep.Units) != 1 || len(rep.Units[0].Replicas) != 2 {
			t.Errorf("%s: %+v", name, rep)
		}
	}
	// An unreachable replica leaves the invariants that need it unknown, never true.
	rep, err := audit.Online(ctx, nil, []audit.Target{
		{Unit: "a", Replica: "r1", Addr: p.Primary().Addr()},
		{Unit: "a", Replica: "r2", Addr: "127.0.0.1:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != ledger.Unknown {
		t.Errorf("with r2 unreachable: verdict %s, want unknown", rep.Verdict)
	}
	if _, err := audit.Online(ctx, nil, nil); !errors.Is(err, audit.ErrNoReplicas) {
		t.Errorf("no targets: %v, want ErrNoReplicas", err)
	}
}

func TestOfflineErrors(t *testing.T) {
	if _, err := audit.Offline(context.Background(), t.TempDir()); !errors.Is(err, audit.ErrNoReplicas) {
		t.Errorf("empty dir: %v, want ErrNoReplicas", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "units", "a", "r1")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "unit.db"), []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Offline(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != ledger.Unknown || rep.Units[0].Replicas[0].Error == "" {
		t.Errorf("unreadable database: %+v", rep)
	}
}

// TestReportShape pins the JSON vocabulary the admin API and the CLI print.
func TestReportShape(t *testing.T) {
	rep := audit.Judge([]ledger.Unit{{Name: "a", Replicas: []ledger.Replica{{Unit: "a", Replica: "r1", Role: "primary", Epoch: 1}}}})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version int    `json:"version"`
		Verdict string `json:"verdict"`
		Checks  []struct {
			Name    string           `json:"name"`
			Verdict string           `json:"verdict"`
			Detail  string           `json:"detail"`
			Figures map[string]int64 `json:"figures"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got.Checks {
		names = append(names, c.Name+"="+c.Verdict)
	}
	want := []string{"money_conserved=true", "no_negative_balance=true", "acknowledged_present_once=true",
		"failed_without_effect=true", "replicas_converged=true", "no_write_under_stale_epoch=true", "cross_unit_atomic=true"}
	if diff := cmp.Diff(names, want); diff != "" || got.Version != 1 || got.Verdict != "true" {
		t.Errorf("report %s (-got +want):\n%s", buf.String(), diff)
	}
}

// TestWithCore: the core zone's figures replace the units-only cross-unit verdict.
func TestWithCore(t *testing.T) {
	r := ledger.Replica{Unit: "a", Replica: "r1", Role: "primary", Epoch: 1}
	r.Cross.AddLeg("k", ledger.LegDebit, ledger.LegConfirmed, 5)
	r.Cross.AddLeg("k", ledger.LegCredit, ledger.LegConfirmed, 5)
	r.Books.PostingSumMinor = r.Cross.NetMinor()
	rep := audit.Judge([]ledger.Unit{{Name: "a", Replicas: []ledger.Replica{r}}})
	var agree ledger.CoreTransfers
	agree.Confirmed.AddLeg("k", 5)
	tests := []struct {
		name string
		core ledger.CoreTransfers
		want ledger.Verdict
	}{
		{"as decided", agree, ledger.True},
		{"decided otherwise", ledger.CoreTransfers{Cancelled: agree.Confirmed}, ledger.False},
		{"unfinished", ledger.CoreTransfers{Confirmed: agree.Confirmed, Unfinished: 1}, ledger.False},
		{"core unreadable", ledger.CoreTransfers{Error: "no leader"}, ledger.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rep.WithCore(tt.core)
			if got.Verdict != tt.want || len(got.Checks) != len(rep.Checks) {
				t.Errorf("verdict %s with %d checks, want %s with %d: %+v", got.Verdict, len(got.Checks), tt.want, len(rep.Checks), got.Checks)
			}
		})
	}
}
