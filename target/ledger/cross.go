package ledger

import (
	"fmt"
	"strconv"
)

// CheckCrossUnitAtomic is the invariant of cross-unit payments (try / confirm / cancel decided
// in the core zone): no reservation or pending credit left alone, every transfer confirmed on
// both sides or cancelled on both, as the core zone decided it, and money conserved across units.
const CheckCrossUnitAtomic = "cross_unit_atomic"

// The legs and states of a cross-unit transfer as a participant records them.
const (
	LegDebit  = "debit"  // the payer's unit: funds reserved at try, released at cancel
	LegCredit = "credit" // the payee's unit: the account checked at try (nothing recorded), the credit applied at confirm

	LegTried     = "tried"
	LegConfirmed = "confirmed"
	LegCancelled = "cancelled"
)

// Cross is one replica's figures of its cross-unit transfer legs. The digests fold each leg's
// key and amount (CrossLeg), so that the debits of every unit and the credits of every unit can
// be compared as sets, and with the core zone's decisions.
type Cross struct {
	DebitsConfirmed  Digest `json:"debits_confirmed"`
	CreditsConfirmed Digest `json:"credits_confirmed"`
	DebitsCancelled  Digest `json:"debits_cancelled"`
	CreditsCancelled Digest `json:"credits_cancelled"`
	// PendingDebits are reservations (tried, not decided here yet); HeldMinor their sum.
	PendingDebits  int64 `json:"pending_debits"`
	PendingCredits int64 `json:"pending_credits"`
	HeldMinor      int64 `json:"held_minor"`
	// OutMinor is the sum of confirmed debits (money that left this unit), InMinor of
	// confirmed credits (money that arrived).
	OutMinor int64 `json:"out_minor"`
	InMinor  int64 `json:"in_minor"`
}

// AddLeg folds one recorded leg into c.
func (c *Cross) AddLeg(key, leg, state string, amountMinor int64) {
	switch {
	case leg == LegDebit && state == LegConfirmed:
		c.DebitsConfirmed.AddLeg(key, amountMinor)
		c.OutMinor += amountMinor
	case leg == LegCredit && state == LegConfirmed:
		c.CreditsConfirmed.AddLeg(key, amountMinor)
		c.InMinor += amountMinor
	case leg == LegDebit && state == LegCancelled:
		c.DebitsCancelled.AddLeg(key, amountMinor)
	case leg == LegCredit && state == LegCancelled:
		c.CreditsCancelled.AddLeg(key, amountMinor)
	case leg == LegDebit:
		c.PendingDebits++
		c.HeldMinor += amountMinor
	default:
		c.PendingCredits++
	}
}

// NetMinor is what cross-unit transfers changed this replica's balances by: the postings of its
// legs (same-unit postings sum to zero).
func (c Cross) NetMinor() int64 { return c.InMinor - c.OutMinor - c.HeldMinor }

// AddLeg folds a transfer (key and amount) into d: the fingerprint both participants and the
// core zone compute for the same decision.
func (d *Digest) AddLeg(key string, amountMinor int64) {
	d.Add(key, strconv.FormatInt(amountMinor, 10))
}

// CoreTransfers is the core zone's account of the transfers it coordinated.
type CoreTransfers struct {
	Begun     int64  `json:"begun"`
	Confirmed Digest `json:"confirmed"`
	Cancelled Digest `json:"cancelled"`
	// Undecided are transfers still trying; Unfinished are decided ones not yet applied by
	// both participants (the recovery loop drives both to the end).
	Undecided  int64  `json:"undecided"`
	Unfinished int64  `json:"unfinished"`
	Error      string `json:"error,omitempty"`
}

