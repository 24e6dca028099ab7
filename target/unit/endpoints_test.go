package unit_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

func TestStateMetricsHealth(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 10)
	ctx := context.Background()
	st, err := p.State(p.Primary())
	if err != nil || st.Role != ledger.RolePrimary || st.Epoch != 1 || st.LastSeq != 1 {
		t.Fatalf("primary state = %+v %v", st, err)
	}
	status, raw, err := p.Client.Do(ctx, http.MethodGet, "http://"+p.Primary().Addr()+"/metrics", nil, nil, 0)
	if err != nil || status != http.StatusOK {
		t.Fatalf("metrics: %d %v", status, err)
	}
	for _, name := range []string{"paycell_group_commit_ops", "paycell_replicate_seconds", "paycell_epoch 1", `paycell_role{role="primary"} 1`, "paycell_last_seq 1"} {
		if !strings.Contains(string(raw), name) {
			t.Errorf("metrics lack %q", name)
		}
	}
	if status, _, _ := p.Client.Do(ctx, http.MethodGet, "http://"+p.Primary().Addr()+"/healthz", nil, nil, 0); status != http.StatusOK {
		t.Errorf("healthz: %d", status)
	}
}

func TestRunRefusesContradictions(t *testing.T) {
	tests := []struct {
		name string
		cfg  unit.Config
	}{
		{"no names", unit.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Role: "primary"}},
		{"bad role", unit.Config{Unit: "a", Replica: "r1", DataDir: t.TempDir(), Listen: "127.0.0.1:0", Role: "leader"}},
		{"unknown defect", unit.Config{Unit: "a", Replica: "r1", DataDir: t.TempDir(), Listen: "127.0.0.1:0", Role: "primary", Defects: []unit.Defect{"nope"}}},
		{"no listener", unit.Config{Unit: "a", Replica: "r1", DataDir: t.TempDir(), Role: "primary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := unit.Run(context.Background(), tt.cfg); !errors.Is(err, unit.ErrInvalidConfig) {
				t.Fatal("Run accepted an invalid config")
			}
		})
	}
	// A replica whose database saw epoch 2 refuses to start as primary under epoch 1.
	p := unittest.StartPair(t, unittest.Options{})
	old := p.Primary()
	old.Kill()
	next := p.Failover(t)
	next.Kill()
	cfg := unit.Config{Unit: "a", Replica: next.Name, DataDir: next.Dir, Listen: "127.0.0.1:0", Role: "primary", Epoch: 1}
	if err := unit.Run(context.Background(), cfg); !errors.Is(err, unit.ErrStaleEpoch) {
		t.Fatalf("start as primary under an old epoch: %v", err)
	}
}
