package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPaymentValidate(t *testing.T) {
	ok := Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: 5}
	tests := []struct {
		name string
		p    Payment
		want error
	}{
		{"valid", ok, nil},
		{"missing key", Payment{FromUID: 1, ToUID: 2, AmountMinor: 5}, ErrMissingKey},
		{"key too long", Payment{Key: strings.Repeat("k", KeyBytesMax+1), FromUID: 1, ToUID: 2, AmountMinor: 5}, ErrKeyTooLong},
		{"key at limit", Payment{Key: strings.Repeat("k", KeyBytesMax), FromUID: 1, ToUID: 2, AmountMinor: 5}, nil},
		{"negative amount", Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: -5}, ErrInvalidAmount},
		{"zero amount", Payment{Key: "k", FromUID: 1, ToUID: 2}, ErrInvalidAmount},
		{"amount over max", Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: AmountMinorMax + 1}, ErrInvalidAmount},
		{"negative uid", Payment{Key: "k", FromUID: -1, ToUID: 2, AmountMinor: 5}, ErrInvalidUID},
		{"same account", Payment{Key: "k", FromUID: 2, ToUID: 2, AmountMinor: 5}, ErrSameAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Validate(); !errors.Is(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("Validate() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	p := Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: 100}
	tests := []struct {
		name    string
		balance int64
		want    Outcome
		legs    []Posting
	}{
		{"covered", 150, Outcome{Payment: p, Status: StatusCommitted}, []Posting{{1, -100}, {2, 100}}},
		{"exactly covered", 100, Outcome{Payment: p, Status: StatusCommitted}, []Posting{{1, -100}, {2, 100}}},
		{"short by one", 99, Outcome{Payment: p, Status: StatusFailed, Reason: ReasonInsufficientFunds}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(p, tt.balance)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Decide() (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got.Postings(), tt.legs); diff != "" {
				t.Errorf("Postings() (-got +want):\n%s", diff)
			}
		})
	}
}

func TestBulkAndOpening(t *testing.T) {
	tests := []struct {
		name     string
		accounts []Account
		want     error
	}{
		{"valid", []Account{{1, 0}, {2, 10}}, nil},
		{"duplicate uid", []Account{{1, 0}, {1, 0}}, ErrDuplicateAccount},
		{"negative opening", []Account{{1, -1}}, ErrInvalidAmount},
		{"negative uid", []Account{{-1, 1}}, ErrInvalidUID},
		{"too many", make([]Account, AccountsPerBulkMax+1), ErrTooManyAccounts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateBulk(tt.accounts); !errors.Is(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("ValidateBulk() = %v, want %v", got, tt.want)
			}
		})
	}
	if err := Opening(10, true, Account{UID: 1, BalanceMinor: 10}); err != nil {
		t.Errorf("same opening again = %v, want nil", err)
	}
	if err := Opening(10, true, Account{UID: 1, BalanceMinor: 11}); !errors.Is(err, ErrAccountExists) {
		t.Errorf("other opening = %v, want ErrAccountExists", err)
	}
}

// TestModelRandomized drives the reference ledger with random opens, payments, retries and
// conflicting reuses of keys, and checks after every step what must always hold: money is
// conserved, no balance is negative, a retry changes nothing and returns the first outcome, a
// failed payment moves nothing, every committed payment is posted exactly once.
func TestModelRandomized(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { modelRun(t, seed, 1_500) })
	}
}

