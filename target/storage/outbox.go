package storage

import (
	"context"
	"fmt"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
)

// OutboxRow is one event of the transactional outbox: a committed payment, keyed by its seq.
type OutboxRow struct {
	Seq         int64  `json:"seq"`
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
}

// AddOutbox records a committed payment's event in the transaction (inserted at commit).
func (t *Tx) AddOutbox(r OutboxRow) {
	t.pend.outbox = append(t.pend.outbox, r)
}

// outboxRowsMax bounds one read of the outbox.
const outboxRowsMax = 4_096

// qOutbox is the relay's read, prepared on the readers at Open: a primary's relay runs it
// every few commits, and parsing it each time cost more than running it.
const qOutbox = `SELECT seq, idem_key, from_uid, to_uid, amount_minor FROM outbox
	WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`

// Outbox returns up to limit events with afterSeq < seq <= uptoSeq, in seq order.
func (db *DB) Outbox(ctx context.Context, afterSeq, uptoSeq int64, limit int) ([]OutboxRow, error) {
	limit = min(max(limit, 1), outboxRowsMax)
	rows, err := db.outbox.QueryContext(ctx, afterSeq, uptoSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.Seq, &r.Key, &r.FromUID, &r.ToUID, &r.AmountMinor); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// ScanOutbox calls fn for every outbox row up to uptoSeq (0: all), in seq order; the audit
// folds them into a digest.
func (db *DB) ScanOutbox(ctx context.Context, uptoSeq int64, fn func(OutboxRow)) error {
	if uptoSeq <= 0 {
		uptoSeq = 1<<63 - 1
	}
	rows, err := db.r.QueryContext(ctx, `SELECT seq, idem_key, from_uid, to_uid, amount_minor FROM outbox
		WHERE seq <= $1 ORDER BY seq`, uptoSeq)
	if err != nil {
		return fmt.Errorf("scan outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.Seq, &r.Key, &r.FromUID, &r.ToUID, &r.AmountMinor); err != nil {
			return fmt.Errorf("scan outbox: %w", err)
		}
		fn(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan outbox: %w", err)
	}
	return nil
}

// OutboxDigest folds every outbox row of unit into a digest of event ids and payment keys, the
// audit's fingerprint of the events a unit's committed payments must emit.
func (db *DB) OutboxDigest(ctx context.Context, unit string) (ledger.Digest, error) {
	var d ledger.Digest
	err := db.ScanOutbox(ctx, 0, func(r OutboxRow) { d.Add(events.ID(unit, r.Seq), r.Key) })
	return d, err
}
