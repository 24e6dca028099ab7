package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
)

// The legs of cross-unit transfers (try / confirm / cancel, decided in the core zone). A leg's
// row is written by the entry of each step, on every replica: tried (the payer's funds are
// reserved: its balance already carries the debit posting; the payee's credit is pending),
// then confirmed or cancelled. A cancel with no try leaves a cancelled row marked empty, so a
// try arriving after it finds it and is refused.
var tccMigration = []string{
	`CREATE TABLE tcc (idem_key TEXT NOT NULL, leg TEXT NOT NULL, from_uid BIGINT NOT NULL,
		to_uid BIGINT NOT NULL, amount_minor BIGINT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
		empty BIGINT NOT NULL, tried_ms BIGINT NOT NULL, seq BIGINT NOT NULL, epoch BIGINT NOT NULL,
		PRIMARY KEY (idem_key, leg))` + noRowid,
	`CREATE INDEX tcc_pending ON tcc (state, tried_ms)`,
}

const (
	qTCCLeg = `SELECT idem_key, leg, from_uid, to_uid, amount_minor, state, reason, empty, tried_ms, seq, epoch
		FROM tcc WHERE idem_key = $1 AND leg = $2`
	qPutTCC = `INSERT INTO tcc (idem_key, leg, from_uid, to_uid, amount_minor, state, reason, empty, tried_ms, seq, epoch)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (idem_key, leg) DO UPDATE SET state = excluded.state, reason = excluded.reason,
			seq = excluded.seq, epoch = excluded.epoch`
)

// tccQueries are prepared at Open with the writer's other statements.
var tccQueries = []string{qTCCLeg, qPutTCC}

// TCCRow is one leg of a cross-unit transfer as this replica recorded it.
type TCCRow struct {
	Key         string `json:"key"`
	Leg         string `json:"leg"` // ledger.LegDebit or ledger.LegCredit
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
	State       string `json:"state"` // ledger.LegTried, LegConfirmed, LegCancelled
	Reason      string `json:"reason,omitempty"`
	Empty       bool   `json:"empty,omitempty"` // cancelled without a try (empty rollback)
	TriedMS     int64  `json:"tried_ms"`        // the primary's clock at the try
	Seq         int64  `json:"seq"`             // the entry of the last step
	Epoch       int64  `json:"epoch"`
}

func scanTCC(scan func(...any) error) (TCCRow, error) {
	var r TCCRow
	var empty int64
	err := scan(&r.Key, &r.Leg, &r.FromUID, &r.ToUID, &r.AmountMinor, &r.State, &r.Reason, &empty, &r.TriedMS, &r.Seq, &r.Epoch)
	r.Empty = empty != 0
	return r, err
}

// TCCLeg returns the recorded leg of a transfer, ErrNotFound when this replica has none.
func (t *Tx) TCCLeg(ctx context.Context, key, leg string) (TCCRow, error) {
	r, err := scanTCC(t.queryRow(ctx, qTCCLeg, key, leg).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return TCCRow{}, fmt.Errorf("read transfer leg %q/%s: %w", key, leg, ErrNotFound)
	}
	if err != nil {
		return TCCRow{}, fmt.Errorf("read transfer leg %q/%s: %w", key, leg, err)
	}
	return r, nil
}

// PutTCC records a leg's state (a new leg, or the next state of one).
func (t *Tx) PutTCC(ctx context.Context, r TCCRow) error {
	empty := int64(0)
	if r.Empty {
		empty = 1
	}
	return t.exec(ctx, "record transfer leg", qPutTCC,
		r.Key, r.Leg, r.FromUID, r.ToUID, r.AmountMinor, r.State, r.Reason, empty, r.TriedMS, r.Seq, r.Epoch)
}

