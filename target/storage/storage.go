// Package storage keeps one replica's books: the schema and its versioned migrations, the
// statements the unit runs inside its transactions, the audit figures and the catch-up
// snapshot. The database is a SQLite file (WAL, synchronous=FULL) by default, or a schema on a
// PostgreSQL server (synchronous_commit=on): package sqldb says where, and the same SQL serves
// both ($N placeholders, BIGINT, ON CONFLICT; the few dialect words are sqldb.Dialect's).
//
// A database has exactly one writer connection, owned by the unit's writer goroutine; readers
// use a separate read-only pool and see committed snapshots.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/sqldb"
)

// Limits of a database.
const (
	// readersMax bounds the read-only pool (GETs, audit, snapshot, log reads).
	readersMax = 4
	// FileName is the SQLite database file inside a replica's data directory.
	FileName = "unit.db"
)

// Errors of the storage layer.
var (
	ErrNotFound      = errors.New("not found")
	ErrSchemaTooNew  = errors.New("database schema newer than this program")
	ErrSnapshotShape = errors.New("malformed snapshot")
	// ErrCommitUnknown is a COMMIT that failed without saying whether it took effect (the
	// connection dropped while the server committed): the database may hold the transaction
	// or not, and only reading it again can tell.
	ErrCommitUnknown = errors.New("commit outcome unknown")
)

// DB is one replica's database: a single writer connection and a read-only pool.
type DB struct {
	w     *sql.DB
	r     *sql.DB
	place sqldb.Place
	d     sqldb.Dialect

	// wc is the writer's connection, taken from w at Open; nil after one was discarded, until
	// the next Begin takes a new one.
	wc     *writerConn
	outbox *sql.Stmt // qOutbox on the readers
}

// Open opens (creating if needed) the SQLite database in dir and migrates it to the current
// schema.
func Open(ctx context.Context, dir string) (*DB, error) {
	return OpenAt(ctx, sqldb.SQLite(dir, FileName))
}

// OpenAt opens (creating if needed) the database at p and migrates it to the current schema.
// A second, separate database of the same replica (its shadow) is OpenAt(ctx, p.Named(name)).
func OpenAt(ctx context.Context, p sqldb.Place) (*DB, error) {
	w, err := sqldb.OpenWriter(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("open writer: %w", err)
	}
	db := &DB{w: w, place: p, d: p.Dialect()}
	if err := migrate(ctx, w, db.d); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", p, err)
	}
	if db.wc, err = connect(ctx, w, db.d); err != nil {
		db.Close()
		return nil, err
	}
	r, err := sqldb.OpenReaders(ctx, p, readersMax)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open readers: %w", err)
	}
	db.r = r
	if err := db.prepareReads(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepareReads prepares the readers' hot statements (database/sql prepares each again on
// every reader connection that runs it, once).
func (db *DB) prepareReads(ctx context.Context) error {
	st, err := db.r.PrepareContext(ctx, qOutbox)
	if err != nil {
		return fmt.Errorf("prepare outbox read: %w", err)
	}
	db.outbox = st
	return nil
}

// OpenReadOnly opens an existing SQLite database in dir for the offline audit, without
// migrating or writing.
func OpenReadOnly(ctx context.Context, dir string) (*DB, error) {
	return OpenReadOnlyAt(ctx, sqldb.SQLite(dir, FileName))
}

// OpenReadOnlyAt opens the existing database at p for the offline audit, without migrating or
// writing.
func OpenReadOnlyAt(ctx context.Context, p sqldb.Place) (*DB, error) {
	r, err := sqldb.OpenReaders(ctx, p, readersMax)
	if err != nil {
		return nil, err
	}
	v, err := version(ctx, r)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("read schema version of %s: %w", p, err)
	}
	if v != len(migrations) {
		r.Close()
		return nil, fmt.Errorf("open %s at schema %d (want %d): %w", p, v, len(migrations), ErrSchemaTooNew)
	}
	db := &DB{r: r, place: p, d: p.Dialect()}
	if err := db.prepareReads(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.wc != nil {
		errs = append(errs, db.wc.close())
	}
	if db.outbox != nil {
		errs = append(errs, db.outbox.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	return errors.Join(errs...)
}

// Path describes where the database lives (a file, or a schema on a server without the DSN's
// password).
func (db *DB) Path() string { return db.place.String() }

// Begin starts the writer's transaction. Only the writer goroutine calls it. A BEGIN changes
// nothing, so one that fails is tried once more on a new connection, as database/sql's pool
// would have replaced a dead one: a PostgreSQL session the server ended while it was idle
// answers its next statement with the FATAL that ended it.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	assert(db.w != nil, "write to a read-only database")
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("begin: %w", err)
		}
		if db.wc == nil {
			wc, err := connect(ctx, db.w, db.d)
			if err != nil {
				return nil, fmt.Errorf("begin: %w", err)
			}
			db.wc = wc
		}
		_, err := db.wc.exec(db.stmtCtx(ctx), db.d.BeginWrite())
		if err == nil {
			return &Tx{db: db, c: db.wc}, nil
		}
		db.discardConn()
		if attempt > 0 {
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
}

// discardConn closes the writer's connection; the next Begin takes a new one.
func (db *DB) discardConn() {
	db.wc.discard()
	db.wc = nil
}

// assert panics on a programmer error.
func assert(cond bool, msg string) {
	if !cond {
		panic("storage: assertion failed: " + msg)
	}
}
