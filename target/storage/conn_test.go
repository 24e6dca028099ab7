package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/sqldb"
)

// terminateWait bounds the wait for PostgreSQL to end a terminated session.
const terminateWait = 10 * time.Second

// TestWriterConnectionBreaks: the writer's held connection breaks (PostgreSQL terminates its
// session; on SQLite it is closed under the writer), inside a transaction and between two. The
// transaction it was in must fail without committing anything, and the writer must not wedge:
// the next Begin works, on a new connection.
func TestWriterConnectionBreaks(t *testing.T) {
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx := context.Background()
		db := open(t, place(t, srv, "a"))
		breakConn := func() {
			t.Helper()
			if !srv.Postgres() {
				// SQLite's driver never reports a connection bad mid-use; discarding it under
				// the writer's feet is the nearest thing.
				db.wc.discard()
				return
			}
			var pid int64
			if err := db.wc.c.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			var ended bool
			err := db.r.QueryRowContext(ctx, `SELECT pg_terminate_backend($1, $2)`, pid, terminateWait.Milliseconds()).Scan(&ended)
			if err != nil || !ended {
				t.Fatalf("terminate the writer's session %d: %v %v", pid, ended, err)
			}
		}
		setMeta := func(num int64) error {
			tx, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := tx.SetMeta(ctx, "probe", num, ""); err != nil {
				return err
			}
			return tx.Commit()
		}
		if err := setMeta(1); err != nil {
			t.Fatal(err)
		}

		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.SetMeta(ctx, "probe", 2, ""); err != nil {
			t.Fatal(err)
		}
		breakConn()
		if err := tx.SetMeta(ctx, "probe", 3, ""); err == nil {
			t.Error("a statement on a broken connection succeeded")
		}
		if err := tx.Commit(); err == nil || errors.Is(err, ErrCommitUnknown) {
			t.Errorf("commit after a failed statement: %v, want an error that is not ErrCommitUnknown", err)
		}
		tx.Rollback()
		if err := setMeta(4); err != nil {
			t.Fatalf("the first transaction after a broken one: %v", err)
		}
		if n, err := db.MetaNum(ctx, "probe"); err != nil || n != 4 {
			t.Errorf("probe = %d %v, want 4", n, err)
		}

		breakConn() // between transactions
		if err := setMeta(5); err != nil {
			t.Fatalf("a transaction after the idle connection broke: %v", err)
		}
		if n, err := db.MetaNum(ctx, "probe"); err != nil || n != 5 {
			t.Errorf("probe = %d %v, want 5", n, err)
		}
	})
}
