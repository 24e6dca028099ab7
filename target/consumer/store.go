package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
)

// migrations of a consumer's database: migrations[i] takes it from version i to i+1.
var migrations = [][]string{{
	`CREATE TABLE inbox (event_id TEXT PRIMARY KEY, idem_key TEXT NOT NULL, stream_seq BIGINT NOT NULL) WITHOUT ROWID`,
	`CREATE TABLE effects (name TEXT PRIMARY KEY, num BIGINT NOT NULL) WITHOUT ROWID`,
}}

// FileName is the SQLite database file in a group's data dir.
const FileName = "consumer.db"

// store is a consumer group's own database (a SQLite file, or a PostgreSQL schema): the
// inbox and the effects, written together.
type store struct {
	db *sql.DB
	d  sqldb.Dialect
}

func openStore(ctx context.Context, p sqldb.Place) (*store, error) {
	db, err := sqldb.OpenWriter(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("open consumer database: %w", err)
	}
	s := &store{db: db, d: p.Dialect()}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for ; v < len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		for _, q := range append(migrations[v], `DELETE FROM schema_version`) {
			if _, err := tx.ExecContext(ctx, s.d.Schema(q)); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate to %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

func (s *store) close() error { return s.db.Close() }

// delivered is one message to apply: its event and its stream seq.
type delivered struct {
	e         events.Event
	streamSeq uint64
}

// inboxRowsMax bounds the rows of one inbox insert (3 parameters each: well under SQLite's and
// PostgreSQL's parameter limits).
const inboxRowsMax = 256

// apply records each event in the inbox and applies its effect, in one transaction; an event
// already in the inbox is skipped (a redelivery). It returns how many were new. A batch costs one
// statement per inbox chunk and one for the effects, summed over its new events: one statement
// per event and effect cost the consumers most of their CPU (perf: 70%, mostly re-preparing).
func (s *store) apply(ctx context.Context, group string, batch []delivered) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin apply: %w", err)
	}
	defer tx.Rollback()
	batch = firstOfEach(batch)
	sums := map[string]int64{}
	fresh := 0
	for chunk := range slices.Chunk(batch, inboxRowsMax) {
		ids, err := s.insertInbox(ctx, tx, chunk)
		if err != nil {
			return 0, err
		}
		for _, d := range chunk {
			if _, ok := ids[d.e.ID]; ok {
				fresh++
				addEffects(sums, group, d.e)
			}
		}
	}
	if err := s.upsertEffects(ctx, tx, sums); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit apply: %w", err)
	}
	return fresh, nil
}

// firstOfEach drops the later copies of an event a batch holds twice (the stream keeps an event
// twice when it was republished beyond the duplicate window).
func firstOfEach(batch []delivered) []delivered {
	seen := make(map[string]struct{}, len(batch))
	out := batch[:0:0]
	for _, d := range batch {
		if _, ok := seen[d.e.ID]; !ok {
			seen[d.e.ID] = struct{}{}
			out = append(out, d)
		}
	}
	return out
}

// insertInbox inserts the inbox rows of chunk (distinct event ids) in one statement and returns
// the ids it inserted: those not in the inbox yet.
func (s *store) insertInbox(ctx context.Context, tx *sql.Tx, chunk []delivered) (map[string]struct{}, error) {
	var q strings.Builder
	q.WriteString(`INSERT INTO inbox (event_id, idem_key, stream_seq) VALUES `)
	args := make([]any, 0, 3*len(chunk))
	for i, d := range chunk {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + s.d.Param(3*i+1) + ", " + s.d.Param(3*i+2) + ", " + s.d.Param(3*i+3) + ")")
		args = append(args, d.e.ID, d.e.Key, int64(d.streamSeq))
	}
	q.WriteString(` ON CONFLICT (event_id) DO NOTHING RETURNING event_id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("insert inbox: %w", err)
	}
	defer rows.Close()
	ids := make(map[string]struct{}, len(chunk))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("insert inbox: %w", err)
		}
		ids[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert inbox: %w", err)
	}
	return ids, nil
}

// upsertEffects adds sums to the effects, in one statement (the names are distinct: a map's).
func (s *store) upsertEffects(ctx context.Context, tx *sql.Tx, sums map[string]int64) error {
	if len(sums) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO effects (name, num) VALUES `)
	args := make([]any, 0, 2*len(sums))
	for _, name := range slices.Sorted(maps.Keys(sums)) { // one lock order for every batch
		if len(args) > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + s.d.Param(len(args)+1) + ", " + s.d.Param(len(args)+2) + ")")
		args = append(args, name, sums[name])
	}
	q.WriteString(` ON CONFLICT (name) DO UPDATE SET num = effects.num + excluded.num`)
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("apply effects: %w", err)
	}
	return nil
}

// effectApplied counts effects applied: one per event applied.
const effectApplied = "applied"

// addEffects adds what an event does to a group's books to sums: the ledger group keeps
// balances by uid, settlement the sum per unit, notification a count of notices. Every group
// counts the event.
func addEffects(sums map[string]int64, group string, e events.Event) {
	sums[effectApplied]++
	switch group {
	case "ledger":
		sums["uid:"+strconv.FormatInt(e.FromUID, 10)] -= e.AmountMinor
		sums["uid:"+strconv.FormatInt(e.ToUID, 10)] += e.AmountMinor
	case "settlement":
		sums["unit:"+e.Unit] += e.AmountMinor
	default:
		sums["notices"]++
	}
}

// applied returns the count of applied effects.
func (s *store) applied(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(num), 0) FROM effects WHERE name = $1`, effectApplied).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read applied: %w", err)
	}
	return n, nil
}

// figures are the audit's: the inbox's digest and the applied count, in one read.
func (s *store) figures(ctx context.Context, g *ledger.Group) error {
	tx, err := s.db.BeginTx(ctx, sqldb.ReadTx)
	if err != nil {
		return fmt.Errorf("read figures: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT event_id, idem_key FROM inbox`)
	if err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			return fmt.Errorf("read inbox: %w", err)
		}
		g.Inbox.Add(id, key)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	return tx.QueryRowContext(ctx, `SELECT coalesce(sum(num), 0) FROM effects WHERE name = $1`, effectApplied).Scan(&g.Applied)
}

// ReadFigures reads a stopped (or running: its readers see committed snapshots) group's audit
// figures from its database at p, read-only: the inbox's digest and the applied count. Lag,
// max lag and drain time live in the running process and are left zero.
func ReadFigures(ctx context.Context, p sqldb.Place) (ledger.Group, error) {
	g := ledger.Group{Name: filepath.Base(p.Dir)}
	db, err := sqldb.OpenReaders(ctx, p, 1)
	if err != nil {
		return g, fmt.Errorf("open consumer database: %w", err)
	}
	defer db.Close()
	err = (&store{db: db, d: p.Dialect()}).figures(ctx, &g)
	return g, err
}