// PostLeg changes one account's balance by amountMinor and records the posting (a transfer
// leg: the payer's reservation or its release, the payee's credit).
func (t *Tx) PostLeg(ctx context.Context, seq int64, key string, uid, amountMinor int64) error {
	t.pend.addBalance(uid, amountMinor)
	t.pend.postings = append(t.pend.postings, postingRow{seq: seq, leg: 0, uid: uid, amountMinor: amountMinor, key: key})
	return nil
}

// pendingTCCMax bounds one read of pending legs.
const pendingTCCMax = 256

// PendingTCC returns up to limit legs still tried whose try is older than beforeMS (the
// primary's clock), oldest first: the ones a participant asks the core zone about.
func (db *DB) PendingTCC(ctx context.Context, beforeMS int64, limit int) ([]TCCRow, error) {
	limit = min(max(limit, 1), pendingTCCMax)
	rows, err := db.r.QueryContext(ctx, `SELECT idem_key, leg, from_uid, to_uid, amount_minor, state, reason, empty,
		tried_ms, seq, epoch FROM tcc WHERE state = $1 AND tried_ms < $2 ORDER BY tried_ms LIMIT $3`,
		ledger.LegTried, beforeMS, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending transfer legs: %w", err)
	}
	defer rows.Close()
	var out []TCCRow
	for rows.Next() {
		r, err := scanTCC(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("read pending transfer legs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending transfer legs: %w", err)
	}
	return out, nil
}

// crossFigures folds every transfer leg into the audit's figures.
func crossFigures(ctx context.Context, q rowsQuerier) (ledger.Cross, error) {
	var c ledger.Cross
	rows, err := q.QueryContext(ctx, `SELECT idem_key, leg, state, amount_minor FROM tcc`)
	if err != nil {
		return c, fmt.Errorf("read transfer legs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, leg, state string
		var amount int64
		if err := rows.Scan(&key, &leg, &state, &amount); err != nil {
			return c, fmt.Errorf("read transfer legs: %w", err)
		}
		c.AddLeg(key, leg, state, amount)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("read transfer legs: %w", err)
	}
	return c, nil
}

// CrossFigures returns the figures of this replica's transfer legs alone (the audit polls them
// while it waits for transfers to settle).
func (db *DB) CrossFigures(ctx context.Context) (ledger.Cross, error) {
	return crossFigures(ctx, db.r)
}

// The catch-up snapshot carries the legs too: a replica promoted after a catch-up must know
// which transfers it reserved.

type snapTCC struct {
	Key    string `json:"k"`
	Leg    string `json:"l"`
	From   int64  `json:"f"`
	To     int64  `json:"t"`
	Amount int64  `json:"m"`
	State  string `json:"s"`
	Reason string `json:"r,omitempty"`
	Empty  int64  `json:"y,omitempty"`
	Tried  int64  `json:"w"`
	Seq    int64  `json:"q"`
	Epoch  int64  `json:"e"`
}

const (
	qSnapTCC = `SELECT idem_key, leg, from_uid, to_uid, amount_minor, state, reason, empty, tried_ms, seq, epoch
		FROM tcc ORDER BY idem_key, leg`
	// qRebuildTCCOutbox puts the events of confirmed transfers (on the payer's side, at the
	// confirm's seq) back into a rebuilt outbox.
	qRebuildTCCOutbox = `INSERT INTO outbox (seq, idem_key, from_uid, to_uid, amount_minor)
		SELECT seq, idem_key, from_uid, to_uid, amount_minor FROM tcc WHERE leg = 'debit' AND state = 'confirmed'`
)

func tccLine(scan func(...any) error) (snapLine, error) {
	var c snapTCC
	err := scan(&c.Key, &c.Leg, &c.From, &c.To, &c.Amount, &c.State, &c.Reason, &c.Empty, &c.Tried, &c.Seq, &c.Epoch)
	return snapLine{TCC: &c}, err
}

// row is the leg's values in the order of its import (snapshot.go).
func (c *snapTCC) row() []any {
	return []any{c.Key, c.Leg, c.From, c.To, c.Amount, c.State, c.Reason, c.Empty, c.Tried, c.Seq, c.Epoch}
}
