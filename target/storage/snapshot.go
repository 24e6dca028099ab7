package storage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redline-dev/redline/target/sqldb"
)

// A snapshot is a consistent copy of a replica's books and history (without entry bodies), as
// JSON lines: a header, one line per row, and a trailer that counts the rows (a truncated
// stream is refused). It is logical, not a file copy, so PostgreSQL can produce the same.

// SnapshotHeader opens a snapshot.
type SnapshotHeader struct {
	Version int    `json:"version"`
	Unit    string `json:"unit"`
	Epoch   int64  `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	Chain   string `json:"chain"`
}

// snapLine is one line of a snapshot; exactly one field is set.
type snapLine struct {
	Header  *SnapshotHeader `json:"header,omitempty"`
	Account []int64         `json:"a,omitempty"` // uid, balance, opened, seq
	Payment *snapPayment    `json:"p,omitempty"`
	Posting *snapPosting    `json:"x,omitempty"`
	History *snapHistory    `json:"h,omitempty"`
	TCC     *snapTCC        `json:"c,omitempty"`
	End     *int64          `json:"end,omitempty"` // rows written
}

type snapPayment struct {
	Key    string `json:"k"`
	From   int64  `json:"f"`
	To     int64  `json:"t"`
	Amount int64  `json:"m"`
	Status string `json:"s"`
	Reason string `json:"r,omitempty"`
	Seq    int64  `json:"q"`
	Epoch  int64  `json:"e"`
}

type snapPosting struct {
	Seq    int64  `json:"q"`
	Leg    int64  `json:"l"`
	Key    string `json:"k"`
	UID    int64  `json:"u"`
	Amount int64  `json:"m"`
}

type snapHistory struct {
	Seq   int64  `json:"q"`
	Epoch int64  `json:"e"`
	Stale int64  `json:"s,omitempty"`
	Chain string `json:"c"`
}

// snapshotVersion is the format written; a reader refuses others.
const snapshotVersion = 1

// ExportSnapshot writes a consistent snapshot (one read transaction) to w.
func (db *DB) ExportSnapshot(ctx context.Context, w io.Writer, unit string, epoch int64) (SnapshotHeader, error) {
	tx, err := db.r.BeginTx(ctx, sqldb.ReadTx)
	if err != nil {
		return SnapshotHeader{}, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback()
	seq, chain, err := head(ctx, tx)
	if err != nil {
		return SnapshotHeader{}, err
	}
	h := SnapshotHeader{Version: snapshotVersion, Unit: unit, Epoch: epoch, LastSeq: seq, Chain: chain}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapLine{Header: &h}); err != nil {
		return SnapshotHeader{}, fmt.Errorf("write snapshot header: %w", err)
	}
	var rows int64
	tables := []struct {
		q    string
		line func(scan func(...any) error) (snapLine, error)
	}{
		{`SELECT uid, balance_minor, opened_minor, seq FROM accounts ORDER BY uid`, accountLine},
		{`SELECT idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch FROM payments ORDER BY idem_key`, paymentLine},
		{`SELECT seq, leg, idem_key, uid, amount_minor FROM postings ORDER BY idem_key, seq, leg`, postingLine},
		{`SELECT seq, epoch, stale, chain FROM history ORDER BY seq`, historyLine},
		{qSnapTCC, tccLine},
	}
	for _, t := range tables {
		n, err := exportTable(ctx, tx, enc, t.q, t.line)
		if err != nil {
			return SnapshotHeader{}, err
		}
		rows += n
	}
	if err := enc.Encode(snapLine{End: &rows}); err != nil {
		return SnapshotHeader{}, fmt.Errorf("write snapshot trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return SnapshotHeader{}, fmt.Errorf("flush snapshot: %w", err)
	}
	return h, nil
}

func exportTable(ctx context.Context, q rowsQuerier, enc *json.Encoder, query string, line func(func(...any) error) (snapLine, error)) (int64, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("read snapshot rows: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		l, err := line(rows.Scan)
		if err != nil {
			return 0, fmt.Errorf("scan snapshot row: %w", err)
		}
		if err := enc.Encode(l); err != nil {
			return 0, fmt.Errorf("write snapshot row: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read snapshot rows: %w", err)
	}
	return n, nil
}

func accountLine(scan func(...any) error) (snapLine, error) {
	a := make([]int64, 4)
	err := scan(&a[0], &a[1], &a[2], &a[3])
	return snapLine{Account: a}, err
}

func paymentLine(scan func(...any) error) (snapLine, error) {
	var p snapPayment
	err := scan(&p.Key, &p.From, &p.To, &p.Amount, &p.Status, &p.Reason, &p.Seq, &p.Epoch)
	return snapLine{Payment: &p}, err
}

func postingLine(scan func(...any) error) (snapLine, error) {
	var p snapPosting
	err := scan(&p.Seq, &p.Leg, &p.Key, &p.UID, &p.Amount)
	return snapLine{Posting: &p}, err
}

func historyLine(scan func(...any) error) (snapLine, error) {
	var h snapHistory
	err := scan(&h.Seq, &h.Epoch, &h.Stale, &h.Chain)
	return snapLine{History: &h}, err
}

// ImportSnapshot replaces the replica's books and history with the snapshot read from r, in
// this transaction. Payments this replica had acknowledged as a primary (seq at or below its
// acknowledged seq) that the snapshot lacks are kept in the lost table and counted: the audit
// reports them. Entry bodies are dropped; the acknowledged seq restarts at zero.
func (t *Tx) ImportSnapshot(ctx context.Context, r io.Reader) (SnapshotHeader, int64, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	var first snapLine
	if err := dec.Decode(&first); err != nil || first.Header == nil || first.Header.Version != snapshotVersion {
		return SnapshotHeader{}, 0, fmt.Errorf("read snapshot header (%v): %w", err, ErrSnapshotShape)
	}
	h := *first.Header
	imp, err := t.prepareImport(ctx)
	if err != nil {
		return SnapshotHeader{}, 0, err
	}
	var rows int64
	for {
		var l snapLine
		if err := dec.Decode(&l); err != nil {
			return SnapshotHeader{}, 0, fmt.Errorf("read snapshot row %d (%v): %w", rows, err, ErrSnapshotShape)
		}
		if l.End != nil {
			if *l.End != rows {
				return SnapshotHeader{}, 0, fmt.Errorf("snapshot of %d rows ends after %d: %w", *l.End, rows, ErrSnapshotShape)
			}
			break
		}
		if err := imp.add(ctx, t, l); err != nil {
			return SnapshotHeader{}, 0, err
		}
		rows++
	}
	if err := imp.flush(ctx, t); err != nil {
		return SnapshotHeader{}, 0, err
	}
	lost, err := t.finishImport(ctx, imp.ackedSeq)
	return h, lost, err
}

// The tables an import fills, in the order of a snapshot's lines.
const (
	impAccounts = iota
	impPayments
	impPostings
	impHistory
	impTCC
	impTables
)

// importInserts are the multi-row inserts of an import, by table. Payments go to a temporary
// table first (finishImport). The statements of the accounts (without ON CONFLICT), the
// temporary table (it exists only during an import) and tcc are not among those prepared at
// Open: they are built per chunk.
var importInserts = [impTables]insertShape{
	impAccounts: {accountsInsert.head, ``, accountsInsert.width}, // a uid twice is a damaged snapshot: refused
	impPayments: {`INSERT INTO snap_payments (idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch) VALUES `, ``, 8},
	impPostings: postingsInsert,
	impHistory:  historyInsert,
	impTCC: {`INSERT INTO tcc (idem_key, leg, from_uid, to_uid, amount_minor, state, reason, empty, tried_ms, seq, epoch) VALUES `,
		``, 11},
}

// snapImport is an import under way: the acknowledged seq the replica had before it, and the
// rows read but not yet inserted, by table, written rowsPerInsertMax to a statement (a
// statement a row cost a round trip a row on PostgreSQL).
type snapImport struct {
	ackedSeq int64
	rows     [impTables][][]any
}

func (t *Tx) prepareImport(ctx context.Context) (*snapImport, error) {
	if err := t.flush(ctx); err != nil { // the import replaces the books: nothing may land after it
		return nil, err
	}
	acked, err := t.metaNum(ctx, MetaAckedSeq)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS snap_payments (idem_key TEXT PRIMARY KEY, from_uid BIGINT NOT NULL,
			to_uid BIGINT NOT NULL, amount_minor BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
			seq BIGINT NOT NULL, epoch BIGINT NOT NULL)`,
		`DELETE FROM snap_payments`,
		`DELETE FROM accounts`, `DELETE FROM postings`, `DELETE FROM history`, `DELETE FROM tcc`,
	} {
		if err := t.exec(ctx, "prepare import", q); err != nil {
			return nil, err
		}
	}
	return &snapImport{ackedSeq: acked}, nil
}

