package storage

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/redline-dev/redline/target/sqldb"
)

// A transaction buffers its new accounts, payment, posting and history rows and its balance
// changes, and
// writes them at commit, many rows per statement: executing a statement costs far more than a
// row in it (on PostgreSQL a statement is a round trip to the server), and a batch of a group
// commit holds hundreds of payments. The transaction's reads add the buffer (Payment reads it
// first; an account read falls back on the buffered new accounts and adds the account's pending
// change), so buffering changes no answer.

// rowsPerInsertMax bounds the rows of one multi-row INSERT (8 parameters a payment row: 1,024,
// well under SQLite's 32,766 and PostgreSQL's 65,535).
const rowsPerInsertMax = 128

type postingRow struct {
	seq, leg, uid, amountMinor int64
	key                        string
}

type historyRow struct {
	seq, epoch, stale int64
	chain, body       string
}

type pending struct {
	payments []Recorded
	keys     map[string]int // key → index in payments
	postings []postingRow
	history  []historyRow
	outbox   []OutboxRow
	deltas   map[int64]int64 // uid → balance change not yet written
	accounts []accountRow
	opened   map[int64]int // uid → index in accounts
}

type accountRow struct{ uid, balanceMinor, seq int64 }

// addAccount buffers a new account unless its uid is buffered already (the first wins, as ON
// CONFLICT DO NOTHING has it; so does an account the database holds already).
func (p *pending) addAccount(a accountRow) {
	if p.opened == nil {
		p.opened = make(map[int64]int)
	}
	if _, ok := p.opened[a.uid]; ok {
		return
	}
	p.opened[a.uid] = len(p.accounts)
	p.accounts = append(p.accounts, a)
}

// account returns a buffered new account's opening balance.
func (p *pending) account(uid int64) (int64, bool) {
	i, ok := p.opened[uid]
	if !ok {
		return 0, false
	}
	return p.accounts[i].balanceMinor, true
}

// addBalance buffers a change of an account's balance.
func (p *pending) addBalance(uid, amountMinor int64) {
	if p.deltas == nil {
		p.deltas = make(map[int64]int64)
	}
	p.deltas[uid] += amountMinor
}

func (p *pending) payment(key string) (Recorded, bool) {
	i, ok := p.keys[key]
	if !ok {
		return Recorded{}, false
	}
	return p.payments[i], true
}

// addPayment buffers r unless its key is buffered already (the first record of a key wins, as
// ON CONFLICT DO NOTHING would have it).
func (p *pending) addPayment(r Recorded) {
	if p.keys == nil {
		p.keys = make(map[string]int)
	}
	if _, ok := p.keys[r.Key]; ok {
		return
	}
	p.keys[r.Key] = len(p.payments)
	p.payments = append(p.payments, r)
}

// The buffered tables: how their multi-row inserts begin and end, and their width.
var (
	accountsInsert = insertShape{`INSERT INTO accounts (uid, balance_minor, opened_minor, seq) VALUES `,
		` ON CONFLICT (uid) DO NOTHING`, 4}
	paymentsInsert = insertShape{`INSERT INTO payments (idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch) VALUES `,
		` ON CONFLICT (idem_key) DO NOTHING`, 8}
	postingsInsert = insertShape{`INSERT INTO postings (seq, leg, idem_key, uid, amount_minor) VALUES `, ``, 5}
	historyInsert  = insertShape{`INSERT INTO history (seq, epoch, stale, chain, body) VALUES `, ``, 5}
	outboxInsert   = insertShape{`INSERT INTO outbox (seq, idem_key, from_uid, to_uid, amount_minor) VALUES `,
		` ON CONFLICT (seq) DO NOTHING`, 5}
	// balancesUpdate adds (uid, change) rows to the balances: the same statement on both
	// backends (UPDATE ... FROM, VALUES columns column1 and column2); the casts give
	// PostgreSQL the parameters' types.
	balancesUpdate = insertShape{`UPDATE accounts SET balance_minor = accounts.balance_minor + v.column2 FROM (VALUES `,
		`) AS v WHERE accounts.uid = v.column1`, 2}
)

// shapes are every buffered table's insert.
var shapes = []insertShape{accountsInsert, paymentsInsert, postingsInsert, historyInsert, outboxInsert, balancesUpdate}

