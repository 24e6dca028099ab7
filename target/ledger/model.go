package ledger

import (
	"fmt"
	"sort"
)

// Ledger is the in-memory reference model of one unit's books: the rules above applied to maps.
// The unit keeps the same books in SQL; tests drive both with the same operations and compare.
// It is not safe for concurrent use.
type Ledger struct {
	accounts map[int64]*modelAccount
	payments map[string]*modelPayment
}

type modelAccount struct {
	openedMinor  int64
	balanceMinor int64
}

type modelPayment struct {
	outcome  Outcome
	postings []Posting // every leg ever applied under this key (more than one set is a bug)
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{accounts: make(map[int64]*modelAccount), payments: make(map[string]*modelPayment)}
}

// Open opens an account; opening it again with the same balance is a no-op.
func (l *Ledger) Open(a Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	existing, ok := l.accounts[a.UID]
	if ok {
		return Opening(existing.openedMinor, true, a)
	}
	l.accounts[a.UID] = &modelAccount{openedMinor: a.BalanceMinor, balanceMinor: a.BalanceMinor}
	return nil
}

// Pay decides and records p, or returns the first outcome of its key.
func (l *Ledger) Pay(p Payment) (Outcome, error) {
	if err := p.Validate(); err != nil {
		return Outcome{}, err
	}
	if first, ok := l.payments[p.Key]; ok {
		if err := Retry(first.outcome, p); err != nil {
			return Outcome{}, err
		}
		return first.outcome, nil
	}
	from, okFrom := l.accounts[p.FromUID]
	to, okTo := l.accounts[p.ToUID]
	if !okFrom || !okTo {
		return Outcome{}, fmt.Errorf("pay %q: %w", p.Key, ErrUnknownAccount)
	}
	o := Decide(p, from.balanceMinor)
	legs := o.Postings()
	for _, leg := range legs {
		l.accounts[leg.UID].balanceMinor += leg.AmountMinor
	}
	assert(from.balanceMinor >= 0 && to.balanceMinor >= 0, "a decided payment left a negative balance")
	l.payments[p.Key] = &modelPayment{outcome: o, postings: legs}
	return o, nil
}

// Balance returns the balance of an account.
func (l *Ledger) Balance(uid int64) (int64, bool) {
	a, ok := l.accounts[uid]
	if !ok {
		return 0, false
	}
	return a.balanceMinor, true
}

// Payment returns the recorded outcome of a key.
func (l *Ledger) Payment(key string) (Outcome, bool) {
	p, ok := l.payments[key]
	if !ok {
		return Outcome{}, false
	}
	return p.outcome, true
}

// Accounts returns every account, ordered by uid.
func (l *Ledger) Accounts() []Account {
	out := make([]Account, 0, len(l.accounts))
	for uid, a := range l.accounts {
		out = append(out, Account{UID: uid, BalanceMinor: a.balanceMinor})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

// Books computes the figures of the audit from the model, the way the unit computes them from
// its tables.
func (l *Ledger) Books() Books {
	var b Books
	postedMinor := make(map[int64]int64)
	for _, a := range l.accounts {
		b.Accounts++
		b.BalanceSumMinor += a.balanceMinor
		b.OpenedSumMinor += a.openedMinor
		if a.balanceMinor < 0 {
			b.NegativeBalances++
		}
	}
	for _, p := range l.payments {
		for _, leg := range p.postings {
			b.PostingSumMinor += leg.AmountMinor
			postedMinor[leg.UID] += leg.AmountMinor
		}
		switch p.outcome.Status {
		case StatusCommitted:
			b.PaymentsCommitted++
			if !ExactlyOnce(p.outcome, p.postings) {
				b.CommittedNotOnce++
			}
		case StatusFailed:
			b.PaymentsFailed++
			if len(p.postings) != 0 {
				b.FailedWithEffect++
			}
		}
	}
	for uid, a := range l.accounts {
		if a.balanceMinor != a.openedMinor+postedMinor[uid] {
			b.BalanceMismatches++
		}
	}
	return b
}

// ExactlyOnce reports whether the legs recorded under a committed payment's key are exactly its
// debit and its credit.
func ExactlyOnce(o Outcome, legs []Posting) bool {
	want := o.Postings()
	if len(legs) != len(want) {
		return false
	}
	sorted := append([]Posting(nil), legs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].AmountMinor < sorted[j].AmountMinor })
	for i := range want {
		if sorted[i] != want[i] {
			return false
		}
	}
	return true
}
