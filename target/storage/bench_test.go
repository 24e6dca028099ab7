package storage

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

// BenchmarkApplyPayments measures the SQL of one payment as the primary applies it (read the
// key, read its inputs, record, post, append to the history), 100 payments per
// transaction: the storage share of a group-committed payment. It runs on SQLite and then on
// PostgreSQL ($REDLINE_TEST_DSN; skipped without it), which reports its time per payment
// over SQLite's as the metric x-sqlite.
func BenchmarkApplyPayments(b *testing.B) {
	var sqlite time.Duration
	for _, be := range sqldbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			benchApplyPayments(b, be.Server(b))
			perPayment := b.Elapsed() / time.Duration(b.N)
			if be.Name == "sqlite" {
				sqlite = perPayment
			} else if sqlite > 0 {
				b.ReportMetric(float64(perPayment)/float64(sqlite), "x-sqlite")
			}
		})
	}
}

func benchApplyPayments(b *testing.B, srv sqldb.Server) {
	ctx := context.Background()
	db := open(b, place(b, srv, "apply"))
	const accounts = 1_000
	tx, _ := db.Begin(ctx)
	for uid := range int64(accounts) {
		if err := tx.InsertAccount(ctx, ledger.Account{UID: uid, BalanceMinor: 1 << 40}, 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// Keys are unique across the runs of one database (the benchmark function runs with
	// growing b.N on the same schema).
	run := keyRuns.Add(1)
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/payment") }()
	for i := 0; i < b.N; {
		tx, err := db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for end := min(i+100, b.N); i < end; i++ {
			seq := int64(i + 2)
			p := ledger.Payment{Key: fmt.Sprintf("k%d-%d", run, i), FromUID: int64(i % accounts), ToUID: int64((i + 1) % accounts), AmountMinor: 1}
			if _, err := tx.Payment(ctx, p.Key); err == nil {
				b.Fatal("key exists")
			}
			in, err := tx.PayInputs(ctx, p.Key, p.FromUID, p.ToUID)
			if err != nil || in.TCCKnown || !in.FromOK || !in.ToOK {
				b.Fatal(in, err)
			}
			o := ledger.Decide(p, in.FromMinor)
			if err := tx.InsertPayment(ctx, Recorded{Outcome: o, Seq: seq, Epoch: 1}); err != nil {
				b.Fatal(err)
			}
			if err := tx.PostPayment(ctx, seq, p.Key, o.Postings()); err != nil {
				b.Fatal(err)
			}
			if err := tx.Append(ctx, seq, 1, false, "0123456789abcdef0123456789abcdef", []byte(`{"seq":1,"epoch":1,"kind":"pay","payment":{"key":"k1","from_uid":1,"to_uid":2,"amount_minor":1,"status":"committed"}}`)); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

var keyRuns atomic.Int64

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFigures measures the audit's scan of a replica with 100,000 accounts and 200,000
// payments.
func BenchmarkFigures(b *testing.B) {
	ctx := context.Background()
	db := open(b, place(b, sqldb.Server{}, "figures"))
	const accounts, payments = 100_000, 200_000
	fillBooks(b, db, accounts, payments)
	b.ResetTimer()
	for range b.N {
		r, err := db.Figures(ctx)
		if err != nil || r.Books.PaymentsCommitted != payments || r.Books.CommittedNotOnce != 0 {
			b.Fatalf("figures: %+v %v", r.Books, err)
		}
	}
}

// fillBooks opens accounts with 1,000 each and commits payments of 1 between neighbours, with
// their postings and history rows, in one transaction.
func fillBooks(b *testing.B, db *DB, accounts, payments int) {
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for uid := range int64(accounts) {
		if err := tx.InsertAccount(ctx, ledger.Account{UID: uid, BalanceMinor: 1_000}, 1); err != nil {
			b.Fatal(err)
		}
	}
	for i := range payments {
		seq := int64(i + 2)
		p := ledger.Payment{Key: fmt.Sprintf("k%d", i), FromUID: int64(i % accounts), ToUID: int64((i + 1) % accounts), AmountMinor: 1}
		recordPayment(b, tx, ledger.Decide(p, 1_000), seq)
		if err := tx.Append(ctx, seq, 1, false, "c", nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOutboxRead measures the relay's read of the outbox as a primary under load does it:
// a few payments committed, then the rows since the last read. cpu-µs/read is the read alone.
func BenchmarkOutboxRead(b *testing.B) {
	for _, be := range sqldbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) { benchOutboxRead(b, be.Server(b)) })
	}
}

func benchOutboxRead(b *testing.B, srv sqldb.Server) {
	ctx := context.Background()
	db := open(b, place(b, srv, "outbox"))
	const perRead = 5 // 250 payments/s a unit, a read every 20 ms
	var seq int64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		tx, err := db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		after := seq
		for range perRead {
			seq++
			tx.AddOutbox(OutboxRow{Seq: seq, Key: fmt.Sprintf("k%d", seq), FromUID: 1, ToUID: 2, AmountMinor: 1})
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		rows, err := db.Outbox(ctx, after, seq, 1_024)
		cpu += cpuTime() - cpu0
		if err != nil || len(rows) != perRead {
			b.Fatalf("read outbox after %d: %d rows, %v", after, len(rows), err)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/read")
}

// BenchmarkImportSnapshot measures a catch-up's install: the snapshot of a replica with 10,000
// payments (accounts, payments, postings, history) imported in place of a replica's books.
// µs/row is the time per snapshot row.
func BenchmarkImportSnapshot(b *testing.B) {
	for _, be := range sqldbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) { benchImportSnapshot(b, be.Server(b)) })
	}
}

func benchImportSnapshot(b *testing.B, srv sqldb.Server) {
	ctx := context.Background()
	src, dst := open(b, place(b, srv, "snapsrc")), open(b, place(b, srv, "snapdst"))
	fillBooks(b, src, 100, 10_000)
	var snap bytes.Buffer
	if _, err := src.ExportSnapshot(ctx, &snap, "bench", 1); err != nil {
		b.Fatal(err)
	}
	rows := bytes.Count(snap.Bytes(), []byte("\n")) - 2 // less the header and the trailer
	b.ResetTimer()
	for range b.N {
		tx, err := dst.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := tx.ImportSnapshot(ctx, bytes.NewReader(snap.Bytes())); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*rows), "µs/row")
}

// BenchmarkCatchUpBase compares, on the same books (10,000 payments), the two ways a replica
// holding a tail of 8 entries the primary never had gets back to a prefix of the primary's
// history: rewinding the tail (Tx.Rewind), or taking the primary's snapshot (its export and
// the replica's import, the work of both sides less the network). One op does both; the tail
// is written again, untimed, before each rewind. snapshot/rewind is the ratio of their times.
//
//	go test -run '^$' -bench CatchUpBase ./target/storage/
func BenchmarkCatchUpBase(b *testing.B) {
	for _, be := range sqldbtest.Backends() {
		b.Run(be.Name, func(b *testing.B) { benchCatchUpBase(b, be.Server(b)) })
	}
}

func benchCatchUpBase(b *testing.B, srv sqldb.Server) {
	ctx := context.Background()
	const payments, tail = 10_000, 8
	primary, back := open(b, place(b, srv, "primary")), open(b, place(b, srv, "back"))
	fillBooks(b, primary, 100, payments)
	fillBooks(b, back, 100, payments)
	base := int64(payments + 1) // fillBooks opens the accounts at 1, payment i at i+2
	var rewound, snapshot time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tx, err := back.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for seq := base + 1; seq <= base+tail; seq++ {
			p := ledger.Payment{Key: fmt.Sprintf("tail%d", seq), FromUID: 1, ToUID: 2, AmountMinor: 1}
			recordPayment(b, tx, ledger.Decide(p, 1_000), seq)
			if err := tx.Append(ctx, seq, 1, false, "tail", nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		tx, err = back.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Rewind(ctx, base); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		rewound += time.Since(start)

		start = time.Now()
		var snap bytes.Buffer
		if _, err := primary.ExportSnapshot(ctx, &snap, "bench", 1); err != nil {
			b.Fatal(err)
		}
		tx, err = back.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := tx.ImportSnapshot(ctx, &snap); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		snapshot += time.Since(start)
	}
	b.ReportMetric(float64(rewound.Microseconds())/1e3/float64(b.N), "rewind-ms")
	b.ReportMetric(float64(snapshot.Microseconds())/1e3/float64(b.N), "snapshot-ms")
	b.ReportMetric(float64(snapshot)/float64(rewound), "snapshot/rewind")
}
