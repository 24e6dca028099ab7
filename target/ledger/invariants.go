package ledger

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ChainsPath is the path and query that ask a replica for its chains at seqs alone
// (GET /internal/audit?chains_only=1&chain_at=..., target/PROTOCOL.md): the audit compares
// replicas by them, and a returning replica finds where its history parts from the primary's.
func ChainsPath(seqs []int64) string {
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = strconv.FormatInt(s, 10)
	}
	return "/internal/audit?chains_only=1&chain_at=" + url.QueryEscape(strings.Join(parts, ","))
}

// Verdict is the result of one invariant: true, false, or unknown (the figures needed to judge
// it could not be gathered).
type Verdict string

// The verdicts of an invariant.
const (
	True    Verdict = "true"
	False   Verdict = "false"
	Unknown Verdict = "unknown"
)

// The invariants, by name (the names are the audit's JSON vocabulary).
const (
	CheckMoneyConserved     = "money_conserved"
	CheckNoNegativeBalance  = "no_negative_balance"
	CheckAcknowledgedOnce   = "acknowledged_present_once"
	CheckFailedNoEffect     = "failed_without_effect"
	CheckReplicasConverged  = "replicas_converged"
	CheckNoStaleEpochWrites = "no_write_under_stale_epoch"
)

// The roles a replica reports.
const (
	RolePrimary    = "primary"
	RoleStandby    = "standby"
	RoleCatchingUp = "catching_up"
)

// Books are the figures of one replica's tables (or of the model).
type Books struct {
	Accounts          int64 `json:"accounts"`
	BalanceSumMinor   int64 `json:"balance_sum_minor"`
	OpenedSumMinor    int64 `json:"opened_sum_minor"`
	PostingSumMinor   int64 `json:"posting_sum_minor"`
	NegativeBalances  int64 `json:"negative_balances"`
	BalanceMismatches int64 `json:"balance_mismatches"` // balance != opening + postings
	PaymentsCommitted int64 `json:"payments_committed"`
	PaymentsFailed    int64 `json:"payments_failed"`
	CommittedNotOnce  int64 `json:"committed_not_once"` // legs other than one debit and one credit
	FailedWithEffect  int64 `json:"failed_with_effect"`
}

