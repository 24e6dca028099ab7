package corezone

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func seeds2() []UnitSeed {
	return []UnitSeed{
		{Name: "a", Replicas: []ReplicaSeed{{Name: "r1", Addr: "127.0.0.1:1001"}, {Name: "r2", Addr: "127.0.0.1:1002"}}},
		{Name: "b", Replicas: []ReplicaSeed{{Name: "r1", Addr: "127.0.0.1:2001"}, {Name: "r2", Addr: "127.0.0.1:2002"}}},
	}
}

func initState(t *testing.T) State {
	t.Helper()
	s, _, err := State{}.apply(Command{Op: OpInit, Seeds: seeds2()})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	return s
}

func TestInitSpreadsBucketsRoundRobin(t *testing.T) {
	s := initState(t)
	if !s.Initialized() || s.Epoch != 1 {
		t.Fatalf("initialized %v epoch %d, want true 1", s.Initialized(), s.Epoch)
	}
	for b, got := range s.Buckets {
		want := []string{"a", "b"}[b%2]
		if got != want {
			t.Fatalf("bucket %d → %s, want %s", b, got, want)
		}
	}
	got := s.Units["b"]
	want := Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true,
		Addrs: map[string]string{"r1": "127.0.0.1:2001", "r2": "127.0.0.1:2002"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("unit b (-got +want):\n%s", diff)
	}
	if unit, _ := s.UnitOf(4243); unit != "b" {
		t.Errorf("UnitOf(4243) = %s, want b", unit)
	}
	if _, _, err := s.apply(Command{Op: OpInit, Seeds: seeds2()}); !errors.Is(err, ErrInitialized) {
		t.Errorf("second init: %v, want ErrInitialized", err)
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		cmds    []Command
		wantErr error
		want    Unit // unit a after the commands
		epoch   uint64
	}{
		{
			name:  "promote",
			cmds:  []Command{{Op: OpPromote, Unit: "a", Epoch: 1}},
			want:  Unit{Epoch: 2, Primary: "r2", Failovers: 1},
			epoch: 2,
		},
		{
			name:    "promote stale",
			cmds:    []Command{{Op: OpPromote, Unit: "a", Epoch: 0}},
			wantErr: ErrStaleEpoch,
			want:    Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true},
			epoch:   1,
		},
		{
			name:    "a dropped standby is never promoted",
			cmds:    []Command{{Op: OpDropStandby, Unit: "a", Epoch: 1}, {Op: OpPromote, Unit: "a", Epoch: 2}},
			wantErr: ErrStandbyNotOK,
			want:    Unit{Epoch: 2, Primary: "r1"},
			epoch:   2,
		},
		{
			name:    "promote twice: the second has no standby",
			cmds:    []Command{{Op: OpPromote, Unit: "a", Epoch: 1}, {Op: OpPromote, Unit: "a", Epoch: 2}},
			wantErr: ErrStandbyNotOK,
			want:    Unit{Epoch: 2, Primary: "r2", Failovers: 1},
			epoch:   2,
		},
		{
			name: "the old primary comes back as standby",
			cmds: []Command{
				{Op: OpPromote, Unit: "a", Epoch: 1},
				{Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r1", Addr: "127.0.0.1:1003"},
			},
			want:  Unit{Epoch: 3, Primary: "r2", Standby: "r1", StandbyOK: true, Failovers: 1},
			epoch: 3,
		},
		{
			name: "an added standby is not promoted before it is seen in sync",
			cmds: []Command{
				{Op: OpPromote, Unit: "a", Epoch: 1},
				{Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r1", Addr: "127.0.0.1:1003"},
				{Op: OpPromote, Unit: "a", Epoch: 3},
			},
			wantErr: ErrStandbyNotOK,
			want:    Unit{Epoch: 3, Primary: "r2", Standby: "r1", StandbyOK: true, Failovers: 1},
			epoch:   3,
		},
		{
			name: "a synced standby is promoted",
			cmds: []Command{
				{Op: OpPromote, Unit: "a", Epoch: 1},
				{Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r1", Addr: "127.0.0.1:1003"},
				{Op: OpSynced, Unit: "a", Epoch: 3},
				{Op: OpPromote, Unit: "a", Epoch: 3},
			},
			want:  Unit{Epoch: 4, Primary: "r1", Failovers: 2},
			epoch: 4,
		},
		{
			name:    "synced needs a standby",
			cmds:    []Command{{Op: OpDropStandby, Unit: "a", Epoch: 1}, {Op: OpSynced, Unit: "a", Epoch: 2}},
			wantErr: ErrStandbyNotOK,
			want:    Unit{Epoch: 2, Primary: "r1"},
			epoch:   2,
		},
		{
			name:    "the primary cannot be its own standby",
			cmds:    []Command{{Op: OpDropStandby, Unit: "a", Epoch: 1}, {Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r1", Addr: "x:1"}},
			wantErr: ErrBadReplica,
			want:    Unit{Epoch: 2, Primary: "r1"},
			epoch:   2,
		},
		{
			name:    "no third replica",
			cmds:    []Command{{Op: OpDropStandby, Unit: "a", Epoch: 1}, {Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r3", Addr: "x:1"}},
			wantErr: ErrBadReplica,
			want:    Unit{Epoch: 2, Primary: "r1"},
			epoch:   2,
		},
		{
			name:    "a healthy standby is not replaced",
			cmds:    []Command{{Op: OpAddStandby, Unit: "a", Epoch: 1, Replica: "r3", Addr: "x:1"}},
			wantErr: ErrStandbyPresent,
			want:    Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true},
			epoch:   1,
		},
		{
			name:    "add-standby without address",
			cmds:    []Command{{Op: OpDropStandby, Unit: "a", Epoch: 1}, {Op: OpAddStandby, Unit: "a", Epoch: 2, Replica: "r2"}},
			wantErr: ErrBadReplica,
			want:    Unit{Epoch: 2, Primary: "r1"},
			epoch:   2,
		},
		{
			name:    "unknown unit",
			cmds:    []Command{{Op: OpPromote, Unit: "z", Epoch: 1}},
			wantErr: ErrUnknownUnit,
			want:    Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true},
			epoch:   1,
		},
		{
			name:    "unknown op",
			cmds:    []Command{{Op: "explode", Unit: "a", Epoch: 1}},
			wantErr: ErrBadCommand,
			want:    Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true},
			epoch:   1,
		},
		{
			name:  "failover time changes no epoch",
			cmds:  []Command{{Op: OpFailoverTime, Unit: "a", FailoverMS: 420}},
			want:  Unit{Epoch: 1, Primary: "r1", Standby: "r2", StandbyOK: true, StandbySynced: true, LastFailoverMS: 420},
			epoch: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := initState(t)
			before := s.Clone()
			var err error
			for _, c := range tt.cmds {
				var n State
				n, _, err = s.apply(c)
				if err != nil {
					if diff := cmp.Diff(n, s); diff != "" {
						t.Errorf("a refused command changed the state (-got +want):\n%s", diff)
					}
					break
				}
				s = n
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			got := s.Units["a"]
			got.Addrs = nil
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("unit a (-got +want):\n%s", diff)
			}
			if s.Epoch != tt.epoch {
				t.Errorf("epoch %d, want %d", s.Epoch, tt.epoch)
			}
			if diff := cmp.Diff(before, initState(t)); diff != "" {
				t.Errorf("apply changed the state it was given (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(s.Units["b"], initState(t).Units["b"]); diff != "" {
				t.Errorf("unit b changed (-got +want):\n%s", diff)
			}
		})
	}
}

func TestCheckSeeds(t *testing.T) {
	r := func(name string) ReplicaSeed { return ReplicaSeed{Name: name, Addr: "127.0.0.1:1"} }
	tests := []struct {
		name  string
		seeds []UnitSeed
		want  error
	}{
		{"ok", seeds2(), nil},
		{"none", nil, ErrBadCommand},
		{"repeated unit", []UnitSeed{{Name: "a", Replicas: []ReplicaSeed{r("r1")}}, {Name: "a", Replicas: []ReplicaSeed{r("r1")}}}, ErrBadCommand},
		{"three replicas", []UnitSeed{{Name: "a", Replicas: []ReplicaSeed{r("r1"), r("r2"), r("r3")}}}, ErrBadCommand},
		{"repeated replica", []UnitSeed{{Name: "a", Replicas: []ReplicaSeed{r("r1"), r("r1")}}}, ErrBadReplica},
		{"no address", []UnitSeed{{Name: "a", Replicas: []ReplicaSeed{{Name: "r1"}}}}, ErrBadReplica},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckSeeds(tt.seeds); !errors.Is(got, tt.want) {
				t.Errorf("CheckSeeds = %v, want %v", got, tt.want)
			}
		})
	}
}
