package unit_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// leg is a transfer step's body; one unit plays both participants here (the unit does not know
// which unit holds the other leg).
type leg struct {
	Key         string `json:"key"`
	Leg         string `json:"leg"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
	Reason      string `json:"reason,omitempty"`
}

type legAnswer struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Empty  bool   `json:"empty"`
}

func step(t *testing.T, p *unittest.Pair, addr, name string, epoch int64, l leg) (int, legAnswer) {
	t.Helper()
	var a legAnswer
	status, raw, err := p.Client.Do(context.Background(), http.MethodPost, "http://"+addr+"/internal/tcc/"+name, l, &a, epoch)
	if err != nil {
		t.Fatalf("%s %+v: %v (%s)", name, l, err, raw)
	}
	return status, a
}

func balances(t *testing.T, p *unittest.Pair, uids ...int64) []int64 {
	t.Helper()
	var out []int64
	for _, uid := range uids {
		_, a, err := p.Client.Account(context.Background(), p.Primary().Addr(), uid)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.BalanceMinor)
	}
	return out
}

// TestTCCSteps walks every step of both legs: idempotent retries, the reservation, empty
// rollback, a try after its cancel, refusals, and the audit of the legs.
func TestTCCSteps(t *testing.T) {
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) { tccSteps(t, be.Server(t)) })
	}
}

func tccSteps(t *testing.T, srv sqldb.Server) {
	p := unittest.StartPair(t, unittest.Options{Storage: srv})
	seed(t, p, 2, 1_000)
	addr, e := p.Primary().Addr(), p.Epoch()
	for _, s := range walk() {
		status, a := step(t, p, addr, s.step, e, s.leg)
		if status != s.wantStatus || (s.wantState != "" && a.State != s.wantState) {
			t.Errorf("%s: %d %+v, want %d %s", s.name, status, a, s.wantStatus, s.wantState)
		}
		if got := balances(t, p, 0, 1); got[0] != s.wantBal[0] || got[1] != s.wantBal[1] {
			t.Errorf("%s: balances %v, want %v", s.name, got, s.wantBal)
		}
	}
	if status, _, _ := p.Client.Do(context.Background(), http.MethodPost, "http://"+addr+"/internal/tcc/try", debitOf("k8", 1), nil, 0); status != http.StatusBadRequest {
		t.Errorf("a step without an epoch: %d, want 400", status)
	}
	// A step with other fields than its leg's is another transfer's: the core zone tells that
	// 409 from a decided leg's by its code (a try there reserved nothing, a cancel has nothing
	// of its own to release).
	for _, name := range []string{"try", "confirm", "cancel"} {
		status, raw, _ := p.Client.Do(context.Background(), http.MethodPost, "http://"+addr+"/internal/tcc/"+name, debitOf("k1", 301), nil, e)
		if status != http.StatusConflict || !bytes.Contains(raw, []byte(`"code":"idempotency_conflict"`)) {
			t.Errorf("%s of k1's debit with another amount: %d %s, want 409 idempotency_conflict", name, status, raw)
		}
	}
	if status, _, _ := p.Client.Pay(context.Background(), addr, e, ledger.Payment{Key: "k1", FromUID: 0, ToUID: 1, AmountMinor: 300}); status != http.StatusConflict {
		t.Errorf("a same-unit payment reusing a transfer's key: %d, want 409", status)
	}
	for _, rep := range []struct {
		name string
		v    map[string]ledger.Verdict
	}{{"online", unittest.Verdicts(p.AuditOnline(t))}, {"offline", unittest.Verdicts(p.AuditOffline(t))}} {
		for check, v := range rep.v {
			if v != ledger.True {
				t.Errorf("%s audit: %s %s", rep.name, check, v)
			}
		}
	}
}

// walkStep is one step of the walk through every step of both legs, and what it answers.
type walkStep struct {
	name       string
	step       string
	leg        leg
	wantStatus int
	wantState  string
	wantBal    []int64 // balances of 0 and 1 after the step
}

func debitOf(key string, amount int64) leg {
	return leg{Key: key, Leg: ledger.LegDebit, FromUID: 0, ToUID: 1, AmountMinor: amount}
}

func creditOf(key string, amount int64) leg {
	return leg{Key: key, Leg: ledger.LegCredit, FromUID: 0, ToUID: 1, AmountMinor: amount}
}

// walk is every step of both legs on accounts 0 and 1 holding 1,000 each: idempotent retries,
// the reservation, empty rollback, a try after its cancel, refusals.
func walk() []walkStep {
	return []walkStep{
		{"try reserves the payer's funds", "try", debitOf("k1", 300), 200, "tried", []int64{700, 1_000}},
		{"try again: the same reservation", "try", debitOf("k1", 300), 200, "tried", []int64{700, 1_000}},
		{"the credit tried (nothing recorded)", "try", creditOf("k1", 300), 200, "tried", []int64{700, 1_000}},
		{"confirm the debit", "confirm", debitOf("k1", 300), 200, "confirmed", []int64{700, 1_000}},
		{"confirm the credit applies it", "confirm", creditOf("k1", 300), 200, "confirmed", []int64{700, 1_300}},
		{"confirm again", "confirm", creditOf("k1", 300), 200, "confirmed", []int64{700, 1_300}},
		{"cancel after confirm is refused", "cancel", debitOf("k1", 300), 409, "", []int64{700, 1_300}},
		{"same key, other amount", "try", debitOf("k1", 301), 409, "", []int64{700, 1_300}},
		{"empty rollback", "cancel", creditOf("k2", 50), 200, "cancelled", []int64{700, 1_300}},
		{"empty rollback of the other leg", "cancel", debitOf("k2", 50), 200, "cancelled", []int64{700, 1_300}},
		{"try after its cancel is refused", "try", debitOf("k2", 50), 200, "cancelled", []int64{700, 1_300}},
		{"insufficient funds", "try", debitOf("k3", 5_000), 200, "refused", []int64{700, 1_300}},
		{"try then cancel releases", "try", debitOf("k4", 200), 200, "tried", []int64{500, 1_300}},
		{"cancel releases", "cancel", debitOf("k4", 200), 200, "cancelled", []int64{700, 1_300}},
		{"cancel again", "cancel", debitOf("k4", 200), 200, "cancelled", []int64{700, 1_300}},
		{"its credit never tried", "cancel", creditOf("k4", 200), 200, "cancelled", []int64{700, 1_300}},
		{"confirm without try", "confirm", debitOf("k5", 10), 409, "", []int64{700, 1_300}},
		{"unknown payee", "try", leg{Key: "k6", Leg: ledger.LegCredit, FromUID: 0, ToUID: 99, AmountMinor: 1}, 200, "refused", []int64{700, 1_300}},
		{"bad leg", "try", leg{Key: "k7", Leg: "sideways", FromUID: 0, ToUID: 1, AmountMinor: 1}, 400, "", []int64{700, 1_300}},
		{"bad amount", "try", leg{Key: "k7", Leg: ledger.LegDebit, FromUID: 0, ToUID: 1, AmountMinor: -1}, 400, "", []int64{700, 1_300}},
		{"a credit's try records nothing", "try", creditOf("k9", 5), 200, "tried", []int64{700, 1_300}},
		{"so its cancel is an empty rollback", "cancel", creditOf("k9", 5), 200, "cancelled", []int64{700, 1_300}},
		{"as is its debit's, never tried", "cancel", debitOf("k9", 5), 200, "cancelled", []int64{700, 1_300}},
		{"and a credit's try after its cancel is refused", "try", creditOf("k9", 5), 200, "cancelled", []int64{700, 1_300}},
		{"k10 reserved", "try", debitOf("k10", 5), 200, "tried", []int64{695, 1_300}},
		{"k10 credit tried", "try", creditOf("k10", 5), 200, "tried", []int64{695, 1_300}},
		{"k10 debit confirmed", "confirm", debitOf("k10", 5), 200, "confirmed", []int64{695, 1_300}},
		{"a credit confirmed after a try that recorded nothing", "confirm", creditOf("k10", 5), 200, "confirmed", []int64{695, 1_305}},
		{"confirmed again", "confirm", creditOf("k10", 5), 200, "confirmed", []int64{695, 1_305}},
	}
}

// TestTCCBatch sends the whole walk as one POST /internal/tcc/batch: each step answered as the
// single endpoint answers it, in order, and the balances where the walk leaves them; a batch
// that is malformed as a whole is refused and changes nothing.
func TestTCCBatch(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 1_000)
	addr, e := p.Primary().Addr(), p.Epoch()
	type batchStep struct {
		Step string `json:"step"`
		leg
	}
	var body struct {
		Steps []batchStep `json:"steps"`
	}
	steps := walk()
	for _, s := range steps {
		body.Steps = append(body.Steps, batchStep{Step: s.step, leg: s.leg})
	}
	var ans unit.BatchResponse
	status, raw, err := p.Client.Do(context.Background(), http.MethodPost, "http://"+addr+"/internal/tcc/batch", body, &ans, e)
	if err != nil || status != http.StatusOK || len(ans.Replies) != len(steps) {
		t.Fatalf("batch: %d %v %s", status, err, raw)
	}
	for i, s := range steps {
		var a legAnswer
		if err := jsonUnmarshal(ans.Replies[i].Body, &a); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if ans.Replies[i].Status != s.wantStatus || (s.wantState != "" && a.State != s.wantState) {
			t.Errorf("%s: %d %s, want %d %s", s.name, ans.Replies[i].Status, ans.Replies[i].Body, s.wantStatus, s.wantState)
		}
	}
	want := steps[len(steps)-1].wantBal
	if got := balances(t, p, 0, 1); got[0] != want[0] || got[1] != want[1] {
		t.Errorf("balances %v, want %v", got, want)
	}
	tooMany := struct {
		Steps []batchStep `json:"steps"`
	}{Steps: make([]batchStep, unit.TCCBatchMax+1)}
	for i := range tooMany.Steps {
		tooMany.Steps[i] = batchStep{Step: "try", leg: debitOf("m"+strconv.Itoa(i), 1)}
	}
	for _, bad := range []struct {
		name  string
		body  any
		epoch int64
	}{
		{"no steps", map[string]any{"steps": []any{}}, e},
		{"too many steps", tooMany, e},
		{"no epoch", body, 0},
		{"unknown field", map[string]any{"steps": []any{map[string]any{"step": "try", "key": "m", "leg": "debit", "from_uid": 0, "to_uid": 1, "amount_minor": 1, "x": 1}}}, e},
		{"not JSON", "steps", e},
	} {
		if status, raw, _ := p.Client.Do(context.Background(), http.MethodPost, "http://"+addr+"/internal/tcc/batch", bad.body, nil, bad.epoch); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad.name, status, raw)
		}
	}
	if got := balances(t, p, 0, 1); got[0] != want[0] || got[1] != want[1] {
		t.Errorf("balances after refused batches %v, want %v", got, want)
	}
}

// TestTCCFencing: a step under an epoch older than the replica's is refused (421), as a payment
// is; with the tcc-no-fencing defect it is accepted and the audit calls it false.
func TestTCCFencing(t *testing.T) {
	for _, defect := range []bool{false, true} {
		t.Run(map[bool]string{false: "fenced", true: "tcc-no-fencing"}[defect], func(t *testing.T) {
			p := pairWith(t, unit.DefectTCCNoFencing, defect)
			seed(t, p, 2, 1_000)
			stale := p.Epoch()
			primary := p.Failover(t)
			status, a := step(t, p, primary.Addr(), "try", stale, leg{Key: "z1", Leg: ledger.LegDebit, FromUID: 0, ToUID: 1, AmountMinor: 5})
			verdicts := unittest.Verdicts(p.AuditOnline(t))
			if !defect {
				if status != http.StatusMisdirectedRequest {
					t.Errorf("stale try: %d %+v, want 421", status, a)
				}
				if verdicts[ledger.CheckNoStaleEpochWrites] != ledger.True {
					t.Errorf("audit %v, want true", verdicts)
				}
				return
			}
			if status != http.StatusOK || a.State != ledger.LegTried {
				t.Errorf("stale try with the defect: %d %+v, want accepted", status, a)
			}
			if verdicts[ledger.CheckNoStaleEpochWrites] != ledger.False || verdicts[ledger.CheckCrossUnitAtomic] != ledger.False {
				t.Errorf("audit %v, want the stale write and the lone reservation false", verdicts)
			}
		})
	}
}

// TestTCCAsksBeforeExpiring: a leg left tried is never released on the participant's own
// initiative: its primary asks the core zone, waits while the transfer is undecided, and applies
// the decision once there is one.
func TestTCCAsksBeforeExpiring(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 1_000)
	addr, e := p.Primary().Addr(), p.Epoch()
	held := leg{Key: "q1", Leg: ledger.LegDebit, FromUID: 0, ToUID: 1, AmountMinor: 400}
	if status, a := step(t, p, addr, "try", e, held); status != http.StatusOK || a.State != ledger.LegTried {
		t.Fatalf("try: %d %+v", status, a)
	}
	waitFor(t, "the participant to ask the core zone twice", func() bool { return p.Core.Asked("q1") >= 2 })
	if got := balances(t, p, 0); got[0] != 600 {
		t.Fatalf("balance %d while the core zone says trying, want the reservation held (600)", got[0])
	}
	p.Core.Decide("q1", ledger.LegCancelled)
	waitFor(t, "the reservation released as the core zone decided", func() bool { return balances(t, p, 0)[0] == 1_000 })
	if status, a := step(t, p, addr, "try", e, held); status != http.StatusOK || a.State != ledger.LegCancelled {
		t.Errorf("a late try after the cancel: %d %+v, want the cancelled leg", status, a)
	}
}

// TestTCCShadowLegAsksToo: the shadow plane's legs are asked about like production's, and say
// their plane, so that a presumed abort is counted in the shadow plane's figures.
func TestTCCShadowLegAsksToo(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	addr := p.Primary().Addr()
	waitFor(t, "the shadow plane open", func() bool { return shadowState(t, addr).Ready }) // until then marked calls get 503
	run := runHeader("run-1")
	if status, raw := marked(t, http.MethodPost, "http://"+addr+"/v1/accounts/bulk", run,
		map[string]any{"accounts": []ledger.Account{{UID: 0, BalanceMinor: 1_000}, {UID: 1, BalanceMinor: 1_000}}}, nil); status != http.StatusOK {
		t.Fatalf("open shadow accounts: %d %s", status, raw)
	}
	h := runHeader("run-1")
	h.Set(unit.EpochHeader, strconv.FormatInt(p.Epoch(), 10))
	held := leg{Key: "s1", Leg: ledger.LegDebit, FromUID: 0, ToUID: 1, AmountMinor: 400}
	var a legAnswer
	if status, raw := marked(t, http.MethodPost, "http://"+addr+"/internal/tcc/try", h, held, &a); status != http.StatusOK || a.State != ledger.LegTried {
		t.Fatalf("marked try: %d %s", status, raw)
	}
	waitFor(t, "the shadow plane to ask the core zone", func() bool { return p.Core.Asked("s1?plane=shadow") >= 1 })
	if got := p.Core.Asked("s1"); got != 0 {
		t.Errorf("asked %d times about s1 for the production plane, which holds no leg of it", got)
	}
	p.Core.Decide("s1", ledger.LegCancelled)
	waitFor(t, "the shadow reservation released", func() bool { return balance(t, addr, run, 0) == 1_000 })
}
