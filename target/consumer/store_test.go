package consumer

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

// TestApplyBatches: a batch applies each new event once, in one transaction, whatever it holds
// twice (within the batch or from an earlier one); the books equal those of applying every
// distinct event on its own, and a batch larger than one inbox statement is applied whole.
func TestApplyBatches(t *testing.T) {
	ev := func(i int, from, to int64) delivered {
		return delivered{e: events.Event{ID: events.ID("a", int64(i)), Unit: "a", Seq: int64(i), Key: fmt.Sprintf("k%d", i),
			FromUID: from, ToUID: to, AmountMinor: int64(10 * i)}, streamSeq: uint64(i)}
	}
	var big []delivered
	for i := 1; i <= inboxRowsMax+3; i++ {
		big = append(big, ev(i, int64(i%7), int64(i%5)))
	}
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			for _, group := range events.Groups() {
				t.Run(group, func(t *testing.T) {
					srv := be.Server(t)
					st, err := openStore(context.Background(), srv.Place(t.TempDir(), FileName, "consumer", group))
					if err != nil {
						t.Fatal(err)
					}
					defer st.close()
					batches := [][]delivered{
						{ev(1, 1, 2), ev(2, 2, 3), ev(1, 1, 2), ev(3, 4, 4)}, // a copy within the batch, a self-payment
						{ev(2, 2, 3), ev(4, 3, 1)},                           // a redelivery and a new one
						big,                                                  // more rows than one statement
					}
					want := map[string]int64{}
					applied := map[string]bool{}
					for i, b := range batches {
						wantFresh := 0
						for _, d := range b {
							if !applied[d.e.ID] {
								applied[d.e.ID] = true
								wantFresh++
								addEffects(want, group, d.e)
							}
						}
						got, err := st.apply(context.Background(), group, b)
						if err != nil {
							t.Fatalf("batch %d: %v", i, err)
						}
						if got != wantFresh {
							t.Errorf("batch %d: %d new events, want %d", i, got, wantFresh)
						}
					}
					if diff := cmp.Diff(want, readEffects(t, st)); diff != "" {
						t.Errorf("effects (-want +got):\n%s", diff)
					}
					n, err := st.applied(context.Background())
					if err != nil || n != int64(len(applied)) {
						t.Errorf("applied = %d, %v; want %d", n, err, len(applied))
					}
				})
			}
		})
	}
}

func readEffects(t *testing.T, st *store) map[string]int64 {
	t.Helper()
	rows, err := st.db.QueryContext(context.Background(), `SELECT name, num FROM effects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var num int64
		if err := rows.Scan(&name, &num); err != nil {
			t.Fatal(err)
		}
		out[name] = num
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkApply is a consumer's database work per event, by batch size (a fetch returns up to
// fetchMax; at low rates a batch is what arrived within fetchWait).
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{16, fetchMax} {
		for _, group := range []string{"ledger", "notification"} {
			b.Run(fmt.Sprintf("%s/batch=%d", group, size), func(b *testing.B) {
				st, err := openStore(context.Background(), sqldb.Place{Dir: b.TempDir(), File: FileName})
				if err != nil {
					b.Fatal(err)
				}
				defer st.close()
				batch := make([]delivered, size)
				seq := 0
				cpu0 := cpuTime()
				for b.Loop() {
					for i := range batch {
						seq++
						batch[i] = delivered{e: events.Event{ID: events.ID("a", int64(seq)), Unit: "a", Seq: int64(seq),
							Key: fmt.Sprintf("k%d", seq), FromUID: int64(seq % 10_000), ToUID: int64(seq % 9_999), AmountMinor: 7}, streamSeq: uint64(seq)}
					}
					if _, err := st.apply(context.Background(), group, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(seq)/1e3, "cpu-µs/event")
			})
		}
	}
}

// cpuTime is the process's CPU time: on a shared machine it tells more than the time elapsed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
