package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"github.com/redline-dev/redline/target/sqldb"
)

// writerConn is the writer's one connection, held from Open to Close, with every statement the
// writer runs prepared on it. A group commit is a handful of statements, so what database/sql
// and the driver spend around each counted: a sql.Tx binds every prepared statement to its
// connection again and starts a goroutine that watches its context, and SQLite's driver
// parses BEGIN IMMEDIATE and COMMIT anew for every transaction. On SQLite the transaction
// control is prepared too; on PostgreSQL it stays text, which pgx sends as one simple-protocol
// message, the same round trip as a prepared one (and what sqldbtest.Proxy recognises as a
// COMMIT).
type writerConn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt // by SQL
}

// The writer's transaction control besides its BEGIN (sqldb.Dialect.BeginWrite).
const (
	qCommit   = `COMMIT`
	qRollback = `ROLLBACK`
)

// connect takes the writer pool's one connection and prepares the writer's statements on it.
func connect(ctx context.Context, w *sql.DB, d sqldb.Dialect) (*writerConn, error) {
	c, err := w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("take writer connection: %w", err)
	}
	wc := &writerConn{c: c, stmts: map[string]*sql.Stmt{}}
	qs := slices.Concat(writerQueries, tccQueries, insertQueries(d))
	if !d.Postgres() {
		qs = append(qs, d.BeginWrite(), qCommit, qRollback)
	}
	for _, q := range qs {
		st, err := c.PrepareContext(ctx, q)
		if err != nil {
			wc.discard()
			return nil, fmt.Errorf("prepare %.40q: %w", q, err)
		}
		wc.stmts[q] = st
	}
	return wc, nil
}

// exec runs q on the connection: its statement prepared at connect when it has one, else as
// text (transaction control on PostgreSQL, schema changes, a snapshot import's bulk statements).
func (wc *writerConn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, ok := wc.stmts[q]; ok {
		return st.ExecContext(ctx, args...)
	}
	return wc.c.ExecContext(ctx, q, args...)
}

// queryRow is exec's reading one row.
func (wc *writerConn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := wc.stmts[q]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return wc.c.QueryRowContext(ctx, q, args...)
}

// Statements prepared on a sql.Conn are not closed with it, and closing one after its
// connection is not safe (SQLite's driver finalizes it on the closed handle and crashes): they
// are closed first, or, when database/sql closed the connection itself (it does on a driver's
// driver.ErrBadConn), left alone.

// close hands the connection back to the pool, its statements closed.
func (wc *writerConn) close() error {
	if !wc.alive() {
		return nil
	}
	errs := wc.closeStmts()
	return errors.Join(append(errs, wc.c.Close())...)
}

// discard closes the connection itself, not to be reused: one whose transaction could not be
// rolled back, or that the driver found broken, holds a state nobody knows.
func (wc *writerConn) discard() {
	if wc.alive() {
		wc.closeStmts()
		// driver.ErrBadConn from Raw is database/sql's way to close the driver connection
		// instead of pooling it; the Conn is closed with it.
		_ = wc.c.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = wc.c.Close() // sql.ErrConnDone: closed already
}

// alive says whether database/sql still holds the connection open.
func (wc *writerConn) alive() bool {
	return wc.c.Raw(func(any) error { return nil }) == nil
}

func (wc *writerConn) closeStmts() []error {
	var errs []error
	for _, st := range wc.stmts {
		errs = append(errs, st.Close())
	}
	return errs
}