// add buffers a snapshot row, and inserts its table's buffered rows when they fill a statement.
func (imp *snapImport) add(ctx context.Context, t *Tx, l snapLine) error {
	var (
		table int
		row   []any
	)
	switch {
	case len(l.Account) == 4:
		a := l.Account
		table, row = impAccounts, []any{a[0], a[1], a[2], a[3]}
	case l.Payment != nil:
		p := l.Payment
		table, row = impPayments, []any{p.Key, p.From, p.To, p.Amount, p.Status, p.Reason, p.Seq, p.Epoch}
	case l.Posting != nil:
		p := l.Posting
		table, row = impPostings, []any{p.Seq, p.Leg, p.Key, p.UID, p.Amount}
	case l.History != nil:
		h := l.History
		table, row = impHistory, []any{h.Seq, h.Epoch, h.Stale, h.Chain, nil} // entry bodies are not shipped
	case l.TCC != nil:
		table, row = impTCC, l.TCC.row()
	default:
		return fmt.Errorf("import snapshot line: %w", ErrSnapshotShape)
	}
	imp.rows[table] = append(imp.rows[table], row)
	if len(imp.rows[table]) < rowsPerInsertMax {
		return nil
	}
	return imp.insert(ctx, t, table)
}

// flush inserts every table's buffered rows.
func (imp *snapImport) flush(ctx context.Context, t *Tx) error {
	for table := range imp.rows {
		if err := imp.insert(ctx, t, table); err != nil {
			return err
		}
	}
	return nil
}

