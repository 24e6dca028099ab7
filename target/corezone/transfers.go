package corezone

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/redline-dev/redline/target/ledger"
)

// The core zone coordinates cross-unit payments (try / confirm / cancel, tcc.go). Its decisions
// live in the replicated state beside the routing table, kept apart from State because they are
// many and State is copied whole on every routing read.

// The states of a transfer in the core zone.
const (
	TransferTrying    = "trying"
	TransferConfirmed = ledger.LegConfirmed
	TransferCancelled = ledger.LegCancelled
)

// Reasons of a cancelled transfer (beside the participants' refusals: insufficient_funds,
// unknown_account, and ReasonConflict).
const (
	// ReasonConflict: a participant holds another payment under the key (a same-unit payment, or
	// another transfer's leg); also the code of the participant's 409 for the latter.
	ReasonConflict    = "idempotency_conflict"
	ReasonAborted     = "aborted"                 // a participant had cancelled its leg already
	ReasonUnavailable = "participant_unavailable" // a try got no answer for tryGiveUp
	ReasonUnknown     = "unknown_to_core"         // a participant asked about a transfer never begun: presumed abort
)

// Limits of the transfer registry.
const (
	// finishedKeptMax bounds the finished transfers remembered (oldest forgotten first). A key
	// retried after it was forgotten is begun again: the participants answer its legs' states,
	// so the outcome stays the same, but the audit then counts its decision twice.
	finishedKeptMax = 200_000
	// snapshotBytesMax bounds a snapshot read back (the routing state and the transfers).
	snapshotBytesMax = 256 << 20
	headerValueMax   = 1 << 10
)

// Errors of the transfer commands.
var (
	ErrTransferConflict = errors.New("idempotency key reused with different fields")
	ErrUnknownTransfer  = errors.New("unknown transfer")
	ErrSameUnit         = errors.New("both accounts are in one unit")
)

// carriedHeaders are the client's headers a transfer carries to its participants' steps (stress
// marking and tracing), kept with the transfer so recovery sends them too.
var carriedHeaders = []string{"X-Redline-Run", "Baggage", "Traceparent", "Tracestate"}

// Transfer is a cross-unit payment as the core zone coordinates it.
type Transfer struct {
	Key         string            `json:"key"`
	FromUID     int64             `json:"from_uid"`
	ToUID       int64             `json:"to_uid"`
	AmountMinor int64             `json:"amount_minor"`
	FromUnit    string            `json:"from_unit"`
	ToUnit      string            `json:"to_unit"`
	State       string            `json:"state"` // trying, confirmed, cancelled
	Reason      string            `json:"reason,omitempty"`
	Done        bool              `json:"done"` // both participants applied the decision
	Index       uint64            `json:"index"`
	Headers     map[string]string `json:"headers,omitempty"`
}

// Decided says whether the transfer's fate is settled.
func (t Transfer) Decided() bool { return t.State != TransferTrying }

func (t Transfer) payment() ledger.Payment {
	return ledger.Payment{Key: t.Key, FromUID: t.FromUID, ToUID: t.ToUID, AmountMinor: t.AmountMinor}
}

// sameRequest says whether o is a retry of t: the same payment on the same plane (a key of
// the other plane is another payment, refused as a conflict, never answered across planes).
func (t Transfer) sameRequest(o Transfer) bool {
	return t.payment() == o.payment() && t.plane() == o.plane()
}

// check validates a transfer to begin against the routing table.
func (t *Transfer) check(s State) error {
	if err := t.payment().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	from, ok1 := s.UnitOf(t.FromUID)
	to, ok2 := s.UnitOf(t.ToUID)
	if !ok1 || !ok2 {
		return ErrNotInitialized
	}
	if from == to {
		return fmt.Errorf("%w: %d and %d in %s", ErrSameUnit, t.FromUID, t.ToUID, from)
	}
	t.FromUnit, t.ToUnit = from, to
	for k, v := range t.Headers {
		if !slices.Contains(carriedHeaders, k) || len(v) > headerValueMax {
			return fmt.Errorf("%w: header %s", ErrBadCommand, k)
		}
	}
	return nil
}

