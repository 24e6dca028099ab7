package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

// onBackends runs f once per storage backend (PostgreSQL skips without a test server).
func onBackends(t *testing.T, f func(t *testing.T, srv sqldb.Server)) {
	for _, b := range sqldbtest.Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Server(t)) })
	}
}

// places numbers the tests' databases: one server prefix serves every subtest of a backend.
var places atomic.Int64

// place is where the test's database named name lives on srv.
func place(t testing.TB, srv sqldb.Server, name string) sqldb.Place {
	name = fmt.Sprintf("%s%d", name, places.Add(1))
	return srv.Place(filepath.Join(t.TempDir(), name), FileName, "unit", name)
}

func open(t testing.TB, p sqldb.Place) *DB {
	t.Helper()
	db, err := OpenAt(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenDurabilityAndMigrations(t *testing.T) {
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx, p := context.Background(), place(t, srv, "a")
		db := open(t, p)
		settings := map[string]string{`PRAGMA journal_mode`: "wal", `PRAGMA synchronous`: "2"} // 2: FULL
		if srv.Postgres() {
			settings = map[string]string{`SHOW synchronous_commit`: "on", `SHOW search_path`: p.Schema}
		}
		for q, want := range settings {
			var got string
			if err := db.wc.c.QueryRowContext(ctx, q).Scan(&got); err != nil || got != want {
				t.Errorf("%s = %q %v, want %q", q, got, err, want)
			}
		}
		if v, err := version(ctx, db.wc.c); err != nil || v != SchemaVersion() {
			t.Errorf("schema version = %d %v, want %d", v, err, SchemaVersion())
		}
		db.Close()
		db = open(t, p) // migrating again is a no-op
		if _, err := db.wc.c.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := OpenAt(ctx, p); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("open a newer schema: %v, want ErrSchemaTooNew", err)
		}
		if _, err := OpenReadOnlyAt(ctx, p); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("read-only open of a newer schema: %v, want ErrSchemaTooNew", err)
		}
		if _, err := OpenReadOnlyAt(ctx, place(t, srv, "missing")); !errors.Is(err, sqldb.ErrNoDatabase) {
			t.Errorf("read-only open of a missing database: %v, want ErrNoDatabase", err)
		}
	})
}

// fill opens two accounts and records n committed payments and one failed one, as the unit does.
// begin begins a writer transaction, rolled back at the test's end unless committed.
func begin(t testing.TB, db *DB) *Tx {
	t.Helper()
	tx, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Rollback)
	return tx
}

func fill(t *testing.T, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	tx := begin(t, db)
	seq := int64(1)
	for _, a := range []ledger.Account{{UID: 1, BalanceMinor: 1_000}, {UID: 2, BalanceMinor: 0}} {
		if err := tx.InsertAccount(ctx, a, seq); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i <= n; i++ {
		seq++
		p := ledger.Payment{Key: fmt.Sprintf("k%d", i), FromUID: 1, ToUID: 2, AmountMinor: 10}
		o := ledger.Decide(p, 1_000-int64(i)*10)
		if i == n {
			o = ledger.Outcome{Payment: p, Status: ledger.StatusFailed, Reason: ledger.ReasonInsufficientFunds}
		}
		recordPayment(t, tx, o, seq)
		if err := tx.Append(ctx, seq, 1, false, fmt.Sprintf("c%d", seq), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestFiguresSeeCorruption(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want func(b *ledger.Books)
	}{
		{"healthy", ``, func(*ledger.Books) {}},
		{"money created", `UPDATE accounts SET balance_minor = balance_minor + 1, opened_minor = opened_minor WHERE uid = 2`,
			func(b *ledger.Books) { b.BalanceSumMinor++; b.BalanceMismatches = 1 }},
		{"charged twice", `INSERT INTO postings SELECT seq + 1000, leg, idem_key, uid, amount_minor FROM postings WHERE idem_key = 'k0'`,
			func(b *ledger.Books) { b.CommittedNotOnce = 1; b.BalanceMismatches = 2 }},
		{"failed moved money", `INSERT INTO postings VALUES (2000, 0, 'k3', 1, -10)`,
			func(b *ledger.Books) { b.FailedWithEffect = 1; b.PostingSumMinor = -10; b.BalanceMismatches = 1 }},
		{"negative", `UPDATE accounts SET balance_minor = -5, opened_minor = -5 WHERE uid = 2`,
			func(b *ledger.Books) {
				b.NegativeBalances = 1
				b.BalanceSumMinor = 965
				b.OpenedSumMinor = 995
				b.BalanceMismatches = 1
			}},
		{"committed without postings", `DELETE FROM postings WHERE idem_key = 'k1'`,
			func(b *ledger.Books) { b.CommittedNotOnce = 1; b.BalanceMismatches = 2 }},
	}
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := open(t, place(t, srv, "a"))
				fill(t, db, 3)
				if tt.sql != "" {
					if _, err := db.wc.c.ExecContext(context.Background(), tt.sql); err != nil {
						t.Fatal(err)
					}
				}
				r, err := db.Figures(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				want := ledger.Books{Accounts: 2, BalanceSumMinor: 1_000, OpenedSumMinor: 1_000, PaymentsCommitted: 3, PaymentsFailed: 1}
				tt.want(&want)
				if diff := cmp.Diff(r.Books, want); diff != "" {
					t.Errorf("books (-got +want):\n%s", diff)
				}
				if r.LastSeq != 5 || r.Chain != "c5" {
					t.Errorf("head = %d %q, want 5 c5", r.LastSeq, r.Chain)
				}
			})
		}
	})
}

