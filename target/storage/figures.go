package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
)

// The audit's queries. Each is one aggregate over a table; all run in one read transaction so
// the figures describe one committed state.
const (
	qAccounts = `SELECT count(*), coalesce(sum(balance_minor), 0), coalesce(sum(opened_minor), 0),
		coalesce(sum(CASE WHEN balance_minor < 0 THEN 1 ELSE 0 END), 0) FROM accounts`
	qPostingSum = `SELECT coalesce(sum(amount_minor), 0) FROM postings`
	qMismatches = `SELECT count(*) FROM accounts a
		LEFT JOIN (SELECT uid, sum(amount_minor) AS s FROM postings GROUP BY uid) p ON p.uid = a.uid
		WHERE a.balance_minor <> a.opened_minor + coalesce(p.s, 0)`
	qByStatus = `SELECT coalesce(sum(CASE WHEN status = 'committed' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) FROM payments`
	// A committed payment is posted exactly once when its key has exactly two legs: the debit of
	// its payer and the credit of its payee, each of its amount.
	qNotOnce = `SELECT count(*) FROM payments p LEFT JOIN (
			SELECT idem_key, count(*) AS n,
				sum(CASE WHEN amount_minor < 0 THEN amount_minor ELSE 0 END) AS debit,
				sum(CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END) AS credit,
				sum(CASE WHEN amount_minor < 0 THEN uid ELSE 0 END) AS payer,
				sum(CASE WHEN amount_minor > 0 THEN uid ELSE 0 END) AS payee
			FROM postings GROUP BY idem_key) g ON g.idem_key = p.idem_key
		WHERE p.status = 'committed' AND (g.n IS NULL OR g.n <> 2 OR g.debit <> -p.amount_minor
			OR g.credit <> p.amount_minor OR g.payer <> p.from_uid OR g.payee <> p.to_uid)`
	qFailedWithEffect = `SELECT count(DISTINCT p.idem_key) FROM payments p
		JOIN postings x ON x.idem_key = p.idem_key WHERE p.status <> 'committed'`
	qStaleAccepted = `SELECT count(*) FROM history WHERE stale <> 0`
)

// Figures gathers everything the audit needs from this replica's tables.
func (db *DB) Figures(ctx context.Context) (ledger.Replica, error) {
	tx, err := db.r.BeginTx(ctx, sqldb.ReadTx)
	if err != nil {
		return ledger.Replica{}, fmt.Errorf("begin figures: %w", err)
	}
	defer tx.Rollback()
	st, err := readState(ctx, tx)
	if err != nil {
		return ledger.Replica{}, err
	}
	r := ledger.Replica{
		Unit: st.Unit, Replica: st.Replica, Role: st.Role, Epoch: st.Epoch,
		LastSeq: st.LastSeq, Chain: st.Chain, AckedSeq: st.AckedSeq,
		LostAcknowledged: st.LostAcknowledged, StaleWritesRefused: st.StaleRefused,
	}
	b := &r.Books
	scans := []struct {
		q    string
		dest []any
	}{
		{qAccounts, []any{&b.Accounts, &b.BalanceSumMinor, &b.OpenedSumMinor, &b.NegativeBalances}},
		{qPostingSum, []any{&b.PostingSumMinor}},
		{qMismatches, []any{&b.BalanceMismatches}},
		{qByStatus, []any{&b.PaymentsCommitted, &b.PaymentsFailed}},
		{qNotOnce, []any{&b.CommittedNotOnce}},
		{qFailedWithEffect, []any{&b.FailedWithEffect}},
		{qStaleAccepted, []any{&r.StaleWritesAccepted}},
	}
	for _, s := range scans {
		if err := tx.QueryRowContext(ctx, s.q).Scan(s.dest...); err != nil {
			return ledger.Replica{}, fmt.Errorf("read figures: %w", err)
		}
	}
	if r.Cross, err = crossFigures(ctx, tx); err != nil {
		return ledger.Replica{}, err
	}
	if r.AckedSeq > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT chain FROM history WHERE seq = $1`, r.AckedSeq).Scan(&r.AckedChain); err != nil {
			return ledger.Replica{}, fmt.Errorf("read acknowledged chain at %d: %w", r.AckedSeq, err)
		}
	}
	return r, nil
}

// ChainsAt returns the chain at each seq; a seq beyond the history is left out.
func (db *DB) ChainsAt(ctx context.Context, seqs []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(seqs))
	for _, s := range seqs {
		c, err := db.ChainAt(ctx, s)
		if errors.Is(err, ErrNotFound) {
			continue // beyond the history: the audit judges it from the primary's last seq
		}
		if err != nil {
			return nil, err
		}
		out[s] = c
	}
	return out, nil
}