// transfers is the registry of the state machine, guarded by fsm.mu.
type transfers struct {
	byKey    map[string]*Transfer
	open     map[string]struct{} // not done
	finished []string            // done, in the order they finished
	stats    ledger.CoreTransfers
	// shadowStats are the figures of stress traffic's transfers, apart (plane.go).
	shadowStats ledger.CoreTransfers
}

func (r *transfers) init() {
	if r.byKey == nil {
		r.byKey, r.open = map[string]*Transfer{}, map[string]struct{}{}
	}
}

// isTransferOp says whether op is a transfer command.
func isTransferOp(op Op) bool {
	return op == OpTransferBegin || op == OpTransferDecide || op == OpTransferDone
}

// apply applies a transfer command at raft index; deterministic like State.apply.
func (r *transfers) apply(c Command, index uint64, s State) (Transfer, error) {
	r.init()
	switch c.Op {
	case OpTransferBegin:
		return r.begin(c, index, s)
	case OpTransferDecide:
		return r.decide(c, index, s)
	default: // OpTransferDone
		for _, k := range c.Keys {
			t, ok := r.byKey[k]
			if !ok || !t.Decided() || t.Done {
				continue
			}
			t.Done = true
			delete(r.open, k)
			r.finished = append(r.finished, k)
		}
		r.prune()
		return Transfer{}, nil
	}
}

func (r *transfers) begin(c Command, index uint64, s State) (Transfer, error) {
	if c.Transfer == nil {
		return Transfer{}, fmt.Errorf("%w: begin without a transfer", ErrBadCommand)
	}
	t := *c.Transfer
	if have, ok := r.byKey[t.Key]; ok {
		if !have.sameRequest(t) {
			return *have, fmt.Errorf("transfer %q: %w", t.Key, ErrTransferConflict)
		}
		return *have, nil
	}
	if err := t.check(s); err != nil {
		return Transfer{}, err
	}
	t.State, t.Reason, t.Done, t.Index = TransferTrying, "", false, index
	t.Headers = maps.Clone(t.Headers)
	r.byKey[t.Key], r.open[t.Key] = &t, struct{}{}
	r.statsOf(&t).Begun++
	return t, nil
}

// decide records a decision: the first one committed for a key wins, every later one answers
// it. A decision that carries its transfer records it when the key is unknown: the
// coordinator's (it tried both legs first, nothing in the log before), or a participant's
// question about a transfer nobody decided (a presumed abort, reason unknown_to_core).
func (r *transfers) decide(c Command, index uint64, s State) (Transfer, error) {
	if c.Decision != TransferConfirmed && c.Decision != TransferCancelled {
		return Transfer{}, fmt.Errorf("%w: decision %q", ErrBadCommand, c.Decision)
	}
	presumed := c.presumedAbort()
	t, ok := r.byKey[c.Key]
	switch {
	case !ok && c.Transfer == nil:
		return Transfer{}, fmt.Errorf("decide %q: %w", c.Key, ErrUnknownTransfer)
	case c.Transfer != nil && c.Transfer.Key != c.Key:
		return Transfer{}, fmt.Errorf("%w: decision on %q carries transfer %q", ErrBadCommand, c.Key, c.Transfer.Key)
	case ok && c.Transfer != nil && !presumed && !t.sameRequest(*c.Transfer):
		return *t, fmt.Errorf("transfer %q: %w", c.Key, ErrTransferConflict)
	case ok && (t.Decided() || presumed):
		return *t, nil // decided already; or a presumed abort of a transfer begun after all
	case !ok:
		n := *c.Transfer
		if err := n.check(s); err != nil {
			return Transfer{}, err
		}
		n.State, n.Reason, n.Done, n.Index = TransferTrying, "", false, index
		n.Headers = maps.Clone(n.Headers)
		t = &n
		r.byKey[n.Key], r.open[n.Key] = t, struct{}{}
		if !presumed {
			r.statsOf(t).Begun++
		}
	}
	t.State, t.Reason = c.Decision, c.Reason
	if t.State == TransferConfirmed {
		t.Reason = ""
		r.statsOf(t).Confirmed.AddLeg(t.Key, t.AmountMinor)
	} else {
		r.statsOf(t).Cancelled.AddLeg(t.Key, t.AmountMinor)
	}
	return *t, nil
}

