package storage

import (
	"context"
	"testing"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
)

// TestOpenedMinor: the money opened in a database, committed and pending, read exactly at the
// unit's limit (2^57), where a sum of float would have rounded.
func TestOpenedMinor(t *testing.T) {
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx := context.Background()
		db := open(t, place(t, srv, "opened"))
		const perUnit = ledger.OpenedMinorPerUnitMax / ledger.AmountMinorMax
		tx := begin(t, db)
		if got, err := tx.OpenedMinor(ctx); err != nil || got != 0 {
			t.Fatalf("empty: OpenedMinor = %d %v, want 0", got, err)
		}
		for uid := range perUnit - 1 {
			if err := tx.InsertAccount(ctx, ledger.Account{UID: uid, BalanceMinor: ledger.AmountMinorMax}, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tx = begin(t, db)
		if err := tx.InsertAccount(ctx, ledger.Account{UID: perUnit, BalanceMinor: ledger.AmountMinorMax - 1}, 2); err != nil {
			t.Fatal(err)
		}
		got, err := tx.OpenedMinor(ctx)
		if want := ledger.OpenedMinorPerUnitMax - 1; err != nil || got != want {
			t.Fatalf("OpenedMinor = %d %v, want %d (committed and pending)", got, err, want)
		}
		if err := ledger.OpeningsWithin(got, []ledger.Account{{UID: perUnit + 1, BalanceMinor: 1}}); err != nil {
			t.Errorf("an opening up to the limit: %v", err)
		}
		if err := ledger.OpeningsWithin(got, []ledger.Account{{UID: perUnit + 1, BalanceMinor: 2}}); err == nil {
			t.Error("an opening beyond the limit accepted")
		}
	})
}
