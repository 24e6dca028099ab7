package unit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// TestUnitAgainstModel drives a unit with random opens, payments (some to unknown accounts,
// some overdrawn), retries and conflicting reuses of keys, and the reference ledger with the
// same operations: every answer, and at the end every balance and payment on both replicas,
// must match the model.
func TestUnitAgainstModel(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { unitModelRun(t, seed, 300) })
	}
}

func unitModelRun(t *testing.T, seed uint64, steps int) {
	p := unittest.StartPair(t, unittest.Options{})
	rng := rand.New(rand.NewPCG(seed, 42))
	model := ledger.New()
	ctx, addr := context.Background(), p.Primary().Addr()
	const uids = 10
	var keys []string
	for step := range steps {
		switch op := rng.IntN(10); {
		case op == 0:
			a := ledger.Account{UID: rng.Int64N(uids), BalanceMinor: rng.Int64N(500)}
			status, _ := p.Client.Open(ctx, addr, p.Epoch(), []ledger.Account{a})
			merr := model.Open(a)
			if (status == http.StatusOK) != (merr == nil) {
				t.Fatalf("step %d: open %+v: unit %d, model %v", step, a, status, merr)
			}
		case op <= 2 && len(keys) > 0:
			first, _ := model.Payment(keys[rng.IntN(len(keys))])
			pay := first.Payment
			if rng.IntN(2) == 0 {
				pay.ToUID = (pay.ToUID + 1) % uids
			}
			comparePay(t, p, model, step, pay)
		default:
			pay := ledger.Payment{Key: fmt.Sprintf("k%d", step), FromUID: rng.Int64N(uids + 2), ToUID: rng.Int64N(uids + 2), AmountMinor: rng.Int64N(200) + 1}
			if comparePay(t, p, model, step, pay) {
				keys = append(keys, pay.Key)
			}
		}
	}
	for _, r := range p.Replicas {
		for uid := range int64(uids + 2) {
			want, ok := model.Balance(uid)
			status, got, _ := p.Client.Account(ctx, r.Addr(), uid)
			if ok != (status == http.StatusOK) || got.BalanceMinor != want {
				t.Errorf("%s: account %d = %d %+v, model %d (exists %v)", r.Name, uid, status, got, want, ok)
			}
		}
		for _, key := range keys {
			want, _ := model.Payment(key)
			if _, got, _ := p.Client.Payment(ctx, r.Addr(), key); got != want {
				t.Errorf("%s: payment %s = %+v, model %+v", r.Name, key, got, want)
			}
		}
	}
	rep := p.AuditOnline(t)
	for _, u := range rep.Units {
		for _, r := range u.Replicas {
			if diff := cmp.Diff(r.Books, model.Books()); diff != "" {
				t.Errorf("%s: books (-unit +model):\n%s", r.Replica, diff)
			}
		}
	}
	expectAllTrue(t, p)
}

// comparePay sends pay to the unit and the model and requires the same answer; it reports
// whether the payment was recorded.
func comparePay(t *testing.T, p *unittest.Pair, model *ledger.Ledger, step int, pay ledger.Payment) bool {
	t.Helper()
	status, got, err := p.Client.Pay(context.Background(), p.Primary().Addr(), p.Epoch(), pay)
	if err != nil {
		t.Fatalf("step %d: pay: %v", step, err)
	}
	want, merr := model.Pay(pay)
	wantStatus := http.StatusOK
	switch {
	case errors.Is(merr, ledger.ErrUnknownAccount):
		wantStatus = http.StatusNotFound
	case errors.Is(merr, ledger.ErrIdempotencyConflict):
		wantStatus = http.StatusConflict
	case merr != nil:
		wantStatus = http.StatusBadRequest
	}
	if status != wantStatus || (merr == nil && got != want) {
		t.Fatalf("step %d: pay %+v: unit %d %+v, model %+v %v", step, pay, status, got, want, merr)
	}
	return merr == nil
}