// EvaluateCross judges CheckCrossUnitAtomic over the units' authoritative primaries and, when
// core is not nil, against the core zone's decisions.
func EvaluateCross(units []Unit, core *CoreTransfers) Check {
	j := &judge{figures: map[string]int64{}}
	var sum Cross
	missing := false // a unit's legs unread: the sums below are partial, and prove nothing
	for _, u := range units {
		p, ok := Authoritative(u.Replicas)
		if !ok {
			j.unknown("unit %s: no authoritative primary to read its transfer legs from", u.Name)
			missing = true
			continue
		}
		c := u.Replicas[p].Cross
		if c.PendingDebits != 0 || c.PendingCredits != 0 {
			j.fail("unit %s: %d reservations and %d pending credits left undecided", u.Name, c.PendingDebits, c.PendingCredits)
		}
		sum.DebitsConfirmed.Merge(c.DebitsConfirmed)
		sum.CreditsConfirmed.Merge(c.CreditsConfirmed)
		sum.DebitsCancelled.Merge(c.DebitsCancelled)
		sum.CreditsCancelled.Merge(c.CreditsCancelled)
		sum.PendingDebits += c.PendingDebits
		sum.PendingCredits += c.PendingCredits
		sum.HeldMinor += c.HeldMinor
		sum.OutMinor += c.OutMinor
		sum.InMinor += c.InMinor
	}
	j.figures["cross_confirmed"] = sum.DebitsConfirmed.Count
	j.figures["cross_cancelled"] = sum.DebitsCancelled.Count
	j.figures["cross_pending"] = sum.PendingDebits + sum.PendingCredits
	j.figures["cross_held_minor"] = sum.HeldMinor
	j.figures["cross_out_minor"] = sum.OutMinor
	j.figures["cross_in_minor"] = sum.InMinor
	if missing {
		// A leg of a unit unread is neither here nor there: comparing the sums without it
		// would call a sound target false. What each read unit shows alone (a leg left
		// pending) still counts.
		return j.check(CheckCrossUnitAtomic, "")
	}
	if sum.DebitsConfirmed != sum.CreditsConfirmed {
		j.fail("%d debits confirmed, %d credits confirmed: some transfers confirmed on one side only",
			sum.DebitsConfirmed.Count, sum.CreditsConfirmed.Count)
	}
	if sum.DebitsCancelled != sum.CreditsCancelled {
		j.fail("%d debits cancelled, %d credits cancelled: some transfers cancelled on one side only",
			sum.DebitsCancelled.Count, sum.CreditsCancelled.Count)
	}
	if sum.OutMinor != sum.InMinor {
		j.fail("%d left the payers' units, %d arrived in the payees': money not conserved across units", sum.OutMinor, sum.InMinor)
	}
	detail := fmt.Sprintf("%d transfers confirmed and %d cancelled on both sides, none pending", sum.DebitsConfirmed.Count, sum.DebitsCancelled.Count)
	if core == nil {
		return j.check(CheckCrossUnitAtomic, detail+" (the core zone's decisions not read)")
	}
	judgeCore(j, core, sum)
	return j.check(CheckCrossUnitAtomic, detail+", as the core zone decided")
}

// judgeCore compares the participants' legs with the core zone's decisions.
func judgeCore(j *judge, core *CoreTransfers, sum Cross) {
	if core.Error != "" {
		j.unknown("core zone: %s", core.Error)
		return
	}
	j.figures["cross_tried"] = core.Begun
	j.figures["cross_undecided"] = core.Undecided
	j.figures["cross_unfinished"] = core.Unfinished
	if core.Undecided != 0 || core.Unfinished != 0 {
		j.fail("core zone: %d transfers undecided and %d not applied by both participants", core.Undecided, core.Unfinished)
	}
	if core.Confirmed != sum.DebitsConfirmed {
		j.fail("core zone confirmed %d transfers, the payers' units applied %d other or others", core.Confirmed.Count, sum.DebitsConfirmed.Count)
	}
	if core.Cancelled != sum.DebitsCancelled {
		j.fail("core zone cancelled %d transfers, the payers' units cancelled %d other or others", core.Cancelled.Count, sum.DebitsCancelled.Count)
	}
}
