package sqldb_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

// BenchmarkDriver measures what the storage layer's choice of pgx through database/sql (its
// stdlib adapter) costs against pgx's native interface, on the statement a payment runs most
// (a balance update by key), 100 per transaction as in a group commit: stdlib and native run
// one round trip per statement; native-batch sends the 100 in one pipelined round trip, which
// only the native interface offers.
func BenchmarkDriver(b *testing.B) {
	srv := sqldbtest.Postgres(b)
	ctx := context.Background()
	p := srv.Place(b.TempDir(), "", "bench", "driver")
	w, err := sqldb.OpenWriter(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS accounts (uid BIGINT PRIMARY KEY, balance_minor BIGINT NOT NULL)`,
		`INSERT INTO accounts SELECT g, 0 FROM generate_series(0, 999) g ON CONFLICT DO NOTHING`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	const update = `UPDATE accounts SET balance_minor = balance_minor + $1 WHERE uid = $2`
	const perTx = 100
	b.Run("stdlib", func(b *testing.B) {
		st, err := w.PrepareContext(ctx, update)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		for i := 0; i < b.N; {
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			txst := tx.StmtContext(ctx, st)
			for end := min(i+perTx, b.N); i < end; i++ {
				if _, err := txst.ExecContext(ctx, 1, i%1000); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
	cfg, err := sqldb.ParseDSN(p.DSN)
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = p.Schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	native := func(b *testing.B, batch bool) {
		for i := 0; i < b.N; {
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var bt pgx.Batch
			for end := min(i+perTx, b.N); i < end; i++ {
				if batch {
					bt.Queue(update, 1, i%1000)
				} else if _, err := tx.Exec(ctx, update, 1, i%1000); err != nil {
					b.Fatal(err)
				}
			}
			if batch {
				if err := tx.SendBatch(ctx, &bt).Close(); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("native", func(b *testing.B) { native(b, false) })
	b.Run("native-batch", func(b *testing.B) { native(b, true) })
}
