package unit_test

import (
	"context"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// TestSeed100k opens 100,000 accounts in bulk calls of the largest size, replicated, and
// reports how long it took (the issue asks for seconds).
func TestSeed100k(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("seeding 100k accounts: a timing test, meaningless under -race")
	}
	p := unittest.StartPair(t, unittest.Options{})
	start := time.Now()
	for base := int64(0); base < 100_000; base += ledger.AccountsPerBulkMax {
		accounts := make([]ledger.Account, ledger.AccountsPerBulkMax)
		for i := range accounts {
			accounts[i] = ledger.Account{UID: base + int64(i), BalanceMinor: 10_000}
		}
		if _, err := p.Client.Open(context.Background(), p.Primary().Addr(), p.Epoch(), accounts); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("100,000 accounts opened and replicated in %v", time.Since(start))
	if _, a, err := p.Client.Account(context.Background(), p.Other(p.Primary()).Addr(), 99_999); err != nil || a.BalanceMinor != 10_000 {
		t.Fatalf("last account on the standby: %+v %v", a, err)
	}
}
