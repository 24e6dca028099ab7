package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
)

// ErrNoRewind says the books cannot be taken back by undoing entries: the caller installs a
// snapshot instead. Nothing changed.
var ErrNoRewind = errors.New("cannot rewind")

// Rewind takes the books back to what they were at seq base, in t, by undoing every entry
// after it: their postings are taken off the balances, and the rows they wrote (accounts,
// payments, postings, outbox events, history) are deleted; every such row carries the seq of
// the entry that wrote it. A transfer leg written after base goes too, unless it is a payer's
// leg tried at or before base and confirmed or cancelled after it: that one is tried again, as
// its try left it (state tried, no reason, the try's seq and epoch; the try's reservation is
// the leg's one posting at or before base). It returns the chain at base, the new head.
//
// Its cost is a scan of the tables the entries wrote to, whatever the length of the tail (no
// index by seq; their rows are keyed as their readers need): what a snapshot would export,
// ship and insert, only read.
//
// It refuses with ErrNoRewind, changing nothing, when base is not in the history, or when an
// entry after base was acknowledged (acked_seq beyond base: a client was told of it, and
// installing a snapshot records exactly which of those the primary lacks).
func (t *Tx) Rewind(ctx context.Context, base int64) (string, error) {
	if err := t.flush(ctx); err != nil {
		return "", err
	}
	var chain string
	err := t.queryRow(ctx, `SELECT chain FROM history WHERE seq = $1`, base).Scan(&chain)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("rewind to seq %d: not in the history: %w", base, ErrNoRewind)
	}
	if err != nil {
		return "", fmt.Errorf("rewind: read chain at %d: %w", base, err)
	}
	acked, err := t.metaNum(ctx, MetaAckedSeq)
	if err != nil {
		return "", err
	}
	if acked > base {
		return "", fmt.Errorf("rewind to seq %d: seq %d was acknowledged: %w", base, acked, ErrNoRewind)
	}
	for _, q := range []string{
		// Of the legs written after base, only a payer's leg tried at or before it has a
		// posting there (its reservation): a credit posts at its confirm, a cancel with no try
		// posts nothing. The others were written in the tail alone.
		`DELETE FROM tcc WHERE seq > $1 AND NOT EXISTS (
			SELECT 1 FROM postings p WHERE p.idem_key = tcc.idem_key AND p.seq <= $1)`,
		// The payers' legs tried before base and decided after it: tried again.
		`UPDATE tcc SET state = '` + ledger.LegTried + `', reason = '', seq = t.seq, epoch = h.epoch
			FROM (SELECT idem_key, max(seq) AS seq FROM postings
				WHERE seq <= $1 AND idem_key IN (SELECT idem_key FROM tcc WHERE seq > $1) GROUP BY idem_key) AS t, history h
			WHERE tcc.seq > $1 AND tcc.idem_key = t.idem_key AND h.seq = t.seq`,
		`UPDATE accounts SET balance_minor = accounts.balance_minor - p.total
			FROM (SELECT uid, sum(amount_minor) AS total FROM postings WHERE seq > $1 GROUP BY uid) AS p
			WHERE accounts.uid = p.uid`,
		`DELETE FROM postings WHERE seq > $1`,
		`DELETE FROM accounts WHERE seq > $1`,
		`DELETE FROM payments WHERE seq > $1`,
		`DELETE FROM outbox WHERE seq > $1`,
		`DELETE FROM history WHERE seq > $1`,
	} {
		if err := t.exec(ctx, "rewind", q, base); err != nil {
			return "", err
		}
	}
	return chain, nil
}

// metaNum reads a meta counter inside t (0 when never set).
func (t *Tx) metaNum(ctx context.Context, name string) (int64, error) {
	var n int64
	err := t.queryRow(ctx, `SELECT num FROM meta WHERE name = $1`, name).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return n, nil
}
