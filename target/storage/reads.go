package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
)

// Names of the values kept in the meta table.
const (
	MetaUnit             = "unit"
	MetaReplica          = "replica"
	MetaRole             = "role"
	MetaEpoch            = "epoch"
	MetaAckedSeq         = "acked_seq"
	MetaStaleRefused     = "stale_refused"
	MetaLostAcknowledged = "lost_acknowledged"
)

// State is a replica's persisted state: its identity, role, epoch and history head.
type State struct {
	Unit, Replica, Role string
	Epoch               int64
	LastSeq             int64
	Chain               string
	AckedSeq            int64
	StaleRefused        int64
	LostAcknowledged    int64
}

type rowsQuerier interface {
	querier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// pool is the writer when the database is writable (at start-up, before the writer goroutine
// owns it) and the readers otherwise.
func (db *DB) pool() rowsQuerier {
	if db.wc != nil {
		return db.wc.c // the pool's one connection is held by wc
	}
	return db.r
}

// State reads the persisted state. Call it before the writer goroutine starts, or from the
// offline audit.
func (db *DB) State(ctx context.Context) (State, error) {
	return readState(ctx, db.pool())
}

func readState(ctx context.Context, q rowsQuerier) (State, error) {
	var s State
	rows, err := q.QueryContext(ctx, `SELECT name, num, txt FROM meta`)
	if err != nil {
		return State{}, fmt.Errorf("read meta: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, txt string
		var num int64
		if err := rows.Scan(&name, &num, &txt); err != nil {
			return State{}, fmt.Errorf("scan meta: %w", err)
		}
		switch name {
		case MetaUnit:
			s.Unit = txt
		case MetaReplica:
			s.Replica = txt
		case MetaRole:
			s.Role = txt
		case MetaEpoch:
			s.Epoch = num
		case MetaAckedSeq:
			s.AckedSeq = num
		case MetaStaleRefused:
			s.StaleRefused = num
		case MetaLostAcknowledged:
			s.LostAcknowledged = num
		}
	}
	if err := rows.Err(); err != nil {
		return State{}, fmt.Errorf("read meta: %w", err)
	}
	s.LastSeq, s.Chain, err = head(ctx, q)
	return s, err
}

func head(ctx context.Context, q querier) (int64, string, error) {
	var seq int64
	var chain string
	err := q.QueryRowContext(ctx, `SELECT seq, chain FROM history ORDER BY seq DESC LIMIT 1`).Scan(&seq, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read history head: %w", err)
	}
	return seq, chain, nil
}

// ChainAt returns the hash chain of the history up to seq ("" at seq 0).
func (db *DB) ChainAt(ctx context.Context, seq int64) (string, error) {
	if seq == 0 {
		return "", nil
	}
	var chain string
	err := db.r.QueryRowContext(ctx, `SELECT chain FROM history WHERE seq = $1`, seq).Scan(&chain)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read chain at %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read chain at %d: %w", seq, err)
	}
	return chain, nil
}

// Entry is a replicated entry's body as stored, with its seq.
type Entry struct {
	Seq  int64
	Body []byte
}

// Entries returns up to max stored entries from seq on, in order. A window trimmed past seq
// returns ErrNotFound.
func (db *DB) Entries(ctx context.Context, fromSeq int64, max int) ([]Entry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT seq, body FROM history WHERE seq >= $1 ORDER BY seq LIMIT $2`, fromSeq, max)
	if err != nil {
		return nil, fmt.Errorf("read entries from %d: %w", fromSeq, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var body sql.NullString
		if err := rows.Scan(&e.Seq, &body); err != nil {
			return nil, fmt.Errorf("scan entry: %w", err)
		}
		if !body.Valid || (len(out) == 0 && e.Seq != fromSeq) {
			return nil, fmt.Errorf("read entries from %d (window passed seq %d): %w", fromSeq, e.Seq, ErrNotFound)
		}
		e.Body = []byte(body.String)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read entries from %d: %w", fromSeq, err)
	}
	return out, nil
}

// Account returns an account from the readers.
func (db *DB) Account(ctx context.Context, uid int64) (ledger.Account, error) {
	a := ledger.Account{UID: uid}
	err := db.r.QueryRowContext(ctx, `SELECT balance_minor FROM accounts WHERE uid = $1`, uid).Scan(&a.BalanceMinor)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Account{}, fmt.Errorf("read account %d: %w", uid, ErrNotFound)
	}
	if err != nil {
		return ledger.Account{}, fmt.Errorf("read account %d: %w", uid, err)
	}
	return a, nil
}

// Payment returns a recorded payment from the readers.
func (db *DB) Payment(ctx context.Context, key string) (Recorded, error) {
	return scanPayment(db.r.QueryRowContext(ctx, paymentQuery, key).Scan, key)
}
