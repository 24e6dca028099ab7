// Package ledger holds the pure double-entry rules of the built-in payment target (paycell) and
// the audit invariants over plain values. Money is integer minor units; every payment carries a
// client idempotency key, and a retry with the same key returns the first outcome.
//
// Nothing here does I/O: the unit applies these rules inside its SQL transactions, the audit
// evaluates the invariants over figures gathered from replicas, and the randomized model test
// checks both against the in-memory Ledger.
package ledger

import (
	"errors"
	"fmt"
)

// Limits of the business vocabulary, shared by the unit (which enforces them on input) and
// tests (which probe their edges).
const (
	// KeyBytesMax bounds an idempotency key.
	KeyBytesMax = 128
	// AmountMinorMax bounds one payment or one opening balance (2^53: exact in every JSON
	// parser, and a sum of 1,000 such amounts still fits an int64).
	AmountMinorMax = int64(1) << 53
	// AccountsPerBulkMax bounds one bulk account creation.
	AccountsPerBulkMax = 10_000
	// UnitsMax bounds the units of a target (named a..z).
	UnitsMax = 26
	// OpenedMinorPerUnitMax bounds the money opened in one unit (the sum of its accounts'
	// opening balances): 2^57, so that a whole target's money, UnitsMax units of it, stays below
	// 2^62. Payments only move money, so every balance, and every sum the audit takes (of
	// balances, openings, postings) stays within an int64, in Go and in SQLite's sum().
	OpenedMinorPerUnitMax = int64(1) << 57
)

// Errors of the business rules. Each is a client error: the request changes nothing.
var (
	ErrMissingKey          = errors.New("missing idempotency key")
	ErrKeyTooLong          = errors.New("idempotency key too long")
	ErrInvalidUID          = errors.New("invalid account uid")
	ErrInvalidAmount       = errors.New("invalid amount")
	ErrSameAccount         = errors.New("payment from an account to itself")
	ErrUnknownAccount      = errors.New("unknown account")
	ErrAccountExists       = errors.New("account exists with another opening balance")
	ErrIdempotencyConflict = errors.New("idempotency key reused with different fields")
	ErrTooManyAccounts     = errors.New("too many accounts in one request")
	ErrDuplicateAccount    = errors.New("account twice in one request")
	ErrMoneyLimit          = errors.New("the unit's opened money would exceed its limit")
)

// Status is the outcome of a payment that was decided (and recorded).
type Status string

// The statuses of a decided payment.
const (
	StatusCommitted Status = "committed"
	StatusFailed    Status = "failed"
)

// Reason says why a payment failed.
type Reason string

// The reasons a decided payment fails.
const (
	ReasonNone              Reason = ""
	ReasonInsufficientFunds Reason = "insufficient_funds"
)

// Account is an account and its balance.
type Account struct {
	UID          int64 `json:"uid"`
	BalanceMinor int64 `json:"balance_minor"`
}

// Validate reports whether a as an opening (a new account) is acceptable.
func (a Account) Validate() error {
	if a.UID < 0 {
		return fmt.Errorf("validate account %d: %w", a.UID, ErrInvalidUID)
	}
	if a.BalanceMinor < 0 || a.BalanceMinor > AmountMinorMax {
		return fmt.Errorf("validate account %d opening %d: %w", a.UID, a.BalanceMinor, ErrInvalidAmount)
	}
	return nil
}

// ValidateBulk checks a bulk opening: each account, the count and no uid twice.
func ValidateBulk(accounts []Account) error {
	if len(accounts) > AccountsPerBulkMax {
		return fmt.Errorf("validate %d accounts: %w", len(accounts), ErrTooManyAccounts)
	}
	seen := make(map[int64]struct{}, len(accounts))
	for _, a := range accounts {
		if err := a.Validate(); err != nil {
			return err
		}
		if _, ok := seen[a.UID]; ok {
			return fmt.Errorf("validate account %d: %w", a.UID, ErrDuplicateAccount)
		}
		seen[a.UID] = struct{}{}
	}
	return nil
}

