package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redline-dev/redline/target/ledger"
)

// The writer's statements, prepared once at Open.
const (
	qAccount   = `SELECT balance_minor, opened_minor FROM accounts WHERE uid = $1`
	qOpenedSum = `SELECT coalesce(sum(opened_minor), 0) FROM accounts`
	qPayInputs = `SELECT (SELECT count(*) FROM payments WHERE idem_key = $1), (SELECT count(*) FROM tcc WHERE idem_key = $1),
		(SELECT balance_minor FROM accounts WHERE uid = $2), (SELECT balance_minor FROM accounts WHERE uid = $3)`
	qTrimEntries = `UPDATE history SET body = NULL WHERE seq >= $1 AND seq < $2`
	qSetMeta     = `INSERT INTO meta (name, num, txt) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET num = excluded.num, txt = excluded.txt`
)

// writerQueries are prepared at Open.
var writerQueries = []string{
	qAccount, qOpenedSum, qPayInputs,
	qTrimEntries, qSetMeta, paymentQuery,
}

// Tx is the writer's transaction: every change of a replica's books happens inside one. It
// runs on the writer's held connection (writerConn), between a BEGIN and a COMMIT or ROLLBACK.
type Tx struct {
	c    *writerConn
	db   *DB
	done bool    // committed or rolled back
	pend pending // rows inserted at commit
	// failed is the first statement of the transaction that failed. A sql.Tx on PostgreSQL
	// refused to commit a transaction the server had aborted (its COMMIT answers ROLLBACK, not
	// an error); a COMMIT statement cannot tell, so the transaction remembers.
	failed error
}

// Limits of the writer's transaction control.
const (
	// commitTimeout bounds a PostgreSQL COMMIT, which waits for the server's WAL flush (a
	// COMMIT that times out is of unknown outcome, and the unit halts).
	commitTimeout = 30 * time.Second
	// rollbackTimeout bounds a ROLLBACK; one that fails or times out discards the connection.
	rollbackTimeout = 5 * time.Second
)

// stmtCtx is the context a writer's statement runs under, ctx being not done. On SQLite it
// carries no cancellation: database/sql and the driver start a goroutine per statement that
// watches a cancellable context, a cost of the order of the statement's own, and the writer's
// statements are bounded without it (at most rowsPerInsertMax rows or a few point reads each,
// a lock wait by busy_timeout; an fsync no interrupt stops anyway). Cancellation still ends a
// transaction: each statement checks ctx first (Tx.check). On PostgreSQL a statement waits for
// a server, and only ctx bounds that.
func (db *DB) stmtCtx(ctx context.Context) context.Context {
	if db.d.Postgres() {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// check returns the context a statement of t runs under, or why it may not run.
func (t *Tx) check(ctx context.Context) (context.Context, error) {
	switch {
	case t.done:
		return nil, sql.ErrTxDone
	case t.failed != nil:
		return nil, fmt.Errorf("after a failed statement: %w", t.failed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.db.stmtCtx(ctx), nil
}

// fail records a failed statement: the transaction can then only be rolled back.
func (t *Tx) fail(err error) error {
	if err != nil && t.failed == nil {
		t.failed = err
	}
	return err
}

// Commit makes the transaction durable (synchronous=FULL: fsynced before it returns). An error
// of the COMMIT itself is ErrCommitUnknown: the transaction may have taken effect.
func (t *Tx) Commit() error {
	if err := t.flush(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if _, err := t.check(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	ctx := context.Background() // on SQLite no watcher: see stmtCtx
	if t.db.d.Postgres() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, commitTimeout)
		defer cancel()
	}
	if _, err := t.c.exec(ctx, qCommit); err != nil {
		return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, t.fail(err))
	}
	t.done = true
	return nil
}

// Rollback abandons the transaction; after Commit it is a no-op. A connection that cannot roll
// back (a failed COMMIT may have ended the transaction, a broken connection cannot answer) is
// discarded, and the next Begin takes a new one.
func (t *Tx) Rollback() {
	if t.done {
		return
	}
	t.done = true
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	if _, err := t.c.exec(ctx, qRollback); err != nil && t.db.wc == t.c {
		t.db.discardConn()
	}
}

// exec runs a statement of the transaction: one of the writer's, prepared once per connection
// (parsing SQL again for every row cost more than executing it), or any other as text.
func (t *Tx) exec(ctx context.Context, what, q string, args ...any) error {
	if _, err := t.run(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// run is exec with the statement's result.
func (t *Tx) run(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx, err := t.check(ctx)
	if err != nil {
		return nil, t.fail(err)
	}
	res, err := t.c.exec(ctx, q, args...)
	return res, t.fail(err)
}

// row is the answer of a statement that reads one row.
type row struct {
	t   *Tx
	r   *sql.Row
	err error // the statement did not run
}

// Scan is sql.Row's; an error other than sql.ErrNoRows fails the transaction.
func (r row) Scan(dest ...any) error {
	err := r.err
	if err == nil {
		err = r.r.Scan(dest...)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		r.t.fail(err)
	}
	return err
}

// queryRow runs a statement that reads one row, prepared at connect when q is one of the
// writer's.
func (t *Tx) queryRow(ctx context.Context, q string, args ...any) row {
	ctx, err := t.check(ctx)
	if err != nil {
		return row{t: t, err: err}
	}
	return row{t: t, r: t.c.queryRow(ctx, q, args...)}
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

// OpenedMinor returns the money opened in this database: the opening balances of its accounts,
// those opened in this transaction included.
func (t *Tx) OpenedMinor(ctx context.Context) (int64, error) {
	var sum int64
	if err := t.queryRow(ctx, qOpenedSum).Scan(&sum); err != nil {
		return 0, fmt.Errorf("read opened money: %w", err)
	}
	return sum + t.PendingOpenedMinor(), nil
}

// PendingOpenedMinor is the money of the accounts opened in this transaction so far.
func (t *Tx) PendingOpenedMinor() int64 {
	var sum int64
	for _, a := range t.pend.accounts {
		sum += a.balanceMinor
	}
	return sum
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
	return scanPayment(t.queryRow(ctx, paymentQuery, key).Scan, key)
}

const paymentQuery = `SELECT idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch
	FROM payments WHERE idem_key = $1`

func scanPayment(scan func(...any) error, key string) (Recorded, error) {
	var r Recorded
	var status, reason string
	err := scan(&r.Key, &r.FromUID, &r.ToUID, &r.AmountMinor, &status, &reason, &r.Seq, &r.Epoch)
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