func (imp *snapImport) insert(ctx context.Context, t *Tx, table int) error {
	rows := imp.rows[table]
	imp.rows[table] = rows[:0]
	err := insertRows(ctx, t, "snapshot rows", importInserts[table], len(rows), func(i int) []any { return rows[i] })
	if err != nil {
		return fmt.Errorf("import snapshot: %w", err)
	}
	return nil
}

// finishImport swaps the payments in, keeping the acknowledged ones the snapshot lacks.
func (t *Tx) finishImport(ctx context.Context, ackedSeq int64) (int64, error) {
	res, err := t.run(ctx, `INSERT INTO lost (idem_key, seq, status)
		SELECT p.idem_key, p.seq, p.status FROM payments p WHERE p.seq <= $1 AND NOT EXISTS (
			SELECT 1 FROM snap_payments s WHERE s.idem_key = p.idem_key AND s.status = p.status)`, ackedSeq)
	if err != nil {
		return 0, fmt.Errorf("keep lost payments: %w", err)
	}
	lost, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("count lost payments: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM payments`,
		`INSERT INTO payments (idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch)
			SELECT idem_key, from_uid, to_uid, amount_minor, status, reason, seq, epoch FROM snap_payments`,
		`DROP TABLE snap_payments`,
		// The outbox follows from the committed payments: rebuilt, not shipped.
		`DELETE FROM outbox`,
		`INSERT INTO outbox (seq, idem_key, from_uid, to_uid, amount_minor)
			SELECT seq, idem_key, from_uid, to_uid, amount_minor FROM payments WHERE status = 'committed'`,
		qRebuildTCCOutbox,
	} {
		if err := t.exec(ctx, "swap payments", q); err != nil {
			return 0, err
		}
	}
	if err := t.SetMeta(ctx, MetaAckedSeq, 0, ""); err != nil {
		return 0, err
	}
	var total int64
	if err := t.queryRow(ctx, `SELECT count(*) FROM lost`).Scan(&total); err != nil {
		return 0, fmt.Errorf("count lost payments: %w", err)
	}
	return lost, t.SetMeta(ctx, MetaLostAcknowledged, total, "")
}