// Replica is everything the audit knows about one replica of a unit.
type Replica struct {
	Unit    string `json:"unit"`
	Replica string `json:"replica"`
	Role    string `json:"role"`
	Epoch   int64  `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	Chain   string `json:"chain"` // hash chain of the replica's history up to LastSeq
	// AckedSeq is the last seq this replica acknowledged to clients while it was primary, and
	// AckedChain its chain there: the history every later primary must share.
	AckedSeq   int64  `json:"acked_seq"`
	AckedChain string `json:"acked_chain"`
	Books      Books  `json:"books"`
	// LostAcknowledged counts acknowledged payments that a catch-up had to discard.
	LostAcknowledged    int64 `json:"lost_acknowledged"`
	StaleWritesAccepted int64 `json:"stale_writes_accepted"`
	StaleWritesRefused  int64 `json:"stale_writes_refused"`
	// Cross are the figures of the replica's cross-unit transfer legs.
	Cross Cross `json:"cross"`
	// Error is set when the replica's figures could not be gathered.
	Error string `json:"error,omitempty"`
}

// Unit is the audit's view of one unit: its replicas, and the chain of its authoritative
// primary at the seqs the other replicas must be compared at (see ChainSeqs).
type Unit struct {
	Name          string           `json:"name"`
	Replicas      []Replica        `json:"replicas"`
	PrimaryChains map[int64]string `json:"primary_chains,omitempty"`
}

// Check is the verdict on one invariant, with a detail a person reads and the figures behind it.
type Check struct {
	Name    string           `json:"name"`
	Verdict Verdict          `json:"verdict"`
	Detail  string           `json:"detail"`
	Figures map[string]int64 `json:"figures"`
}

// Authoritative returns the index of the unit's authoritative primary: the replica claiming the
// primary role under the highest epoch. Two primaries under that epoch is split brain: none.
func Authoritative(replicas []Replica) (int, bool) {
	best, ties := -1, 0
	for i, r := range replicas {
		if r.Error != "" || r.Role != RolePrimary {
			continue
		}
		switch {
		case best < 0 || r.Epoch > replicas[best].Epoch:
			best, ties = i, 0
		case r.Epoch == replicas[best].Epoch:
			ties++
		}
	}
	return best, best >= 0 && ties == 0
}

// ChainSeqs returns the seqs at which the authoritative primary's chain is needed: every other
// replica's acknowledged seq and every in-configuration standby's last seq.
func ChainSeqs(replicas []Replica) []int64 {
	p, ok := Authoritative(replicas)
	if !ok {
		return nil
	}
	set := map[int64]struct{}{}
	for i, r := range replicas {
		if i == p || r.Error != "" {
			continue
		}
		if r.AckedSeq > 0 {
			set[r.AckedSeq] = struct{}{}
		}
		if inConfig(replicas[p], r) && r.LastSeq > 0 {
			set[r.LastSeq] = struct{}{}
		}
	}
	out := make([]int64, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// inConfig reports whether r is the standby of primary p's configuration.
func inConfig(p, r Replica) bool {
	return r.Role == RoleStandby && r.Epoch == p.Epoch
}

// Evaluate judges every invariant over every unit, in a fixed order.
func Evaluate(units []Unit) []Check {
	checks := []Check{
		perReplica(CheckMoneyConserved, units, moneyConserved),
		perReplica(CheckNoNegativeBalance, units, noNegative),
		acknowledgedOnce(units),
		perReplica(CheckFailedNoEffect, units, failedNoEffect),
		converged(units),
		perReplica(CheckNoStaleEpochWrites, units, noStaleWrites),
		EvaluateCross(units, nil),
	}
	return checks
}

// Overall folds checks into one verdict: false if any is false, else unknown if any is unknown.
func Overall(checks []Check) Verdict {
	v := True
	for _, c := range checks {
		switch c.Verdict {
		case False:
			return False
		case Unknown:
			v = Unknown
		}
	}
	return v
}

// judge accumulates one check's findings.
type judge struct {
	falses, unknowns []string
	figures          map[string]int64
}

func (j *judge) fail(format string, args ...any) {
	j.falses = append(j.falses, fmt.Sprintf(format, args...))
}
func (j *judge) unknown(format string, args ...any) {
	j.unknowns = append(j.unknowns, fmt.Sprintf(format, args...))
}
func (j *judge) add(name string, v int64) { j.figures[name] += v }

func (j *judge) check(name, okDetail string) Check {
	c := Check{Name: name, Verdict: True, Detail: okDetail, Figures: j.figures}
	switch {
	case len(j.falses) > 0:
		c.Verdict, c.Detail = False, strings.Join(limitLines(j.falses), "; ")
	case len(j.unknowns) > 0:
		c.Verdict, c.Detail = Unknown, strings.Join(limitLines(j.unknowns), "; ")
	}
	return c
}

// detailLinesMax bounds a detail: a broken target can produce a finding per replica and unit.
const detailLinesMax = 8

func limitLines(lines []string) []string {
	if len(lines) <= detailLinesMax {
		return lines
	}
	return append(lines[:detailLinesMax:detailLinesMax], fmt.Sprintf("and %d more", len(lines)-detailLinesMax))
}

func name(r Replica) string { return r.Unit + "/" + r.Replica }

// perReplica judges a property that must hold on every replica's own books.
func perReplica(check string, units []Unit, f func(*judge, Replica)) Check {
	j := &judge{figures: map[string]int64{}}
	for _, u := range units {
		for _, r := range u.Replicas {
			if r.Error != "" {
				j.unknown("%s: no figures: %s", name(r), r.Error)
				continue
			}
			j.add("replicas", 1)
			f(j, r)
		}
	}
	return j.check(check, fmt.Sprintf("holds on all %d replicas", j.figures["replicas"]))
}

func moneyConserved(j *judge, r Replica) {
	b := r.Books
	j.add("balance_sum_minor", b.BalanceSumMinor)
	j.add("opened_sum_minor", b.OpenedSumMinor)
	j.add("balance_mismatches", b.BalanceMismatches)
	// Same-unit payments post to zero; cross-unit legs post what left and arrived (and what a
	// pending reservation holds), which the cross-unit invariant balances across units.
	net := r.Cross.NetMinor()
	if b.BalanceSumMinor != b.OpenedSumMinor+net || b.PostingSumMinor != net || b.BalanceMismatches != 0 {
		j.fail("%s: balances sum to %d, openings to %d, postings to %d (cross-unit legs %d), %d balances differ from opening plus postings",
			name(r), b.BalanceSumMinor, b.OpenedSumMinor, b.PostingSumMinor, net, b.BalanceMismatches)
	}
}

func noNegative(j *judge, r Replica) {
	j.add("negative_balances", r.Books.NegativeBalances)
	if r.Books.NegativeBalances != 0 {
		j.fail("%s: %d negative balances", name(r), r.Books.NegativeBalances)
	}
}

func failedNoEffect(j *judge, r Replica) {
	j.add("payments_failed", r.Books.PaymentsFailed)
	j.add("failed_with_effect", r.Books.FailedWithEffect)
	if r.Books.FailedWithEffect != 0 {
		j.fail("%s: %d failed payments moved money", name(r), r.Books.FailedWithEffect)
	}
}

func noStaleWrites(j *judge, r Replica) {
	j.add("stale_writes_accepted", r.StaleWritesAccepted)
	j.add("stale_writes_refused", r.StaleWritesRefused)
	if r.StaleWritesAccepted != 0 {
		j.fail("%s: accepted %d writes under a stale epoch", name(r), r.StaleWritesAccepted)
	}
}

// acknowledgedOnce judges, per unit: the authoritative primary holds every payment that any
// primary acknowledged (its history shares their acknowledged prefix), each committed one
// exactly once, and no catch-up discarded an acknowledged payment.
func acknowledgedOnce(units []Unit) Check {
	j := &judge{figures: map[string]int64{}}
	for _, u := range units {
		p, ok := authoritativeOrJudge(j, u)
		for _, r := range u.Replicas {
			if r.Error != "" {
				j.unknown("%s: no figures (it may hold acknowledged payments): %s", name(r), r.Error)
				continue
			}
			j.add("lost_acknowledged", r.LostAcknowledged)
			j.add("committed_not_once", r.Books.CommittedNotOnce)
			if r.LostAcknowledged != 0 {
				j.fail("%s: a catch-up discarded %d acknowledged payments", name(r), r.LostAcknowledged)
			}
			if r.Books.CommittedNotOnce != 0 {
				j.fail("%s: %d committed payments applied other than exactly once", name(r), r.Books.CommittedNotOnce)
			}
		}
		if !ok {
			continue
		}
		primary := u.Replicas[p]
		j.add("payments_committed", primary.Books.PaymentsCommitted)
		for i, r := range u.Replicas {
			if i == p || r.Error != "" || r.AckedSeq == 0 {
				continue
			}
			j.add("former_primaries", 1)
			samePrefix(j, u, primary, r, r.AckedSeq, r.AckedChain, "acknowledged up to")
		}
	}
	return j.check(CheckAcknowledgedOnce, "every acknowledged payment is on the authoritative primaries, each committed one exactly once")
}

// samePrefix requires the primary's history to hold r's history up to seq.
func samePrefix(j *judge, u Unit, primary, r Replica, seq int64, chain, what string) {
	if seq > primary.LastSeq {
		j.fail("%s %s seq %d, but primary %s has history only up to seq %d", name(r), what, seq, primary.Replica, primary.LastSeq)
		return
	}
	got, ok := u.PrimaryChains[seq]
	switch {
	case !ok:
		j.unknown("%s: chain of primary %s at seq %d not gathered", name(r), primary.Replica, seq)
	case got != chain:
		j.fail("%s %s seq %d, but primary %s's history differs at or before it", name(r), what, seq, primary.Replica)
	}
}

// authoritativeOrJudge finds the unit's authoritative primary, recording why there is none.
func authoritativeOrJudge(j *judge, u Unit) (int, bool) {
	p, ok := Authoritative(u.Replicas)
	switch {
	case ok:
		return p, true
	case p >= 0:
		j.fail("unit %s: two primaries under epoch %d", u.Name, u.Replicas[p].Epoch)
	default:
		j.unknown("unit %s: no primary answered", u.Name)
	}
	return -1, false
}

// converged judges, per unit, that the standby of the current configuration holds a prefix of
// the primary's history (equal once in-flight batches land).
func converged(units []Unit) Check {
	j := &judge{figures: map[string]int64{}}
	for _, u := range units {
		p, ok := authoritativeOrJudge(j, u)
		if !ok {
			continue
		}
		primary := u.Replicas[p]
		for i, r := range u.Replicas {
			switch {
			case i == p:
				continue
			case r.Error != "":
				j.unknown("%s: no figures: %s", name(r), r.Error)
				continue
			case !inConfig(primary, r):
				j.add("replicas_out_of_configuration", 1)
				continue
			}
			j.add("standbys", 1)
			j.add("lag_seqs", primary.LastSeq-r.LastSeq)
			if r.LastSeq == 0 {
				continue
			}
			samePrefix(j, u, primary, r, r.LastSeq, r.Chain, "applied up to")
		}
	}
	return j.check(CheckReplicasConverged, "every standby holds a prefix of its primary's history")
}
