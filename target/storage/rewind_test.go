package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
)

// rewindBase is where TestRewind takes the books back to; rewindHead is the head before.
const rewindBase, rewindHead = 6, 12

// writeEntries writes the entries from..to of one history, each as the writer does: accounts
// opened at 1 and 9, payments (one failed for want of funds, at 5), a transfer's payer leg
// tried at 4 (its reservation posted) and another at 10, outbox events and history rows.
func writeEntries(t *testing.T, db *DB, from, to int64) {
	t.Helper()
	ctx := context.Background()
	tx := begin(t, db)
	for seq := from; seq <= to; seq++ {
		switch seq {
		case 1, 9:
			for uid := range int64(3) {
				a := ledger.Account{UID: seq*10 + uid, BalanceMinor: 1_000}
				if err := tx.InsertAccount(ctx, a, seq); err != nil {
					t.Fatal(err)
				}
			}
		case 4, 10:
			key := fmt.Sprintf("x%d", seq)
			r := TCCRow{Key: key, Leg: ledger.LegDebit, FromUID: 10, ToUID: 7_000, AmountMinor: 25, State: ledger.LegTried, Seq: seq, Epoch: 1}
			if err := tx.PutTCC(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := tx.PostLeg(ctx, seq, key, 10, -25); err != nil {
				t.Fatal(err)
			}
		default:
			from, to := 10+seq%3, 10+(seq+1)%3
			if seq > 9 {
				to = 90 + seq%3 // an account opened after the base
			}
			p := ledger.Payment{Key: fmt.Sprintf("k%d", seq), FromUID: from, ToUID: to, AmountMinor: seq}
			o := ledger.Decide(p, 1_000)
			if seq == 5 {
				o = ledger.Outcome{Payment: p, Status: ledger.StatusFailed, Reason: ledger.ReasonInsufficientFunds}
			}
			if recordPayment(t, tx, o, seq) {
				tx.AddOutbox(OutboxRow{Seq: seq, Key: p.Key, FromUID: from, ToUID: to, AmountMinor: seq})
			}
		}
		if err := tx.Append(ctx, seq, 1, false, fmt.Sprintf("c%d", seq), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// books is everything a replica's books hold, as a snapshot and its outbox show them.
func books(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	if _, err := db.ExportSnapshot(ctx, &buf, "a", 1); err != nil {
		t.Fatal(err)
	}
	events, err := db.Outbox(ctx, 0, 1<<40, 100)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s\noutbox %+v", buf.String(), events)
}

// rewind runs Rewind to base in a transaction of its own: committed when it succeeds, else
// rolled back.
func rewind(t *testing.T, db *DB, base int64) (string, error) {
	t.Helper()
	tx := begin(t, db)
	chain, err := tx.Rewind(context.Background(), base)
	if err != nil {
		tx.Rollback()
		return "", err
	}
	return chain, tx.Commit()
}

// TestRewind takes books back to an earlier seq and compares them, row by row, with books that
// never went past it; and checks that every refusal changes nothing.
func TestRewind(t *testing.T) {
	onBackends(t, func(t *testing.T, srv sqldb.Server) {
		ctx := context.Background()
		got, want := open(t, place(t, srv, "rewound")), open(t, place(t, srv, "prefix"))
		writeEntries(t, got, 1, rewindHead)
		writeEntries(t, want, 1, rewindBase)
		chain, err := rewind(t, got, rewindBase)
		if err != nil || chain != fmt.Sprintf("c%d", rewindBase) {
			t.Fatalf("rewind = %q, %v; want the chain at %d", chain, err, rewindBase)
		}
		if diff := cmp.Diff(books(t, want), books(t, got)); diff != "" {
			t.Errorf("books after the rewind (-never past the base +rewound):\n%s", diff)
		}
		// The rewound books go on as the prefix's do.
		writeEntries(t, got, rewindBase+1, rewindHead)
		writeEntries(t, want, rewindBase+1, rewindHead)
		if diff := cmp.Diff(books(t, want), books(t, got)); diff != "" {
			t.Errorf("books written on after the rewind (-prefix +rewound):\n%s", diff)
		}

		refusals := []struct {
			name  string
			base  int64
			setup func(tx *Tx) error
		}{
			{"base not in the history", rewindHead + 5, nil},
			{"an acknowledged entry after the base", rewindBase, func(tx *Tx) error {
				return tx.SetMeta(ctx, MetaAckedSeq, rewindBase+1, "")
			}},
			{"a leg confirmed after the base", 3, func(tx *Tx) error {
				return tx.PutTCC(ctx, TCCRow{Key: "x4", Leg: ledger.LegDebit, FromUID: 10, ToUID: 7_000, AmountMinor: 25,
					State: ledger.LegConfirmed, Seq: rewindHead + 1, Epoch: 1})
			}},
		}
		for _, r := range refusals {
			db := open(t, place(t, srv, "refused"))
			writeEntries(t, db, 1, rewindHead)
			if r.setup != nil {
				tx := begin(t, db)
				if err := r.setup(tx); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			before := books(t, db)
			if _, err := rewind(t, db, r.base); !errors.Is(err, ErrNoRewind) {
				t.Errorf("%s: rewind to %d: %v, want ErrNoRewind", r.name, r.base, err)
			}
			if diff := cmp.Diff(before, books(t, db)); diff != "" {
				t.Errorf("%s: a refused rewind changed the books:\n%s", r.name, diff)
			}
		}
	})
}
