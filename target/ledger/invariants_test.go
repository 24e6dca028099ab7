package ledger

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// healthy returns a unit whose primary r2 (epoch 3) took over from r1, which acknowledged up to
// seq 10, and whose standby r3 applied up to seq 15.
func healthy() Unit {
	books := Books{Accounts: 2, BalanceSumMinor: 100, OpenedSumMinor: 100, PaymentsCommitted: 5}
	return Unit{
		Name: "a",
		Replicas: []Replica{
			{Unit: "a", Replica: "r1", Role: RoleCatchingUp, Epoch: 2, LastSeq: 11, Chain: "c11x", AckedSeq: 10, AckedChain: "c10", Books: books},
			{Unit: "a", Replica: "r2", Role: RolePrimary, Epoch: 3, LastSeq: 20, Chain: "c20", AckedSeq: 19, AckedChain: "c19", Books: books},
			{Unit: "a", Replica: "r3", Role: RoleStandby, Epoch: 3, LastSeq: 15, Chain: "c15", Books: books},
		},
		PrimaryChains: map[int64]string{10: "c10", 15: "c15"},
	}
}

func verdicts(checks []Check) map[string]Verdict {
	out := map[string]Verdict{}
	for _, c := range checks {
		out[c.Name] = c.Verdict
	}
	return out
}

func allTrue() map[string]Verdict {
	return map[string]Verdict{
		CheckMoneyConserved: True, CheckNoNegativeBalance: True, CheckAcknowledgedOnce: True,
		CheckFailedNoEffect: True, CheckReplicasConverged: True, CheckNoStaleEpochWrites: True,
		CheckCrossUnitAtomic: True,
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		change func(u *Unit)
		want   map[string]Verdict // only the verdicts that differ from all true
	}{
		{"healthy", func(*Unit) {}, nil},
		{"money created", func(u *Unit) { u.Replicas[1].Books.BalanceSumMinor++ }, map[string]Verdict{CheckMoneyConserved: False}},
		{"balance off its postings", func(u *Unit) { u.Replicas[2].Books.BalanceMismatches = 1 }, map[string]Verdict{CheckMoneyConserved: False}},
		{"negative balance", func(u *Unit) { u.Replicas[0].Books.NegativeBalances = 1 }, map[string]Verdict{CheckNoNegativeBalance: False}},
		{"failed moved money", func(u *Unit) { u.Replicas[1].Books.FailedWithEffect = 2 }, map[string]Verdict{CheckFailedNoEffect: False}},
		{"charged twice", func(u *Unit) { u.Replicas[1].Books.CommittedNotOnce = 1 }, map[string]Verdict{CheckAcknowledgedOnce: False}},
		{"acknowledged history lost", func(u *Unit) { u.PrimaryChains[10] = "other" }, map[string]Verdict{CheckAcknowledgedOnce: False}},
		{"acknowledged beyond primary", func(u *Unit) { u.Replicas[0].AckedSeq = 21 }, map[string]Verdict{CheckAcknowledgedOnce: False}},
		{"discarded on catch-up", func(u *Unit) { u.Replicas[0].LostAcknowledged = 3 }, map[string]Verdict{CheckAcknowledgedOnce: False}},
		{"standby diverged", func(u *Unit) { u.Replicas[2].Chain = "zzz" }, map[string]Verdict{CheckReplicasConverged: False}},
		{"standby ahead", func(u *Unit) { u.Replicas[2].LastSeq = 25 }, map[string]Verdict{CheckReplicasConverged: False}},
		{"dropped standby ignored", func(u *Unit) { u.Replicas[2].Epoch = 2; u.Replicas[2].Chain = "zzz" }, nil},
		{"stale write accepted", func(u *Unit) { u.Replicas[2].StaleWritesAccepted = 1 }, map[string]Verdict{CheckNoStaleEpochWrites: False}},
		{"stale write refused is fine", func(u *Unit) { u.Replicas[0].StaleWritesRefused = 4 }, nil},
		{"split brain", func(u *Unit) { u.Replicas[2].Role = RolePrimary }, map[string]Verdict{CheckAcknowledgedOnce: False, CheckReplicasConverged: False, CheckCrossUnitAtomic: Unknown}},
		{"primary unreachable", func(u *Unit) { u.Replicas[1] = Replica{Unit: "a", Replica: "r2", Error: "connection refused"} }, map[string]Verdict{
			CheckMoneyConserved: Unknown, CheckNoNegativeBalance: Unknown, CheckAcknowledgedOnce: Unknown,
			CheckFailedNoEffect: Unknown, CheckReplicasConverged: Unknown, CheckNoStaleEpochWrites: Unknown,
			CheckCrossUnitAtomic: Unknown,
		}},
		{"reservation held, books balanced", func(u *Unit) {
			for i := range u.Replicas {
				u.Replicas[i].Cross.AddLeg("k1", LegDebit, LegTried, 7)
				u.Replicas[i].Books.BalanceSumMinor -= 7
				u.Replicas[i].Books.PostingSumMinor -= 7
			}
		}, map[string]Verdict{CheckCrossUnitAtomic: False}},
		{"cross-unit leg off the books", func(u *Unit) { u.Replicas[1].Cross.AddLeg("k1", LegCredit, LegConfirmed, 7) }, map[string]Verdict{
			CheckMoneyConserved: False, CheckCrossUnitAtomic: False,
		}},
		{"chain not gathered", func(u *Unit) { delete(u.PrimaryChains, 15) }, map[string]Verdict{CheckReplicasConverged: Unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := healthy()
			tt.change(&u)
			want := allTrue()
			for k, v := range tt.want {
				want[k] = v
			}
			got := verdicts(Evaluate([]Unit{u}))
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("verdicts (-got +want):\n%s", diff)
			}
		})
	}
}

