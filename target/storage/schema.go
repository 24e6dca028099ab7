package storage

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/redline-dev/redline/target/sqldb"
)

// migrations are the schema's versions in order: migrations[i] takes a database from version i
// to i+1. Never edit a released one; append.
//
// history holds one row per replicated entry forever (seq, the epoch it was written under,
// whether this replica accepted it under a stale epoch, and the hash chain up to it), and the
// entry's body for a bounded window (NULL before it), to bring a standby up to date.
var migrations = [][]string{
	{
		`CREATE TABLE meta (name TEXT PRIMARY KEY, num BIGINT NOT NULL DEFAULT 0, txt TEXT NOT NULL DEFAULT '')` + noRowid,
		`CREATE TABLE accounts (uid ` + intKey + `, balance_minor BIGINT NOT NULL,
			opened_minor BIGINT NOT NULL, seq BIGINT NOT NULL)`,
		`CREATE TABLE payments (idem_key TEXT PRIMARY KEY, from_uid BIGINT NOT NULL, to_uid BIGINT NOT NULL,
			amount_minor BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
			seq BIGINT NOT NULL, epoch BIGINT NOT NULL)` + noRowid,
		// Keyed by payment first: the audit's per-payment check reads it in key order, and an
		// insert touches one b-tree.
		`CREATE TABLE postings (seq BIGINT NOT NULL, leg BIGINT NOT NULL, idem_key TEXT NOT NULL,
			uid BIGINT NOT NULL, amount_minor BIGINT NOT NULL, PRIMARY KEY (idem_key, seq, leg))` + noRowid,
		`CREATE TABLE history (seq ` + intKey + `, epoch BIGINT NOT NULL, stale BIGINT NOT NULL,
			chain TEXT NOT NULL, body TEXT)`,
		`CREATE TABLE lost (idem_key TEXT NOT NULL, seq BIGINT NOT NULL, status TEXT NOT NULL)`,
	},
	// The transactional outbox: one row per committed payment, written in the payment's own
	// transaction on every replica (the same apply path), so a failover loses no event. The
	// event id is "<unit>-<seq>"; the relay publishes rows in seq order.
	{
		`CREATE TABLE outbox (seq ` + intKey + `, idem_key TEXT NOT NULL, from_uid BIGINT NOT NULL,
			to_uid BIGINT NOT NULL, amount_minor BIGINT NOT NULL)`,
	},
	// The legs of cross-unit transfers this unit takes part in (tcc.go): one row per key and
	// leg, its state tried, confirmed or cancelled; the index finds the pending ones.
	tccMigration,
}

// The SQLite words of the schema that sqldb.Dialect.Schema translates for PostgreSQL (the rest
// of every statement is shared). In SQLite an INTEGER PRIMARY KEY is the table's rowid (a
// 64-bit integer, one b-tree instead of two), and a table keyed otherwise is stored by its key
// (WITHOUT ROWID); PostgreSQL says BIGINT PRIMARY KEY and nothing.
const (
	intKey  = "INTEGER PRIMARY KEY"
	noRowid = " WITHOUT ROWID"
)

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations) }

func migrate(ctx context.Context, w *sql.DB, d sqldb.Dialect) error {
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	v, err := version(ctx, w)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema %d > %d: %w", v, len(migrations), ErrSchemaTooNew)
	}
	for ; v < len(migrations); v++ {
		if err := step(ctx, w, d, v); err != nil {
			return err
		}
	}
	return nil
}

// step applies migration v in one transaction with the version bump.
func step(ctx context.Context, w *sql.DB, d sqldb.Dialect, v int) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration %d: %w", v+1, err)
	}
	defer tx.Rollback()
	for _, stmt := range migrations[v] {
		if _, err := tx.ExecContext(ctx, d.Schema(stmt)); err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("clear schema_version: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v+1); err != nil {
		return fmt.Errorf("record schema_version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration %d: %w", v+1, err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func version(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case err == sql.ErrNoRows:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema_version: %w", err)
	}
	return v, nil
}