// presumedAbort says whether c is a participant's question answered by a presumed abort.
func (c Command) presumedAbort() bool {
	return c.Op == OpTransferDecide && c.Transfer != nil && c.Decision == TransferCancelled && c.Reason == ReasonUnknown
}

// prune forgets the oldest finished transfers beyond finishedKeptMax, a quarter of it at a
// time (so the copy it makes is amortized over many done marks).
func (r *transfers) prune() {
	if len(r.finished) <= finishedKeptMax+finishedKeptMax/4 {
		return
	}
	n := len(r.finished) - finishedKeptMax
	for _, k := range r.finished[:n] {
		delete(r.byKey, k)
	}
	r.finished = slices.Clone(r.finished[n:])
}

// figures are the registry's counts and digests for the audit.

// transfersSnapshot is the registry in a snapshot: open transfers by index, then finished ones
// in the order they finished.
type transfersSnapshot struct {
	Transfers []Transfer           `json:"transfers,omitempty"`
	Stats     ledger.CoreTransfers `json:"transfer_stats"`
	// ShadowStats are the shadow plane's (plane.go).
	ShadowStats ledger.CoreTransfers `json:"shadow_transfer_stats"`
}

func (r *transfers) export() transfersSnapshot {
	out := transfersSnapshot{Stats: r.stats, ShadowStats: r.shadowStats, Transfers: make([]Transfer, 0, len(r.open)+len(r.finished))}
	for k := range r.open {
		out.Transfers = append(out.Transfers, *r.byKey[k])
	}
	slices.SortFunc(out.Transfers, func(a, b Transfer) int { return cmp.Compare(a.Index, b.Index) })
	for _, k := range r.finished {
		out.Transfers = append(out.Transfers, *r.byKey[k])
	}
	return out
}

func restoreTransfers(s transfersSnapshot) transfers {
	var r transfers
	r.init()
	r.stats, r.shadowStats = s.Stats, s.ShadowStats
	for i := range s.Transfers {
		t := s.Transfers[i]
		r.byKey[t.Key] = &t
		if t.Done {
			r.finished = append(r.finished, t.Key)
		} else {
			r.open[t.Key] = struct{}{}
		}
	}
	return r
}

// outcome is how the business API answers a transfer: the status code and the body (an
// outcome, as a same-unit payment's, or an error).
func (t Transfer) outcome() (int, any) {
	switch {
	case t.State == TransferConfirmed:
		return http.StatusOK, ledger.Outcome{Payment: t.payment(), Status: ledger.StatusCommitted}
	case t.State == TransferTrying:
		return http.StatusServiceUnavailable, errorOf("transfer_pending", "the transfer is not decided yet: retry with the same key")
	case t.Reason == "unknown_account":
		return http.StatusNotFound, errorOf("unknown_account", "an account of the transfer does not exist")
	case t.Reason == ReasonConflict:
		return http.StatusConflict, errorOf("idempotency_conflict", "a participant holds another payment under the key")
	default:
		return http.StatusOK, ledger.Outcome{Payment: t.payment(), Status: ledger.StatusFailed, Reason: ledger.Reason(t.Reason)}
	}
}

func errorOf(code, msg string) errorBody {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	return b
}
