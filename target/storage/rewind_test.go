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
const rewindBase, rewindHead = 6, 14

// The transfer legs of writeEntries: the payer's account 10 pays 25 to an account of another
// unit.
const (
	legFrom, legTo, legAmount = 10, 7_000, 25
	legTriedMS                = 42
)

// writeEntries writes the entries from..to of one history, each as the unit's writer applies
// it (target/unit applyTCC for the legs): accounts opened at 1 and 9; payments, one failed for
// want of funds (5), one to an account opened after the base (14); and transfer legs, every
// way a leg can be written: a payer's leg tried before the base and confirmed after it (3, 7),
// another tried before and cancelled after (4, 8), one tried and confirmed after (10, 11), a
// payee's credit confirmed (12) and a cancel with no try (13).
func writeEntries(t *testing.T, db *DB, from, to int64) {
	t.Helper()
	ctx := context.Background()
	tx := begin(t, db)
	leg := func(key, side, state string, seq int64) TCCRow {
		return TCCRow{Key: key, Leg: side, FromUID: legFrom, ToUID: legTo, AmountMinor: legAmount,
			State: state, TriedMS: legTriedMS, Seq: seq, Epoch: 1}
	}
	check := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for seq := from; seq <= to; seq++ {
		switch seq {
		case 1, 9:
			for uid := range int64(3) {
				check(tx.InsertAccount(ctx, ledger.Account{UID: seq*10 + uid, BalanceMinor: 1_000}, seq))
			}
		case 3, 4, 10: // a try: the reservation
			key := fmt.Sprintf("x%d", seq)
			check(tx.PostLeg(ctx, seq, key, legFrom, -legAmount))
			check(tx.PutTCC(ctx, leg(key, ledger.LegDebit, ledger.LegTried, seq)))
		case 7, 11: // a confirm: the payer's event
			key := map[int64]string{7: "x3", 11: "x10"}[seq]
			tx.AddOutbox(OutboxRow{Seq: seq, Key: key, FromUID: legFrom, ToUID: legTo, AmountMinor: legAmount})
			check(tx.PutTCC(ctx, leg(key, ledger.LegDebit, ledger.LegConfirmed, seq)))
		case 8: // a cancel: the release
			check(tx.PostLeg(ctx, seq, "x4", legFrom, legAmount))
			r := leg("x4", ledger.LegDebit, ledger.LegCancelled, seq)
			r.Reason = "timeout"
			check(tx.PutTCC(ctx, r))
		case 12: // the payee's credit
			r := leg("y12", ledger.LegCredit, ledger.LegConfirmed, seq)
			r.FromUID, r.ToUID = 7_000, 11
			check(tx.PostLeg(ctx, seq, r.Key, r.ToUID, legAmount))
			check(tx.PutTCC(ctx, r))
		case 13: // a cancel before any try
			r := leg("z13", ledger.LegDebit, ledger.LegCancelled, seq)
			r.Empty, r.Reason = true, "timeout"
			check(tx.PutTCC(ctx, r))
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
		check(tx.Append(ctx, seq, 1, false, fmt.Sprintf("c%d", seq), []byte("{}")))
	}
	check(tx.Commit())
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
// never went past it, then writes on from there on both and compares again; and checks that
// every refusal changes nothing.
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