// Payment is a client's request to move money between two accounts.
type Payment struct {
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
}

// Validate reports whether p is well formed; it does not look at balances.
func (p Payment) Validate() error {
	if err := ValidKey(p.Key); err != nil {
		return fmt.Errorf("validate payment: %w", err)
	}
	switch {
	case p.FromUID < 0 || p.ToUID < 0:
		return fmt.Errorf("validate payment %q: %w", p.Key, ErrInvalidUID)
	case p.AmountMinor <= 0 || p.AmountMinor > AmountMinorMax:
		return fmt.Errorf("validate payment %q amount %d: %w", p.Key, p.AmountMinor, ErrInvalidAmount)
	case p.FromUID == p.ToUID:
		return fmt.Errorf("validate payment %q: %w", p.Key, ErrSameAccount)
	}
	return nil
}

// Outcome is a decided payment: what the client gets back, and what every replica records.
type Outcome struct {
	Payment
	Status Status `json:"status"`
	Reason Reason `json:"reason,omitempty"`
}

// Posting is one leg of a committed payment: a signed change of one account's balance.
type Posting struct {
	UID         int64 `json:"uid"`
	AmountMinor int64 `json:"amount_minor"`
}

// Decide decides a valid payment given the payer's balance: committed when the balance covers
// the amount, failed with a reason otherwise. It is the only place that decides.
func Decide(p Payment, fromBalanceMinor int64) Outcome {
	assert(p.Validate() == nil, "decide an invalid payment")
	assert(fromBalanceMinor >= 0, "decide with a negative balance")
	if fromBalanceMinor < p.AmountMinor {
		return Outcome{Payment: p, Status: StatusFailed, Reason: ReasonInsufficientFunds}
	}
	return Outcome{Payment: p, Status: StatusCommitted}
}

// Postings returns the legs of o: a debit and a credit of the same amount when committed, none
// when failed (a failed payment has no effect).
func (o Outcome) Postings() []Posting {
	if o.Status != StatusCommitted {
		return nil
	}
	return []Posting{{UID: o.FromUID, AmountMinor: -o.AmountMinor}, {UID: o.ToUID, AmountMinor: o.AmountMinor}}
}

// Retry checks a request that reuses the key of a recorded outcome: nil when it is the same
// payment (the caller answers the first outcome), ErrIdempotencyConflict otherwise.
func Retry(first Outcome, p Payment) error {
	assert(first.Key == p.Key, "retry compares different keys")
	if first.Payment != p {
		return fmt.Errorf("retry payment %q: %w", p.Key, ErrIdempotencyConflict)
	}
	return nil
}

// Opening checks a request to open an account that may already exist: nil when it does not
// exist or exists with the same opening balance (an idempotent retry of a seed).
func Opening(existingOpenedMinor int64, exists bool, a Account) error {
	if exists && existingOpenedMinor != a.BalanceMinor {
		return fmt.Errorf("open account %d: %w", a.UID, ErrAccountExists)
	}
	return nil
}

// OpeningsWithin checks new openings against the money already opened in their unit
// (openedMinor): nil when the unit's total stays within OpenedMinorPerUnitMax.
func OpeningsWithin(openedMinor int64, fresh []Account) error {
	assert(openedMinor >= 0 && openedMinor <= OpenedMinorPerUnitMax, "opened money out of bounds")
	total := openedMinor
	for _, a := range fresh {
		assert(a.Validate() == nil, "open an invalid account")
		total += a.BalanceMinor // at most AccountsPerBulkMax * 2^53 more: no overflow
	}
	if total > OpenedMinorPerUnitMax {
		return fmt.Errorf("open %d accounts of %d minor in a unit holding %d: at most %d: %w",
			len(fresh), total-openedMinor, openedMinor, OpenedMinorPerUnitMax, ErrMoneyLimit)
	}
	return nil
}

// assert panics on a programmer error: a broken precondition, never bad input.
func assert(cond bool, msg string) {
	if !cond {
		panic("ledger: assertion failed: " + msg)
	}
}
