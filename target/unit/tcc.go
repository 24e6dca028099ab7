package unit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// A unit is a participant of cross-unit transfers, which the core zone coordinates (try /
// confirm / cancel, PROTOCOL.md). The payer's unit holds the debit leg: try reserves the funds
// (the balance carries the debit at once, so they cannot be spent twice), confirm keeps it and
// emits the payment's event, cancel releases it. The payee's unit holds the credit leg: try
// checks the payee's account and records nothing (a pending credit would hold nothing), confirm
// applies the credit, cancel records the leg cancelled. Every step that records is an entry of
// the replicated history, group-committed with the payments and acknowledged only once the
// standby holds it, and carries the unit's epoch like a payment (fencing).
//
// Every step is idempotent; a cancel with no try records an empty cancelled leg (empty
// rollback), so a try that arrives after it is refused (no hanging reservation). A participant
// never decides a transfer's fate itself: a leg left tried for tccAskAfter is asked about at the
// core zone, which answers its decision (presuming an abort for a transfer it never began).

// The steps of a transfer.
const (
	stepTry     = "try"
	stepConfirm = "confirm"
	stepCancel  = "cancel"
	// stateRefused is a try's answer when the leg cannot be tried (reason says why); nothing is
	// recorded.
	stateRefused = "refused"
)

// Refusal reasons of a try.
const (
	reasonConflict       = "idempotency_conflict"
	reasonUnknownAccount = "unknown_account"
	reasonTCCReasonMax   = 64 // bytes of a cancel's reason
)

// Timing of the participant's questions to the core zone.
const (
	tccAskAfter = 5 * time.Second // a leg tried this long ago is asked about
	tccAskEvery = time.Second
)

// Errors of the steps.
var (
	errBadTCC     = errors.New("malformed transfer step")
	errTCCNoTry   = errors.New("confirm of a transfer leg never tried")
	errTCCDecided = errors.New("transfer leg already decided the other way")
)

