package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
)

// The writer's statements, prepared once at Open.
const (
	qAccount   = `SELECT balance_minor, opened_minor FROM accounts WHERE uid = $1`
	qPayInputs = `SELECT (SELECT count(*) FROM payments WHERE idem_key = $1), (SELECT count(*) FROM tcc WHERE idem_key = $1),
		(SELECT balance_minor FROM accounts WHERE uid = $2), (SELECT balance_minor FROM accounts WHERE uid = $3)`
	qTrimEntries = `UPDATE history SET body = NULL WHERE seq >= $1 AND seq < $2`
	qSetMeta     = `INSERT INTO meta (name, num, txt) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET num = excluded.num, txt = excluded.txt`
)

// writerQueries are prepared at Open.
var writerQueries = []string{
	qAccount, qPayInputs,
	qTrimEntries, qSetMeta, paymentQuery,
}

// Tx is the writer's transaction: every change of a replica's books happens inside one.
type Tx struct {
	tx    *sql.Tx
	db    *DB
	bound map[string]*sql.Stmt // prepared statements bound to tx, made on first use
	imp   *importStmts         // during ImportSnapshot
	pend  pending              // rows inserted at commit
}

// Commit makes the transaction durable (synchronous=FULL: fsynced before it returns). An error
// of the COMMIT itself is ErrCommitUnknown: the transaction may have taken effect.
func (t *Tx) Commit() error {
	if err := t.flush(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
	}
	return nil
}

// Rollback abandons the transaction; after Commit it is a no-op.
func (t *Tx) Rollback() {
	_ = t.tx.Rollback() // ErrTxDone after a commit is expected
}