func TestChainSeqs(t *testing.T) {
	got := ChainSeqs(healthy().Replicas)
	if diff := cmp.Diff(got, []int64{10, 15}); diff != "" {
		t.Errorf("ChainSeqs (-got +want):\n%s", diff)
	}
}

func TestOverall(t *testing.T) {
	tests := []struct {
		name string
		in   []Verdict
		want Verdict
	}{
		{"all true", []Verdict{True, True}, True},
		{"unknown", []Verdict{True, Unknown}, Unknown},
		{"false wins", []Verdict{Unknown, False, True}, False},
		{"none", nil, True},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks []Check
			for _, v := range tt.in {
				checks = append(checks, Check{Verdict: v})
			}
			if got := Overall(checks); got != tt.want {
				t.Errorf("Overall = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEvaluateCross pairs the legs of two units' primaries with each other and with the core
// zone's decisions.
func TestEvaluateCross(t *testing.T) {
	type xleg struct{ key, leg, state string }
	type legs struct{ a, b []xleg }
	l := func(key, leg, state string) xleg { return xleg{key, leg, state} }
	decided := func() *CoreTransfers {
		c := &CoreTransfers{Begun: 2}
		c.Confirmed.AddLeg("k1", 5)
		c.Cancelled.AddLeg("k2", 5)
		return c
	}
	tests := []struct {
		name string
		legs legs
		core *CoreTransfers
		want Verdict
	}{
		{"confirmed and cancelled on both sides", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegConfirmed), l("k2", LegCredit, LegCancelled)}}, decided(), True},
		{"without the core zone", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegConfirmed), l("k2", LegCredit, LegCancelled)}}, nil, True},
		{"credit never applied", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegTried), l("k2", LegCredit, LegCancelled)}}, decided(), False},
		{"cancelled on one side only", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegConfirmed)}}, decided(), False},
		{"confirmed against a cancel decision", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegConfirmed)},
			b: []xleg{l("k1", LegCredit, LegConfirmed), l("k2", LegCredit, LegConfirmed)}}, decided(), False},
		{"core zone unfinished", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegConfirmed), l("k2", LegCredit, LegCancelled)}},
			func() *CoreTransfers { c := decided(); c.Unfinished = 1; return c }(), False},
		{"core zone unreadable", legs{
			a: []xleg{l("k1", LegDebit, LegConfirmed), l("k2", LegDebit, LegCancelled)},
			b: []xleg{l("k1", LegCredit, LegConfirmed), l("k2", LegCredit, LegCancelled)}}, &CoreTransfers{Error: "no leader"}, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var units []Unit
			for name, ls := range map[string][]xleg{"a": tt.legs.a, "b": tt.legs.b} {
				r := Replica{Unit: name, Replica: "r1", Role: RolePrimary, Epoch: 1}
				for _, x := range ls {
					r.Cross.AddLeg(x.key, x.leg, x.state, 5)
				}
				units = append(units, Unit{Name: name, Replicas: []Replica{r}})
			}
			got := EvaluateCross(units, tt.core)
			if got.Verdict != tt.want {
				t.Errorf("verdict %s (%s), want %s", got.Verdict, got.Detail, tt.want)
			}
		})
	}
}

func TestChainsPath(t *testing.T) {
	got := ChainsPath([]int64{12, 11, 3})
	u, err := url.Parse(got)
	if err != nil || u.Path != "/internal/audit" || u.Query().Get("chains_only") != "1" || u.Query().Get("chain_at") != "12,11,3" {
		t.Errorf("ChainsPath = %q (%v), want /internal/audit with chains_only=1 and chain_at=12,11,3", got, err)
	}
}

// TestMissingFiguresAreUnknownNeverFalse: a unit or an outbox the audit could not read makes
// its comparisons unknown; only what the read figures show alone can be false.
func TestMissingFiguresAreUnknownNeverFalse(t *testing.T) {
	primary := func(unit string, legs ...string) Unit {
		r := Replica{Unit: unit, Replica: "r1", Role: RolePrimary, Epoch: 1}
		for i := 0; i < len(legs); i += 3 {
			r.Cross.AddLeg(legs[i], legs[i+1], legs[i+2], 5)
		}
		return Unit{Name: unit, Replicas: []Replica{r}}
	}
	unread := Unit{Name: "b"} // its audit endpoint failed: no replica's figures
	core := &CoreTransfers{Begun: 1}
	core.Confirmed.AddLeg("k1", 5)
	tests := []struct {
		name  string
		units []Unit
		want  Verdict
	}{
		{"the payee's unit unread", []Unit{primary("a", "k1", LegDebit, LegConfirmed), unread}, Unknown},
		{"a pending leg beside an unread unit", []Unit{primary("a", "k1", LegDebit, LegTried), unread}, False},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EvaluateCross(tt.units, core); got.Verdict != tt.want {
				t.Errorf("EvaluateCross verdict %s (%s), want %s", got.Verdict, got.Detail, tt.want)
			}
		})
	}
	t.Run("outbox unread", func(t *testing.T) {
		var inbox Digest
		inbox.Add("a-1", "k1")
		ev := Events{Error: "unit b: outbox unreadable", Groups: []Group{{Name: "ledger", Inbox: inbox, Applied: 1}}}
		for _, c := range EvaluateEvents(ev) {
			if c.Verdict == False {
				t.Errorf("%s = false (%s) with the outbox unread", c.Name, c.Detail)
			}
		}
	})
}
