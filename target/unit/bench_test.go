package unit_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// BenchmarkPayments measures durable, synchronously replicated payments per second through one
// primary+standby pair, with group commit and without it (one payment per transaction on each
// side), from benchWorkers concurrent clients over loopback HTTP.
//
//	go test -run '^$' -bench Payments -benchtime 20000x ./target/unit/
func BenchmarkPayments(b *testing.B) {
	for _, bc := range []struct {
		name     string
		batchMax int
	}{{"group-commit", 0}, {"unbatched", 1}} {
		b.Run(bc.name, func(b *testing.B) { benchPayments(b, bc.batchMax) })
	}
}

const (
	benchWorkers  = 64
	benchAccounts = 1_000
)

func benchPayments(b *testing.B, batchMax int) {
	p := unittest.StartPair(b, unittest.Options{BatchMax: batchMax, NoLink: true})
	accounts := make([]ledger.Account, benchAccounts)
	for i := range accounts {
		accounts[i] = ledger.Account{UID: int64(i), BalanceMinor: 1 << 40}
	}
	addr := p.Primary().Addr()
	if _, err := p.Client.Open(context.Background(), addr, p.Epoch(), accounts); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, benchWorkers)
	var failed atomic.Int64
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Add(1)
		go func() { // ends when b.N payments were sent
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				pay := ledger.Payment{Key: fmt.Sprintf("b-%d", i), FromUID: i % benchAccounts, ToUID: (i*7 + 1) % benchAccounts, AmountMinor: 1}
				if pay.FromUID == pay.ToUID {
					pay.ToUID = (pay.ToUID + 1) % benchAccounts
				}
				t0 := time.Now()
				status, _, err := p.Client.Pay(context.Background(), addr, 0, pay)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || status != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d payments failed", n)
	}
	if testing.Verbose() {
		_, raw, _ := p.Client.Do(context.Background(), http.MethodGet, "http://"+addr+"/metrics", nil, nil, 0)
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(l, "paycell_group_commit_ops_sum") || strings.HasPrefix(l, "paycell_group_commit_ops_count") || strings.HasPrefix(l, "paycell_replicate_seconds_sum") || strings.HasPrefix(l, "paycell_replicate_seconds_count") {
				b.Log(l)
			}
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "payments/s")
	// CPU per payment (primary, standby and the clients, all in this process) holds still when
	// the machine is shared, unlike the rate.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/payment")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