func modelRun(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	l := New()
	var keys []string
	const uids = 12
	for step := 0; step < steps; step++ {
		before := l.Accounts()
		switch op := rng.IntN(10); {
		case op == 0:
			a := Account{UID: rng.Int64N(uids), BalanceMinor: rng.Int64N(1_000)}
			if err := l.Open(a); err != nil && !errors.Is(err, ErrAccountExists) {
				t.Fatalf("step %d: Open(%+v) = %v", step, a, err)
			}
		case op <= 2 && len(keys) > 0:
			retryStep(t, l, rng, keys, before)
		default:
			p := Payment{Key: fmt.Sprintf("k%d", step), FromUID: rng.Int64N(uids), ToUID: rng.Int64N(uids), AmountMinor: rng.Int64N(300) - 10}
			o, err := l.Pay(p)
			if err != nil {
				if diff := cmp.Diff(l.Accounts(), before); diff != "" {
					t.Fatalf("step %d: rejected %+v (%v) changed balances:\n%s", step, p, err, diff)
				}
				continue
			}
			keys = append(keys, p.Key)
			if o.Status == StatusFailed {
				if diff := cmp.Diff(l.Accounts(), before); diff != "" {
					t.Fatalf("step %d: failed payment %+v changed balances:\n%s", step, p, diff)
				}
			}
		}
		if step%16 != 0 && step != steps-1 {
			continue // the books are a full scan: every few steps is enough
		}
		b := l.Books()
		if b.BalanceSumMinor != b.OpenedSumMinor || b.PostingSumMinor != 0 || b.NegativeBalances != 0 ||
			b.BalanceMismatches != 0 || b.CommittedNotOnce != 0 || b.FailedWithEffect != 0 {
			t.Fatalf("step %d: books broken: %+v", step, b)
		}
	}
}

// retryStep resends a recorded key, either unchanged (same outcome, nothing moves) or with
// another amount (a conflict, nothing moves).
func retryStep(t *testing.T, l *Ledger, rng *rand.Rand, keys []string, before []Account) {
	t.Helper()
	key := keys[rng.IntN(len(keys))]
	first, ok := l.Payment(key)
	if !ok {
		t.Fatalf("recorded key %q missing", key)
	}
	p := first.Payment
	conflict := rng.IntN(2) == 0
	if conflict {
		p.AmountMinor++
	}
	got, err := l.Pay(p)
	switch {
	case conflict && !errors.Is(err, ErrIdempotencyConflict):
		t.Fatalf("conflicting retry of %q = %v, want ErrIdempotencyConflict", key, err)
	case !conflict && err != nil:
		t.Fatalf("retry of %q = %v", key, err)
	case !conflict:
		if diff := cmp.Diff(got, first); diff != "" {
			t.Fatalf("retry of %q outcome (-got +want):\n%s", key, diff)
		}
	}
	if diff := cmp.Diff(l.Accounts(), before); diff != "" {
		t.Fatalf("retry of %q changed balances:\n%s", key, diff)
	}
}

func TestModelUnknownAccount(t *testing.T) {
	l := New()
	if err := l.Open(Account{UID: 1, BalanceMinor: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pay(Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: 1}); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("Pay to unknown = %v, want ErrUnknownAccount", err)
	}
	if _, ok := l.Payment("k"); ok {
		t.Fatal("a rejected payment was recorded")
	}
}

// TestMoneyBound: the bound on a unit's opened money keeps a whole target's money, hence every
// balance and every sum the audit takes, below 2^62.
func TestMoneyBound(t *testing.T) {
	if total := uint64(UnitsMax) * uint64(OpenedMinorPerUnitMax); total >= 1<<62 {
		t.Fatalf("%d units of %d minor = %d, not below 2^62", UnitsMax, OpenedMinorPerUnitMax, total)
	}
	max := []Account{{UID: 1, BalanceMinor: AmountMinorMax}}
	tests := []struct {
		name   string
		opened int64
		fresh  []Account
		err    error
	}{
		{"empty unit", 0, max, nil},
		{"up to the limit", OpenedMinorPerUnitMax - AmountMinorMax, max, nil},
		{"one over", OpenedMinorPerUnitMax - AmountMinorMax + 1, max, ErrMoneyLimit},
		{"full", OpenedMinorPerUnitMax, []Account{{UID: 1, BalanceMinor: 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := OpeningsWithin(tt.opened, tt.fresh); !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("OpeningsWithin = %v, want %v", err, tt.err)
			}
		})
	}
}