// tccRequest is the body of POST /internal/tcc/{step}: the transfer and the leg this unit holds.
type tccRequest struct {
	Step        string `json:"-"` // from the path
	Key         string `json:"key"`
	Leg         string `json:"leg"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
	Reason      string `json:"reason,omitempty"` // a cancel's reason, recorded with the leg
}

func (r *tccRequest) validate() error {
	p := ledger.Payment{Key: r.Key, FromUID: r.FromUID, ToUID: r.ToUID, AmountMinor: r.AmountMinor}
	if err := p.Validate(); err != nil {
		return err
	}
	switch {
	case r.Step != stepTry && r.Step != stepConfirm && r.Step != stepCancel:
		return fmt.Errorf("step %q: want try, confirm or cancel: %w", r.Step, errBadTCC)
	case r.Leg != ledger.LegDebit && r.Leg != ledger.LegCredit:
		return fmt.Errorf("leg %q: want debit or credit: %w", r.Leg, errBadTCC)
	case len(r.Reason) > reasonTCCReasonMax:
		return fmt.Errorf("reason of %d bytes, at most %d: %w", len(r.Reason), reasonTCCReasonMax, errBadTCC)
	}
	return nil
}

// tccAnswer is a step's answer: the leg's state after it.
type tccAnswer struct {
	Key    string `json:"key"`
	Leg    string `json:"leg"`
	State  string `json:"state"` // tried, confirmed, cancelled, or refused (a try only)
	Reason string `json:"reason,omitempty"`
	Empty  bool   `json:"empty,omitempty"`
}

func answerOf(r storage.TCCRow) tccAnswer {
	return tccAnswer{Key: r.Key, Leg: r.Leg, State: r.State, Reason: r.Reason, Empty: r.Empty}
}

// tccStep is a step's entry: the leg as it is after the step, applied alike on every replica.
type tccStep struct {
	Step string         `json:"step"`
	Leg  storage.TCCRow `json:"leg"`
}

// stepEpochOf is a step's epoch, which it must carry.
func stepEpochOf(r *http.Request) (int64, error) {
	epoch, err := epochOf(r)
	if err == nil && epoch == 0 {
		err = fmt.Errorf("a transfer step needs %s: %w", EpochHeader, errBadEpoch)
	}
	return epoch, err
}

func (s *server) handleTCC(w http.ResponseWriter, r *http.Request) {
	req := tccRequest{Step: r.PathValue("step")}
	if err := decode(w, r, smallBodyBytesMax, &req); err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	epoch, err := stepEpochOf(r)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	res := s.stepTCC(ctx, epoch, &req)
	if res.err != nil {
		writeError(w, res.err, false, replicateResponse{})
		return
	}
	writeJSON(w, http.StatusOK, res.tcc)
}

// POST /internal/tcc/batch carries the steps the core zone gathered for this unit while its
// earlier batches were in flight (one request and one answer for many steps, and all of them in
// the writer's queue at once, so they share a group commit). Each step is answered as
// POST /internal/tcc/{step} would have answered it alone, in a BatchResponse (PROTOCOL.md).

// TCCBatchMax bounds the steps of one batch request.
const TCCBatchMax = 256

// tccBatchRequest is the body of POST /internal/tcc/batch.
type tccBatchRequest struct {
	Steps []tccBatchStep `json:"steps"`
}

// tccBatchStep is one step of a batch: the single endpoint's body and the step of its path.
type tccBatchStep struct {
	Step string `json:"step"`
	tccRequest
}

func (s *server) handleTCCBatch(w http.ResponseWriter, r *http.Request) {
	var req tccBatchRequest
	if err := decode(w, r, TCCBatchMax*smallBodyBytesMax, &req); err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	if len(req.Steps) == 0 || len(req.Steps) > TCCBatchMax {
		writeError(w, fmt.Errorf("%d steps, want 1..%d a batch: %w", len(req.Steps), TCCBatchMax, errBadTCC), false, replicateResponse{})
		return
	}
	epoch, err := stepEpochOf(r)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	results := make([]result, len(req.Steps))
	ops := make([]*op, len(req.Steps))
	for i := range req.Steps {
		step := &req.Steps[i].tccRequest
		step.Step = req.Steps[i].Step
		if results[i].err = step.validate(); results[i].err == nil {
			ops[i] = &op{kind: opTCC, epoch: epoch, tcc: step}
		}
	}
	s.submitAll(ctx, ops, results)
	resp := BatchResponse{Replies: make([]BatchReply, len(results))}
	for i, res := range results {
		if ops[i] != nil {
			res = s.stepped(ctx, ops[i].tcc, res)
		}
		if res.err != nil {
			resp.Replies[i] = batchReply(errorReply(res.err))
		} else {
			resp.Replies[i] = batchReply(http.StatusOK, res.tcc)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// stepTCC runs one step through the writer and waits until it is replicated.
func (s *server) stepTCC(ctx context.Context, epoch int64, req *tccRequest) result {
	return s.stepped(ctx, req, s.submit(ctx, &op{kind: opTCC, epoch: epoch, tcc: req}))
}

// stepped waits until the writer's result of a step is replicated, and counts the step.
func (s *server) stepped(ctx context.Context, req *tccRequest, res result) result {
	if res.err == nil {
		res.err = s.awaitAck(ctx, res.seq)
	}
	if res.err == nil {
		s.metrics.tccSteps.WithLabelValues(req.Step, res.tcc.State).Inc()
	}
	return res
}

// fenceTCC is fenceWrite for a transfer step; the tcc-no-fencing defect skips the check.
func (s *server) fenceTCC(v view, reqEpoch int64) (stale bool, err error) {
	if s.cfg.has(DefectTCCNoFencing) && reqEpoch != 0 && reqEpoch < v.Epoch {
		return true, nil
	}
	return s.fenceWrite(v, reqEpoch)
}

// decideTCC turns a step into an entry (nil when the leg is already where the step leads, or a
// try is refused) and its answer.
func (s *server) decideTCC(ctx context.Context, tx *storage.Tx, v view, o *op, seq int64) (*entry, result, error) {
	req := o.tcc
	stale, err := s.fenceTCC(v, o.epoch)
	if err != nil {
		return nil, result{err: err}, nil
	}
	row, err := tx.TCCLeg(ctx, req.Key, req.Leg)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, result{}, err
	}
	if found && (row.FromUID != req.FromUID || row.ToUID != req.ToUID || row.AmountMinor != req.AmountMinor) {
		return nil, result{err: fmt.Errorf("transfer %q: %w", req.Key, ledger.ErrIdempotencyConflict)}, nil
	}
	have := result{tcc: answerOf(row), seq: row.Seq}
	next := storage.TCCRow{Key: req.Key, Leg: req.Leg, FromUID: req.FromUID, ToUID: req.ToUID,
		AmountMinor: req.AmountMinor, TriedMS: row.TriedMS, Reason: row.Reason}
	switch req.Step {
	case stepTry:
		if found {
			return nil, have, nil // tried or confirmed: the same answer; cancelled: refused (anti-hanging)
		}
		reason, err := tryRefusal(ctx, tx, req)
		if err != nil || reason != "" {
			return nil, result{tcc: tccAnswer{Key: req.Key, Leg: req.Leg, State: stateRefused, Reason: reason}}, err
		}
		if req.Leg == ledger.LegCredit {
			// A pending credit would hold nothing and move no money: the try checks the payee's
			// account and records nothing, so it waits for no commit of its own nor for the
			// standby, and the transfer's tries take as long as the payer's reservation.
			return nil, result{tcc: tccAnswer{Key: req.Key, Leg: req.Leg, State: ledger.LegTried}}, nil
		}
		next.State, next.TriedMS = ledger.LegTried, time.Now().UnixMilli()
	case stepConfirm:
		switch {
		case !found && req.Leg == ledger.LegDebit:
			return nil, result{err: fmt.Errorf("transfer %q %s: %w", req.Key, req.Leg, errTCCNoTry)}, nil
		case row.State == ledger.LegCancelled:
			return nil, result{err: fmt.Errorf("confirm transfer %q %s: %w", req.Key, req.Leg, errTCCDecided)}, nil
		case row.State == ledger.LegConfirmed:
			return nil, have, nil
		}
		// A credit with no row was tried without one (above): the core zone committed the
		// decision before it sent any confirm, and an account is never removed.
		next.State = ledger.LegConfirmed
	default: // stepCancel
		switch {
		case found && row.State == ledger.LegConfirmed:
			return nil, result{err: fmt.Errorf("cancel transfer %q %s: %w", req.Key, req.Leg, errTCCDecided)}, nil
		case found && row.State == ledger.LegCancelled:
			return nil, have, nil
		}
		next.State, next.Reason, next.Empty = ledger.LegCancelled, req.Reason, !found
	}
	e := &entry{Seq: seq, Epoch: v.Epoch, Stale: stale, Kind: kindTCC, TCC: &tccStep{Step: req.Step, Leg: next}}
	if stale {
		e.Epoch = o.epoch
	}
	return e, result{tcc: answerOf(next), seq: seq}, nil
}

// tryRefusal says why a leg cannot be tried ("" when it can): its key is a same-unit payment's,
// its account does not exist, or (a debit) the payer's balance does not cover the amount.
func tryRefusal(ctx context.Context, tx *storage.Tx, req *tccRequest) (string, error) {
	_, err := tx.Payment(ctx, req.Key)
	switch {
	case err == nil:
		return reasonConflict, nil
	case !errors.Is(err, storage.ErrNotFound):
		return "", err
	}
	uid := req.ToUID
	if req.Leg == ledger.LegDebit {
		uid = req.FromUID
	}
	balance, _, err := tx.Account(ctx, uid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return reasonUnknownAccount, nil
	case err != nil:
		return "", err
	case req.Leg == ledger.LegDebit && balance < req.AmountMinor:
		return string(ledger.ReasonInsufficientFunds), nil
	}
	return "", nil
}

// applyTCC applies a step's entry: the leg's row and, where money moves here, the posting.
// storage.Tx.Rewind relies on where the postings are: a payer's leg posts its reservation at
// its try, and no leg posts anything else before its confirm or cancel.
func applyTCC(ctx context.Context, tx *storage.Tx, e *entry) error {
	if e.TCC == nil {
		return fmt.Errorf("apply entry %d: transfer entry without a step: %w", e.Seq, ErrDiverged)
	}
	leg := e.TCC.Leg
	leg.Seq, leg.Epoch = e.Seq, e.Epoch
	debit := leg.Leg == ledger.LegDebit
	var err error
	switch step := e.TCC.Step; {
	case step == stepTry && debit:
		err = tx.PostLeg(ctx, e.Seq, leg.Key, leg.FromUID, -leg.AmountMinor) // the reservation
	case step == stepConfirm && !debit:
		err = tx.PostLeg(ctx, e.Seq, leg.Key, leg.ToUID, leg.AmountMinor)
	case step == stepConfirm && debit:
		tx.AddOutbox(storage.OutboxRow{Seq: e.Seq, Key: leg.Key, FromUID: leg.FromUID, ToUID: leg.ToUID, AmountMinor: leg.AmountMinor})
	case step == stepCancel && debit && !leg.Empty:
		err = tx.PostLeg(ctx, e.Seq, leg.Key, leg.FromUID, leg.AmountMinor) // the release
	}
	if err != nil {
		return err
	}
	return tx.PutTCC(ctx, leg)
}

// resolveTCC asks the core zone, while this replica is the primary, about every leg tried
// longer than tccAskAfter ago, and applies the decision it answers. It ends when ctx does.
func (s *server) resolveTCC(ctx context.Context) {
	t := time.NewTicker(tccAskEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.view().Role != ledger.RolePrimary || len(s.cfg.CoreAddrs) == 0 {
			continue
		}
		rows, err := s.db.PendingTCC(ctx, time.Now().Add(-tccAskAfter).UnixMilli(), 0)
		if err != nil {
			s.log.Warn("read pending transfer legs", "err", err)
			continue
		}
		for _, row := range rows {
			if ctx.Err() != nil || s.view().Role != ledger.RolePrimary {
				break
			}
			s.askCore(ctx, row)
		}
	}
}

// decisionAnswer is the core zone's answer about a transfer.
type decisionAnswer struct {
	State  string `json:"state"` // trying, confirmed, cancelled
	Reason string `json:"reason"`
}

// askCore asks the core zone for the decision on one leg's transfer and applies it.
func (s *server) askCore(ctx context.Context, row storage.TCCRow) {
	body := map[string]int64{"from_uid": row.FromUID, "to_uid": row.ToUID, "amount_minor": row.AmountMinor}
	path := "/v1/transfers/" + url.PathEscape(row.Key) + "/resolve"
	if s.follower() {
		path += "?plane=" + string(shadow.Shadow) // a presumed abort is counted in this plane's figures
	}
	var d decisionAnswer
	if err := s.core(ctx, http.MethodPost, path, body, &d); err != nil {
		s.log.Warn("ask the core zone about a transfer", "key", row.Key, "err", err)
		return
	}
	step := ""
	switch d.State {
	case ledger.LegConfirmed:
		step = stepConfirm
	case ledger.LegCancelled:
		step = stepCancel
	default:
		return // undecided: the core zone's recovery drives it
	}
	req := &tccRequest{Step: step, Key: row.Key, Leg: row.Leg, FromUID: row.FromUID, ToUID: row.ToUID,
		AmountMinor: row.AmountMinor, Reason: d.Reason}
	if res := s.stepTCC(ctx, 0, req); res.err != nil {
		s.log.Warn("apply the core zone's decision", "key", row.Key, "step", step, "err", res.err)
	}
}