// chunkRows are the row counts of the prepared multi-row inserts, largest first: n rows go as
// the largest sizes that fit (parsing a long statement costs more than executing it, so none is
// built at run time). Every count up to 8, what a commit of a few payments writes to a table,
// is one statement, where 10 and 1 made 7 rows seven; above 8 the powers of two make any count
// a few statements. 12 sizes × 6 tables: 72 statements prepared per database at Open.
var chunkRows = []int{rowsPerInsertMax, 64, 32, 16, 8, 7, 6, 5, 4, 3, 2, 1}

type insertShape struct {
	head, tail string
	width      int
}

// sql returns the statement inserting rows rows (built once per dialect, shape and size).
func (s insertShape) sql(d sqldb.Dialect, rows int) string {
	key := chunkKey{d, s, rows}
	if q, ok := chunkSQL[key]; ok {
		return q
	}
	return s.build(d, rows)
}

type chunkKey struct {
	d     sqldb.Dialect
	shape insertShape
	rows  int
}

// chunkSQL holds the prepared sizes' statements, built at package start and read-only after.
var chunkSQL = func() map[chunkKey]string {
	m := map[chunkKey]string{}
	for _, d := range sqldb.Dialects() {
		for _, s := range shapes {
			for _, n := range chunkRows {
				m[chunkKey{d, s, n}] = s.build(d, n)
			}
		}
	}
	return m
}()

func (s insertShape) build(d sqldb.Dialect, rows int) string {
	var q strings.Builder
	q.WriteString(s.head)
	n := 0
	for r := range rows {
		if r > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for c := range s.width {
			if c > 0 {
				q.WriteString(", ")
			}
			n++
			if s.head == balancesUpdate.head {
				q.WriteString("CAST(" + d.Param(n) + " AS BIGINT)")
			} else {
				q.WriteString(d.Param(n))
			}
		}
		q.WriteByte(')')
	}
	q.WriteString(s.tail)
	return q.String()
}

// insertQueries are the multi-row inserts prepared at Open.
func insertQueries(d sqldb.Dialect) []string {
	var out []string
	for _, s := range shapes {
		for _, n := range chunkRows {
			out = append(out, s.sql(d, n))
		}
	}
	return out
}

// flush writes every buffered change: the new accounts, the balances (in uid order), then the
// rows.
func (t *Tx) flush(ctx context.Context) error {
	p := &t.pend
	err := insertRows(ctx, t, "accounts", accountsInsert, len(p.accounts), func(i int) []any {
		a := p.accounts[i]
		return []any{a.uid, a.balanceMinor, a.balanceMinor, a.seq}
	})
	uids := slices.Sorted(maps.Keys(p.deltas))
	if err == nil {
		err = insertRows(ctx, t, "balances", balancesUpdate, len(uids), func(i int) []any {
			return []any{uids[i], p.deltas[uids[i]]}
		})
	}
	if err == nil {
		err = insertRows(ctx, t, "payments", paymentsInsert, len(p.payments), func(i int) []any {
			r := p.payments[i]
			return []any{r.Key, r.FromUID, r.ToUID, r.AmountMinor, string(r.Status), string(r.Reason), r.Seq, r.Epoch}
		})
	}
	if err == nil {
		err = insertRows(ctx, t, "postings", postingsInsert, len(p.postings), func(i int) []any {
			r := p.postings[i]
			return []any{r.seq, r.leg, r.key, r.uid, r.amountMinor}
		})
	}
	if err == nil {
		err = insertRows(ctx, t, "history", historyInsert, len(p.history), func(i int) []any {
			r := p.history[i]
			return []any{r.seq, r.epoch, r.stale, r.chain, r.body}
		})
	}
	if err == nil {
		err = insertRows(ctx, t, "outbox", outboxInsert, len(p.outbox), func(i int) []any {
			r := p.outbox[i]
			return []any{r.Seq, r.Key, r.FromUID, r.ToUID, r.AmountMinor}
		})
	}
	t.pend = pending{}
	return err
}

// insertRows inserts n rows in chunks of the prepared sizes.
func insertRows(ctx context.Context, t *Tx, what string, shape insertShape, n int, row func(int) []any) error {
	for i := 0; i < n; {
		size := chunkRows[len(chunkRows)-1]
		for _, c := range chunkRows {
			if c <= n-i {
				size = c
				break
			}
		}
		args := make([]any, 0, size*shape.width)
		for r := i; r < i+size; r++ {
			args = append(args, row(r)...)
		}
		if err := t.exec(ctx, "insert "+what, shape.sql(t.db.d, size), args...); err != nil {
			return err
		}
		i += size
	}
	return nil
}
