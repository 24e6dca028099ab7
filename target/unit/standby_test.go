package unit_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// TestStandbyDiesAndCatchesUp kills the standby: the primary asks the core zone to drop it and
// goes on alone; the dropped standby cannot be promoted; restarted, it catches up from its own
// history and the log, joins again, and the pair converges. On SQLite and on PostgreSQL.
func TestStandbyDiesAndCatchesUp(t *testing.T) {
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) { standbyDiesAndCatchesUp(t, be.Server(t)) })
	}
}

func standbyDiesAndCatchesUp(t *testing.T, srv sqldb.Server) {
	p := unittest.StartPair(t, unittest.Options{Storage: srv})
	seed(t, p, 8, 1_000)
	w := unittest.NewWitness()
	primary := p.Primary()
	standby := p.Other(primary)
	payMany(t, p, primary.Addr(), p.Epoch(), "before", 30, w, 5*time.Second)
	standby.Kill()
	if un := payMany(t, p, primary.Addr(), p.Epoch(), "alone", 30, w, 8*time.Second); len(un) > 0 {
		t.Fatalf("%d payments unacknowledged after the standby died", len(un))
	}
	if p.Core.Drops() != 1 {
		t.Fatalf("drop-standby requests = %d, want 1", p.Core.Drops())
	}
	c := p.Core.Config()
	status, _, _ := p.Client.Do(context.Background(), http.MethodPost, "http://"+p.Core.Addr()+"/v1/units/a/promote", map[string]int64{"epoch": c.Epoch}, nil, 0)
	if status != http.StatusConflict {
		t.Fatalf("promote a dropped standby: %d, want 409", status)
	}
	standby.Start(ledger.RoleCatchingUp, p.Epoch(), "", primary.Addr())
	p.WaitSynced(t, standby)
	payMany(t, p, primary.Addr(), p.Epoch(), "after", 30, w, 5*time.Second)
	p.WaitSynced(t, standby)
	if bad := w.Check(context.Background(), p.Client, primary.Addr()); len(bad) > 0 {
		t.Fatalf("read-back at the primary: %v", bad)
	}
	if bad := w.Check(context.Background(), p.Client, standby.Addr()); len(bad) > 0 {
		t.Fatalf("read-back at the standby: %v", bad)
	}
	expectAllTrue(t, p)
	// The caught-up standby can now take over with everything.
	primary.Kill()
	next := p.Failover(t)
	if bad := w.Check(context.Background(), p.Client, next.Addr()); len(bad) > 0 {
		t.Fatalf("read-back after the second failover: %v", bad)
	}
}

// TestConfigRefusals: a replica refuses configurations older than its epoch or contradicting it.
func TestConfigRefusals(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	primary, standby := p.Primary(), p.Other(p.Primary())
	tests := []struct {
		name   string
		addr   string
		body   map[string]any
		status int
		code   string
	}{
		{"older epoch", standby.Addr(), map[string]any{"epoch": 0, "role": "primary"}, 409, "stale_epoch"},
		{"swap roles under one epoch", standby.Addr(), map[string]any{"epoch": 1, "role": "primary"}, 409, "invalid_config"},
		{"unknown role", primary.Addr(), map[string]any{"epoch": 2, "role": "leader"}, 409, "invalid_config"},
		{"same config again", primary.Addr(), map[string]any{"epoch": 1, "role": "primary", "standby_addr": p.Link.Addr()}, 200, ""},
		{"unknown field", primary.Addr(), map[string]any{"epoch": 1, "role": "primary", "x": 1}, 400, "bad_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			status, raw, err := p.Client.Do(context.Background(), http.MethodPost, "http://"+tt.addr+"/internal/config", tt.body, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			_ = jsonUnmarshal(raw, &body)
			if status != tt.status || body.Error.Code != tt.code {
				t.Errorf("got %d %q (%s), want %d %q", status, body.Error.Code, raw, tt.status, tt.code)
			}
		})
	}
	// A write to the standby is refused and points the router elsewhere.
	status, _, _ := p.Client.Pay(context.Background(), standby.Addr(), 1, ledger.Payment{Key: "k", FromUID: 0, ToUID: 1, AmountMinor: 1})
	if status != http.StatusMisdirectedRequest {
		t.Errorf("write to the standby: %d, want 421", status)
	}
}
