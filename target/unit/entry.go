package unit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// The kinds of replicated entries.
const (
	kindOpen = "open"
	kindPay  = "pay"
	kindTCC  = "tcc" // a step of a cross-unit transfer
)

// entry is one change of the books, decided by a primary and applied the same way on every
// replica. Its JSON bytes, encoded once by the primary, are what is shipped, stored and hashed.
type entry struct {
	Seq      int64            `json:"seq"`
	Epoch    int64            `json:"epoch"`           // the epoch the write was issued under
	Stale    bool             `json:"stale,omitempty"` // accepted under a stale epoch (no-fencing)
	Run      string           `json:"run,omitempty"`   // the stress run of a marked write (plane.go)
	Kind     string           `json:"kind"`
	Accounts []ledger.Account `json:"accounts,omitempty"`
	Payment  *ledger.Outcome  `json:"payment,omitempty"`
	TCC      *tccStep         `json:"tcc,omitempty"`
}

// chainNext extends the history's hash chain by one entry body.
func chainNext(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// apply applies e (whose encoding is body) to the books and appends it to the history. It is
// the one code path of both the primary and the standby, so they cannot apply differently.
func apply(ctx context.Context, tx *storage.Tx, e *entry, body []byte, stale bool, chain string) error {
	switch e.Kind {
	case kindOpen:
		for _, a := range e.Accounts {
			if err := tx.InsertAccount(ctx, a, e.Seq); err != nil {
				return err
			}
		}
	case kindPay:
		if e.Payment == nil {
			return fmt.Errorf("apply entry %d: pay entry without payment: %w", e.Seq, ErrDiverged)
		}
		rec := storage.Recorded{Outcome: *e.Payment, Seq: e.Seq, Epoch: e.Epoch}
		if err := tx.InsertPayment(ctx, rec); err != nil {
			return err
		}
		if legs := e.Payment.Postings(); legs != nil {
			if err := tx.PostPayment(ctx, e.Seq, e.Payment.Key, legs); err != nil {
				return err
			}
			p := e.Payment
			tx.AddOutbox(storage.OutboxRow{Seq: e.Seq, Key: p.Key, FromUID: p.FromUID, ToUID: p.ToUID, AmountMinor: p.AmountMinor})
		}
	case kindTCC:
		if err := applyTCC(ctx, tx, e); err != nil {
			return err
		}
	default:
		return fmt.Errorf("apply entry %d of kind %q: %w", e.Seq, e.Kind, ErrDiverged)
	}
	return tx.Append(ctx, e.Seq, e.Epoch, stale, chain, body)
}

func decodeEntry(body []byte) (*entry, error) {
	var e entry
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("decode entry: %w", err)
	}
	return &e, nil
}
