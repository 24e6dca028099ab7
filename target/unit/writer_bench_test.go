package unit

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
)

// BenchmarkWriter measures the CPU of the writer path alone, without HTTP: a primary deciding
// and committing a group of payments (commit), and a standby applying the same group as one
// replicated batch (applyReplicated), per payment; "primary" runs the primary alone, so that
// a whole-process measure (an instruction count) can tell the two apart. Batches of 3
// payments are what a unit sees at the end-to-end bench's rate (README: 2.9 payments per
// group commit); 100 shows the per-row costs.
//
//	go test -run '^$' -bench Writer -benchmem ./target/unit/
func BenchmarkWriter(b *testing.B) {
	for _, size := range []int{3, 100} {
		for _, pair := range []bool{true, false} {
			name := fmt.Sprintf("batch-%d/pair", size)
			if !pair {
				name = fmt.Sprintf("batch-%d/primary", size)
			}
			b.Run(name, func(b *testing.B) { benchWriter(b, size, pair) })
		}
	}
}

func benchWriter(b *testing.B, size int, pair bool) {
	primary := benchServer(b, ledger.RolePrimary)
	standby := benchServer(b, ledger.RoleStandby)
	<-primary.ship // the empty batch a primary starts with, to sync its standby
	const accounts = 1_000
	open := make([]ledger.Account, accounts)
	for i := range open {
		open[i] = ledger.Account{UID: int64(i), BalanceMinor: 1 << 40}
	}
	benchShip(b, primary, standby, []*op{{kind: opOpen, accounts: open}}, true)
	var primaryCPU, standbyCPU int64
	b.ResetTimer()
	for i := 0; i < b.N; {
		ops := make([]*op, 0, size)
		for end := min(i+size, b.N); i < end; i++ {
			from := int64(i % accounts)
			ops = append(ops, &op{kind: opPay, pay: ledger.Payment{Key: fmt.Sprintf("k%d", i), FromUID: from, ToUID: (from*7 + 1) % accounts, AmountMinor: 1}})
			if ops[len(ops)-1].pay.ToUID == from {
				ops[len(ops)-1].pay.ToUID = (from + 1) % accounts
			}
		}
		p, s := benchShip(b, primary, standby, ops, pair)
		primaryCPU += int64(p)
		standbyCPU += int64(s)
	}
	b.StopTimer()
	b.ReportMetric(float64(primaryCPU)/1e3/float64(b.N), "primary-cpu-µs/payment")
	if pair {
		b.ReportMetric(float64(standbyCPU)/1e3/float64(b.N), "standby-cpu-µs/payment")
	}
}

// benchShip commits ops on primary and, with pair, applies the batch on standby, and returns
// the CPU time of each (the process's, so run it alone).
func benchShip(b *testing.B, primary, standby *server, ops []*op, pair bool) (primaryCPU, standbyCPU int64) {
	ctx := context.Background()
	for _, o := range ops {
		o.done = make(chan result, 1)
	}
	cpu0 := cpuTime()
	primary.commit(ctx, ops)
	cpu1 := cpuTime()
	for _, o := range ops {
		if r := <-o.done; r.err != nil {
			b.Fatal(r.err)
		}
	}
	bt := <-primary.ship
	primary.replicated.to(bt.lastSeq)
	if !pair {
		return int64(cpu1 - cpu0), 0
	}
	req := &replicateRequest{Epoch: bt.epoch, FromSeq: bt.fromSeq, PrevChain: bt.prevChain, Entries: bt.bodies}
	cpu2 := cpuTime()
	r := standby.applyReplicated(ctx, req)
	cpu3 := cpuTime()
	if r.err != nil {
		b.Fatal(r.err)
	}
	return int64(cpu1 - cpu0), int64(cpu3 - cpu2)
}

func benchServer(b *testing.B, role string) *server {
	s, err := newServer(context.Background(), Config{Unit: "u", Replica: role, DataDir: b.TempDir(), Listen: "127.0.0.1:0", Role: role, Epoch: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.db.Close() })
	return s
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