// recordPayment writes a decided payment as the writer does: its record and, when it
// committed, its postings. It reports whether it committed.
func recordPayment(t testing.TB, tx *Tx, o ledger.Outcome, seq int64) bool {
	t.Helper()
	ctx := context.Background()
	if err := tx.InsertPayment(ctx, Recorded{Outcome: o, Seq: seq, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	legs := o.Postings()
	if legs != nil {
		if err := tx.PostPayment(ctx, seq, o.Key, legs); err != nil {
			t.Fatal(err)
		}
	}
	return legs != nil
}

func TestSnapshotRoundTrip(t *testing.T) {
	onBackends(t, testSnapshotRoundTrip)
}

func testSnapshotRoundTrip(t *testing.T, srv sqldb.Server) {
	ctx := context.Background()
	src, dst := open(t, place(t, srv, "src")), open(t, place(t, srv, "dst"))
	fill(t, src, 4)
	// dst acknowledged, as a primary, payments the snapshot lacks (and one it holds).
	tx, err := dst.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{"k0", "gone1", "gone2", "unacked"} {
		o := ledger.Outcome{Payment: ledger.Payment{Key: key, FromUID: 1, ToUID: 2, AmountMinor: 10}, Status: ledger.StatusCommitted}
		if err := tx.InsertPayment(ctx, Recorded{Outcome: o, Seq: int64(i + 2), Epoch: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.SetMeta(ctx, MetaAckedSeq, 4, ""); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h, err := src.ExportSnapshot(ctx, &buf, "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	tx, err = dst.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, lost, err := tx.ImportSnapshot(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got != h || lost != 2 {
		t.Errorf("import = %+v lost %d, want %+v lost 2", got, lost, h)
	}
	want, _ := src.Figures(ctx)
	have, _ := dst.Figures(ctx)
	want.LostAcknowledged = 2
	if diff := cmp.Diff(have, want); diff != "" {
		t.Errorf("figures after import (-dst +src):\n%s", diff)
	}
	truncated := buf.Bytes()[:buf.Len()-10]
	tx, _ = dst.Begin(ctx)
	defer tx.Rollback()
	if _, _, err := tx.ImportSnapshot(ctx, bytes.NewReader(truncated)); !errors.Is(err, ErrSnapshotShape) {
		t.Errorf("import a truncated snapshot: %v, want ErrSnapshotShape", err)
	}
}

func TestEntriesWindow(t *testing.T) {
	onBackends(t, testEntriesWindow)
}

func testEntriesWindow(t *testing.T, srv sqldb.Server) {
	ctx := context.Background()
	db := open(t, place(t, srv, "a"))
	fill(t, db, 4) // entries 2..6
	got, err := db.Entries(ctx, 3, 2)
	if err != nil || len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 {
		t.Fatalf("Entries(3, 2) = %+v %v", got, err)
	}
	tx, _ := db.Begin(ctx)
	if err := tx.TrimEntries(ctx, 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Entries(ctx, 3, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Entries below the window: %v, want ErrNotFound", err)
	}
	if c, err := db.ChainAt(ctx, 4); err != nil || c != "c4" {
		t.Errorf("ChainAt(4) = %q %v: history outlives the window", c, err)
	}
}

// TestBufferedBalances: balance changes are written at commit, and the transaction's own reads
// see them before that (a payment decided on a balance a previous one in the batch changed).
func TestBufferedBalances(t *testing.T) {
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx := context.Background()
		db := open(t, place(t, srv, "a"))
		fill(t, db, 0) // accounts 1 (1,000) and 2 (0)
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for i, amount := range []int64{100, 250} {
			legs := []ledger.Posting{{UID: 1, AmountMinor: -amount}, {UID: 2, AmountMinor: amount}}
			if err := tx.PostPayment(ctx, int64(10+i), fmt.Sprintf("b%d", i), legs); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.PostLeg(ctx, 12, "t1", 2, -50); err != nil {
			t.Fatal(err)
		}
		// New accounts are buffered too; an existing uid keeps its balance.
		for _, a := range []ledger.Account{{UID: 3, BalanceMinor: 70}, {UID: 3, BalanceMinor: 99}, {UID: 1, BalanceMinor: 5}} {
			if err := tx.InsertAccount(ctx, a, 12); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.PostPayment(ctx, 12, "b2", []ledger.Posting{{UID: 3, AmountMinor: -20}, {UID: 1, AmountMinor: 20}}); err != nil {
			t.Fatal(err)
		}
		if b, opened, err := tx.Account(ctx, 3); err != nil || b != 50 || opened != 70 {
			t.Errorf("a new account in the transaction = %d (opened %d) %v, want 50 (opened 70)", b, opened, err)
		}
		in, err := tx.PayInputs(ctx, "b4", 1, 2)
		if want := (PayInputs{FromMinor: 670, ToMinor: 300, FromOK: true, ToOK: true}); err != nil || in != want {
			t.Errorf("PayInputs in the transaction = %+v %v, want %+v", in, err, want)
		}
		in, err = tx.PayInputs(ctx, "b4", 3, 99)
		if want := (PayInputs{FromMinor: 50, FromOK: true}); err != nil || in != want {
			t.Errorf("PayInputs of a new account and a missing one = %+v %v, want %+v", in, err, want)
		}
		if err := tx.PutTCC(ctx, TCCRow{Key: "t2", Leg: ledger.LegDebit, FromUID: 1, ToUID: 7, AmountMinor: 1, State: ledger.LegTried, Seq: 12, Epoch: 1}); err != nil {
			t.Fatal(err)
		}
		if in, err := tx.PayInputs(ctx, "t2", 1, 2); err != nil || !in.TCCKnown || in.Recorded {
			t.Errorf("PayInputs of a transfer's key = %+v %v, want TCCKnown alone", in, err)
		}
		if in, err := tx.PayInputs(ctx, "k0", 1, 2); err != nil || !in.Recorded || in.TCCKnown {
			t.Errorf("PayInputs of a recorded key = %+v %v, want Recorded alone", in, err)
		}
		failed := ledger.Outcome{Payment: ledger.Payment{Key: "b5", FromUID: 1, ToUID: 2, AmountMinor: 1}, Status: ledger.StatusFailed, Reason: ledger.ReasonInsufficientFunds}
		if err := tx.InsertPayment(ctx, Recorded{Outcome: failed, Seq: 12, Epoch: 1}); err != nil {
			t.Fatal(err)
		}
		if in, err := tx.PayInputs(ctx, "b5", 1, 2); err != nil || !in.Recorded {
			t.Errorf("PayInputs of a key recorded in the transaction = %+v %v, want Recorded", in, err)
		}
		if a, err := db.Account(ctx, 1); err != nil || a.BalanceMinor != 1_000 {
			t.Errorf("a reader before the commit: %+v %v, want 1000", a, err)
		}
		if err := tx.TrimEntries(ctx, 0, 1); err != nil { // writes the buffer mid-transaction
			t.Fatal(err)
		}
		if b, _, err := tx.Account(ctx, 2); err != nil || b != 300 {
			t.Errorf("Account after a mid-transaction write = %d %v, want 300", b, err)
		}
		if err := tx.PostPayment(ctx, 13, "b3", []ledger.Posting{{UID: 2, AmountMinor: -300}, {UID: 1, AmountMinor: 300}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		for uid, want := range map[int64]int64{1: 970, 2: 0, 3: 50} {
			if a, err := db.Account(ctx, uid); err != nil || a.BalanceMinor != want {
				t.Errorf("account %d after the commit: %+v %v, want %d", uid, a, err, want)
			}
		}
	})
}

// TestInsertChunks writes, in one transaction each, counts of new accounts and balance changes
// that take every chunk size and mixes of them, and reads every account back: a count split
// wrong loses or repeats rows.
func TestInsertChunks(t *testing.T) {
	if !slices.IsSortedFunc(chunkRows, func(a, b int) int { return b - a }) || chunkRows[0] != rowsPerInsertMax || chunkRows[len(chunkRows)-1] != 1 {
		t.Fatalf("chunkRows %v: want descending from rowsPerInsertMax (%d) to 1", chunkRows, rowsPerInsertMax)
	}
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx := context.Background()
		db := open(t, place(t, srv, "c"))
		base := int64(0)
		for _, n := range []int{1, 7, 8, 9, 15, 127, 128, 129, 300} {
			tx, err := db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range int64(n) {
				uid := base + i
				if err := tx.InsertAccount(ctx, ledger.Account{UID: uid, BalanceMinor: 1_000}, 1); err != nil {
					t.Fatal(err)
				}
				if err := tx.PostLeg(ctx, 2, fmt.Sprintf("c%d", uid), uid, -uid); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("%d rows: %v", n, err)
			}
			for i := range int64(n) {
				uid := base + i
				if a, err := db.Account(ctx, uid); err != nil || a.BalanceMinor != 1_000-uid {
					t.Fatalf("%d rows: account %d = %+v %v, want balance %d", n, uid, a, err, 1_000-uid)
				}
			}
			if _, err := db.Account(ctx, base+int64(n)); err == nil {
				t.Errorf("%d rows: account %d exists, want none beyond the count", n, base+int64(n))
			}
			base += int64(n)
		}
	})
}