// exec runs one of the writer's statements, prepared once per database (parsing SQL again for
// every row cost more than executing it).
func (t *Tx) exec(ctx context.Context, what, q string, args ...any) error {
	st, err := t.stmt(ctx, q)
	if err != nil {
		return t.execOnce(ctx, what, q, args...)
	}
	if _, err := st.ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// execOnce runs a statement without caching it (schema changes).
func (t *Tx) execOnce(ctx context.Context, what, q string, args ...any) error {
	if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// stmt returns the statement prepared at Open for q, bound to this transaction; nil when q was
// not prepared (the writer's one connection is busy with this transaction, so preparing on the
// pool now would wait for it forever).
func (t *Tx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := t.bound[q]; ok {
		return st, nil
	}
	st, ok := t.db.stmts[q]
	if !ok {
		return nil, fmt.Errorf("statement not prepared at open: %.40q", q)
	}
	if t.bound == nil {
		t.bound = make(map[string]*sql.Stmt, len(t.db.stmts))
	}
	t.bound[q] = t.tx.StmtContext(ctx, st)
	return t.bound[q], nil
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, q)
	if err != nil {
		return t.tx.QueryRowContext(ctx, q, args...) // unprepared: the same answer, slower
	}
	return st.QueryRowContext(ctx, args...)
}

// Account returns an account's balance and opening balance.
func (t *Tx) Account(ctx context.Context, uid int64) (balanceMinor, openedMinor int64, err error) {
	err = t.queryRow(ctx, qAccount, uid).
		Scan(&balanceMinor, &openedMinor)
	if errors.Is(err, sql.ErrNoRows) {
		b, ok := t.pend.account(uid)
		if !ok {
			return 0, 0, fmt.Errorf("read account %d: %w", uid, ErrNotFound)
		}
		return b + t.pend.deltas[uid], b, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read account %d: %w", uid, err)
	}
	return balanceMinor + t.pend.deltas[uid], openedMinor, nil
}

// InsertAccount opens an account (written at commit); an existing uid is left as it is.
func (t *Tx) InsertAccount(_ context.Context, a ledger.Account, seq int64) error {
	t.pend.addAccount(accountRow{uid: a.UID, balanceMinor: a.BalanceMinor, seq: seq})
	return nil
}

// PayInputs are what deciding a payment reads.
type PayInputs struct {
	// Recorded says the key has a payment record (Payment reads it: a retry is rare).
	Recorded bool
	// TCCKnown says a cross-unit transfer leg has the key: a same-unit payment may not reuse it.
	TCCKnown bool
	// The balances of the payment's two accounts; OK is false for one that does not exist.
	FromMinor, ToMinor int64
	FromOK, ToOK       bool
}

// PayInputs reads a payment's inputs in one statement (four point reads as scalar subqueries:
// a statement costs more than its reads, and SQLite answers "uid IN ($1, $2)" through a
// temporary b-tree).
func (t *Tx) PayInputs(ctx context.Context, key string, fromUID, toUID int64) (PayInputs, error) {
	var records, legs int64
	var from, to sql.NullInt64
	if err := t.queryRow(ctx, qPayInputs, key, fromUID, toUID).Scan(&records, &legs, &from, &to); err != nil {
		return PayInputs{}, fmt.Errorf("read payment %q inputs: %w", key, err)
	}
	_, pending := t.pend.keys[key]
	in := PayInputs{Recorded: records > 0 || pending, TCCKnown: legs > 0}
	in.FromMinor, in.FromOK = t.balance(fromUID, from)
	in.ToMinor, in.ToOK = t.balance(toUID, to)
	return in, nil
}

// balance is an account's balance in this transaction: the stored one (or the opening balance
// of an account opened in it) with its pending change.
func (t *Tx) balance(uid int64, stored sql.NullInt64) (int64, bool) {
	b, ok := stored.Int64, stored.Valid
	if !ok {
		b, ok = t.pend.account(uid)
	}
	return b + t.pend.deltas[uid], ok
}

// PostPayment applies a committed payment's two legs: the two balances and both posting rows,
// written at commit.
func (t *Tx) PostPayment(ctx context.Context, seq int64, key string, legs []ledger.Posting) error {
	assert(len(legs) == 2 && legs[0].UID != legs[1].UID, "a payment posts two legs on two accounts")
	for i, leg := range legs {
		t.pend.addBalance(leg.UID, leg.AmountMinor)
		t.pend.postings = append(t.pend.postings, postingRow{seq: seq, leg: int64(i), uid: leg.UID, amountMinor: leg.AmountMinor, key: key})
	}
	return nil
}

// Recorded is a payment's outcome as recorded, with where it sits in the history.
type Recorded struct {
	ledger.Outcome
	Seq   int64 `json:"seq"`
	Epoch int64 `json:"epoch"`
}

// Payment returns the recorded outcome of a key.
func (t *Tx) Payment(ctx context.Context, key string) (Recorded, error) {
	if r, ok := t.pend.payment(key); ok {
		return r, nil
	}
	return scanPayment(t.queryRow(ctx, paymentQuery, key), key)
}

const paymentQuery = `SELECT idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch
	FROM payments WHERE idem_key = $1`

func scanPayment(row *sql.Row, key string) (Recorded, error) {
	var r Recorded
	var status, reason string
	err := row.Scan(&r.Key, &r.FromUID, &r.ToUID, &r.AmountMinor, &status, &reason, &r.Seq, &r.Epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return Recorded{}, fmt.Errorf("read payment %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return Recorded{}, fmt.Errorf("read payment %q: %w", key, err)
	}
	r.Status, r.Reason = ledger.Status(status), ledger.Reason(reason)
	return r, nil
}

// InsertPayment records an outcome; a key already recorded keeps its first record.
func (t *Tx) InsertPayment(_ context.Context, r Recorded) error {
	t.pend.addPayment(r)
	return nil
}

// Append records one replicated entry: its history row (kept forever) and its body (kept for a
// window, see TrimEntries).
func (t *Tx) Append(ctx context.Context, seq, epoch int64, stale bool, chain string, body []byte) error {
	staleFlag := 0
	if stale {
		staleFlag = 1
	}
	t.pend.history = append(t.pend.history, historyRow{seq: seq, epoch: epoch, stale: int64(staleFlag), chain: chain, body: string(body)})
	return nil
}

// TrimEntries drops the bodies of the entries in [fromSeq, belowSeq); their history rows stay.
func (t *Tx) TrimEntries(ctx context.Context, fromSeq, belowSeq int64) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	return t.exec(ctx, "trim entries", qTrimEntries, fromSeq, belowSeq)
}

// SetMeta stores one named value of the replica's state.
func (t *Tx) SetMeta(ctx context.Context, name string, num int64, txt string) error {
	return t.exec(ctx, "set meta "+name,
		qSetMeta, name, num, txt)
}
