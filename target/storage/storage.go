// Package storage keeps one replica's books in SQLite (the pure Go driver, WAL,
// synchronous=FULL): the schema and its versioned migrations, the statements the unit runs
// inside its transactions, the audit figures and the catch-up snapshot.
//
// A database has exactly one writer connection, owned by the unit's writer goroutine; readers
// use a separate read-only pool and see committed snapshots (WAL). The SQL is kept portable
// ($N placeholders, BIGINT, ON CONFLICT) because PostgreSQL will run the same statements.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Limits of a database.
const (
	// readersMax bounds the read-only pool (GETs, audit, snapshot, log reads).
	readersMax = 4
	// busyTimeoutMS lets a reader wait out a WAL checkpoint instead of failing.
	busyTimeoutMS = 5_000
	// cacheKiB is the page cache of each connection (SQLite's default, 2 MiB, rereads the
	// accounts of a 100k-account unit from the OS on every payment).
	cacheKiB = 16 << 10
	// FileName is the database file inside a replica's data directory.
	FileName = "unit.db"
)

// Errors of the storage layer.
var (
	ErrNotFound      = errors.New("not found")
	ErrSchemaTooNew  = errors.New("database schema newer than this program")
	ErrSnapshotShape = errors.New("malformed snapshot")
)

// DB is one replica's database: a single writer connection and a read-only pool.
type DB struct {
	w    *sql.DB
	r    *sql.DB
	path string

	stmts map[string]*sql.Stmt // the writer's prepared statements, by SQL; fixed after Open
}

// Open opens (creating if needed) the database in dir and migrates it to the current schema.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open writer: %w", err)
	}
	w.SetMaxOpenConns(1) // the one writer connection
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	db := &DB{w: w, path: path, stmts: map[string]*sql.Stmt{}}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	for _, q := range append(writerQueries, insertQueries()...) {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("prepare %.40q: %w", q, err)
		}
		db.stmts[q] = st
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open readers: %w", err)
	}
	r.SetMaxOpenConns(readersMax)
	r.SetMaxIdleConns(readersMax)
	db.r = r
	return db, nil
}

// OpenReadOnly opens an existing database for the offline audit, without migrating or writing.
func OpenReadOnly(ctx context.Context, dir string) (*DB, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("stat database: %w", err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("open readers: %w", err)
	}
	r.SetMaxOpenConns(readersMax)
	v, err := version(ctx, r)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	if v != len(migrations) {
		r.Close()
		return nil, fmt.Errorf("open %s at schema %d (want %d): %w", path, v, len(migrations), ErrSchemaTooNew)
	}
	return &DB{r: r, path: path}, nil
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cacheKiB))
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	for _, st := range db.stmts {
		errs = append(errs, st.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	return errors.Join(errs...)
}

// Path returns the database file.
func (db *DB) Path() string { return db.path }

// Begin starts the writer's transaction. Only the writer goroutine calls it.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	assert(db.w != nil, "write to a read-only database")
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &Tx{tx: tx, db: db}, nil
}

// assert panics on a programmer error.
func assert(cond bool, msg string) {
	if !cond {
		panic("storage: assertion failed: " + msg)
	}
}
