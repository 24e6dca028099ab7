package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/lanes"
	"github.com/redline-dev/redline/target/ledger"
)

// The core zone is the coordinator of cross-unit payments (try / confirm / cancel). Its leader
// tries both legs (the payer's unit reserves the funds, the payee's checks the account),
// commits the decision in the Raft log with the transfer (nothing is written before: a
// transfer with no decision is aborted when a participant asks, PROTOCOL.md says why that is
// safe), answers the client, and only then confirms both legs (a goroutine of its own, the
// recovery loop after it); a cancelled transfer's legs are cancelled before its answer, so that
// a refused payment has released its reservation when the client hears of it. Every step
// carries the participant unit's epoch and goes to its current primary, retried across a
// failover; a step is idempotent at the participant, so the leader that answers a client, a new
// leader's recovery loop, and a zombie former leader may all drive one transfer: the first
// decision committed wins.

// Timing of the coordinator. A transfer request is answered within transferBudget (the core
// HTTP API's write timeout is 5 s): tries get tryBudget, then the decision is committed and
// answered; the confirm or cancel after the answer gets transferBudget of its own, and what is
// not finished then, the recovery loop finishes.
const (
	transferBudget = 4 * time.Second
	tryBudget      = 2500 * time.Millisecond
	stepRetry      = 25 * time.Millisecond
	stepTimeout    = time.Second
	// tryGiveUp: a transfer whose tries went unanswered this long is cancelled.
	tryGiveUp = 10 * time.Second
	// recoverEvery is the recovery loop's period; recoverBatchMax and recoverParallelMax bound
	// the transfers one round drives, and how many at once.
	recoverEvery = 250 * time.Millisecond
	// recoverGrace: a transfer a goroutine of this replica let go of less than this long ago is
	// left alone (its done mark is on its way), not finished a second time.
	recoverGrace       = time.Second
	recoverBatchMax    = 512
	recoverParallelMax = 32
	// doneBatchMax and doneEvery batch the done marks into one Raft command. Nothing waits for
	// a done mark but the audit and the recovery loop (which leaves a transfer let go of less
	// than recoverGrace ago alone), so it is batched long: every Raft command is an fsync on the
	// leader, then on a follower, of the disk the units' commits share.
	doneBatchMax = 1_024
	doneEvery    = 250 * time.Millisecond
	doneQueueMax = 8_192
	// finishersMax bounds the goroutines that confirm or cancel the legs of transfers already
	// answered; beyond it, a request finishes its transfer before it answers (backpressure).
	finishersMax = 1_024
	// participantConnsMax bounds the coordinator's connections to one unit replica.
	participantConnsMax = 256
	transferBodyMax     = 4 << 10
)

// errUndecided is a transfer whose tries did not all answer within the budget.
var errUndecided = errors.New("transfer not decided yet")

// coordinator drives transfers on the leader.
type coordinator struct {
	n        *node
	http     *http.Client
	steps    *lanes.Lanes[*stepCall] // tries and cancels to the units, batched per unit (steps.go)
	confirms *lanes.Lanes[*stepCall] // confirms to the units, lingering (steps.go)
	done     chan string             // keys both participants applied, for the done flusher
	// finishers holds a token per goroutine finishing an answered transfer; finishing is their
	// owner, which Run waits for.
	finishers chan struct{}
	finishing sync.WaitGroup

	mu        sync.Mutex
	driving   map[string]shadow.Plane // keys a goroutine of this replica drives now, and their plane
	released  map[string]time.Time    // keys let go of within recoverGrace, and when
	firstSeen map[string]time.Time    // undecided keys the recovery loop met, and when first
}

func newCoordinator(n *node) *coordinator {
	c := &coordinator{
		n:         n,
		http:      &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: participantConnsMax, IdleConnTimeout: 30 * time.Second}},
		done:      make(chan string, doneQueueMax),
		finishers: make(chan struct{}, finishersMax),
		driving:   map[string]shadow.Plane{},
		released:  map[string]time.Time{},
		firstSeen: map[string]time.Time{},
	}
	c.steps = c.newSteps(0)
	c.confirms = c.newSteps(confirmLinger)
	return c
}

// claim marks t's key as driven by the caller; false when another goroutine drives it.
func (c *coordinator) claim(t Transfer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.driving[t.Key]; ok {
		return false
	}
	c.driving[t.Key] = t.plane()
	return true
}

// drives says whether a goroutine of this replica drives key now, and for which plane.
func (c *coordinator) drives(key string) (shadow.Plane, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.driving[key]
	return p, ok
}

// unrecorded counts the transfers of plane p driven here that the registry does not hold yet:
// undecided transfers (nothing is in the log before a decision).
func (c *coordinator) unrecorded(p shadow.Plane) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, kp := range c.driving {
		if _, ok := c.n.fsm.transfer(k); !ok && kp == p {
			n++
		}
	}
	return n
}

func (c *coordinator) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.driving, key)
	c.released[key] = time.Now()
}

// sweep forgets released keys older than recoverGrace and first sightings of transfers decided
// since, and says whether the recovery loop should leave key alone now.
func (c *coordinator) sweep(now time.Time) func(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, at := range c.released {
		if now.Sub(at) >= recoverGrace {
			delete(c.released, k)
		}
	}
	for k := range c.firstSeen {
		if t, ok := c.n.fsm.transfer(k); !ok || t.Decided() {
			delete(c.firstSeen, k)
		}
	}
	return func(key string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, recent := c.released[key]
		return recent
	}
}

// commitTransfer replicates a transfer command and returns the transfer after it.
func (n *node) commitTransfer(cmd Command) (Transfer, error) {
	res, err := n.commit(cmd)
	return res.transfer, err
}

// pay drives the transfer t (or finds it) to its decision as far as the budget allows. A
// confirmed transfer is answered at once: its legs are confirmed after the answer (finishLater),
// or before it when finishersMax goroutines are busy already; a cancelled one's legs are
// cancelled before the answer. One undecided when the budget ends is driven on after the answer
// (decideLater).
func (c *coordinator) pay(ctx context.Context, t Transfer) (Transfer, error) {
	for !c.claim(t) {
		// A retry of a request still being driven here: wait for its decision.
		if have, ok := c.n.fsm.transfer(t.Key); ok && have.Decided() {
			if !have.sameRequest(t) {
				return have, fmt.Errorf("transfer %q: %w", t.Key, ErrTransferConflict)
			}
			return have, nil
		}
		if !sleepDone(ctx, stepRetry) {
			return t, errUndecided
		}
	}
	t, err := c.known(t)
	if err == nil {
		t, err = c.decide(ctx, t, false)
	}
	switch {
	case errors.Is(err, errUndecided):
		if !c.decideLater(ctx, t) {
			c.release(t.Key)
		}
		return t, err
	case err != nil || t.Done:
		c.release(t.Key)
		return t, err
	}
	if t.State == TransferCancelled || !c.finishLater(ctx, t) {
		c.settle(ctx, t)
		c.release(t.Key)
	}
	return t, nil
}

// known returns the registry's transfer of t's key, or t checked against the routing table
// when the key is unknown (nothing is written before both legs are tried: see decide).
func (c *coordinator) known(t Transfer) (Transfer, error) {
	if have, ok := c.n.fsm.transfer(t.Key); ok {
		if !have.sameRequest(t) {
			return have, fmt.Errorf("transfer %q: %w", t.Key, ErrTransferConflict)
		}
		return have, nil
	}
	t.State, t.Reason, t.Done = TransferTrying, "", false
	err := t.check(c.n.fsm.current())
	return t, err
}

// decideLater hands an undecided transfer, and its claim, to a goroutine that drives it on: it
// tries its legs again for tryGiveUp, then cancels it (participant_unavailable), and finishes
// it; a key the payer's unit turns out to hold for another transfer ends it undecided. False
// when finishersMax goroutines are busy already: the participants then ask about their tried
// legs, and the core zone presumes an abort.
func (c *coordinator) decideLater(ctx context.Context, t Transfer) bool {
	return c.handOver(ctx, t, tryGiveUp, func(ctx context.Context) {
		for {
			d, err := c.decide(ctx, t, false)
			switch {
			case err == nil:
				c.settle(ctx, d)
				return
			case errors.Is(err, ErrTransferConflict):
				return // the key is another transfer's at the payer's unit: nothing to decide
			}
			if !errors.Is(err, errUndecided) || !sleepDone(ctx, stepRetry) {
				break
			}
		}
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), transferBudget)
		defer cancel()
		if d, err := c.decide(gctx, t, true); err == nil {
			c.settle(gctx, d)
		} else {
			c.n.log.Warn("give up transfer", "key", t.Key, "err", err)
		}
	})
}

// finishLater hands a decided transfer, and its claim, to a goroutine that confirms or cancels
// its legs; false when finishersMax goroutines are busy already.
func (c *coordinator) finishLater(ctx context.Context, t Transfer) bool {
	return c.handOver(ctx, t, transferBudget, func(ctx context.Context) { c.settle(ctx, t) })
}

// handOver runs f on a goroutine of its own that takes over t's claim, with a budget from now;
// false when finishersMax goroutines are busy already (the caller keeps the claim).
func (c *coordinator) handOver(ctx context.Context, t Transfer, budget time.Duration, f func(context.Context)) bool {
	select {
	case c.finishers <- struct{}{}:
	default:
		return false
	}
	// Ends within budget (and a last transferBudget to give up); what is left then, the
	// recovery loop or the participants' questions finish.
	c.finishing.Go(func() {
		defer func() { <-c.finishers }()
		defer c.release(t.Key)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		defer cancel()
		f(fctx)
	})
	return true
}

// drive takes a claimed transfer to its decision and both participants to it. Without giveUp
// an unanswered try leaves it undecided (errUndecided); with it, the transfer is cancelled.
func (c *coordinator) drive(ctx context.Context, t Transfer, giveUp bool) (Transfer, error) {
	t, err := c.decide(ctx, t, giveUp)
	if err == nil && !t.Done {
		c.settle(ctx, t)
	}
	return t, err
}

// decide tries both legs of a claimed transfer not decided yet and commits the decision.
func (c *coordinator) decide(ctx context.Context, t Transfer, giveUp bool) (Transfer, error) {
	if t.Decided() {
		return t, nil
	}
	began := time.Now()
	decision, reason, err := c.tryBoth(ctx, t)
	tried := time.Now()
	c.n.metrics.transferSeconds.WithLabelValues("try").Observe(tried.Sub(began).Seconds())
	switch {
	case errors.Is(err, ErrTransferConflict):
		// Nothing of this transfer is anywhere: it is decided nowhere, unless an older log began
		// it (the registry holds it), whose recovery cancels it when it gives up.
		if _, begun := c.n.fsm.transfer(t.Key); !begun || !giveUp {
			return t, err
		}
		decision, reason = TransferCancelled, ReasonConflict
	case err != nil && !giveUp:
		return t, errUndecided
	case err != nil:
		decision, reason = TransferCancelled, ReasonUnavailable
	}
	// The transfer rides with its decision: the first decision for the key records it.
	d, err := c.n.commitTransfer(Command{Op: OpTransferDecide, Key: t.Key, Decision: decision, Reason: reason, Transfer: &t})
	c.n.metrics.transferSeconds.WithLabelValues("decide").Observe(time.Since(tried).Seconds())
	if errors.Is(err, raft.ErrEnqueueTimeout) {
		// Not in the log, and this replica still leads: the legs stay tried, decide again.
		return t, fmt.Errorf("%w: %w", errUndecided, err)
	}
	return d, err
}

// settle confirms or cancels both legs of a decided transfer and, once both applied the
// decision, queues its done mark.
func (c *coordinator) settle(ctx context.Context, t Transfer) {
	if !c.finish(ctx, t) {
		return
	}
	select {
	case c.done <- t.Key:
	default: // the flusher is behind: the recovery loop finds it again
	}
}

// legAnswer is a participant's answer to a step.
type legAnswer struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// tryBoth tries both legs at once and decides: confirmed when both are tried (or confirmed by
// an earlier decision), cancelled when either refuses or was cancelled already. The error is
// errUndecided when a leg did not answer within tryBudget and the other did not refuse, and
// ErrTransferConflict when the payer's unit holds another transfer's debit under the key: this
// one then reserved nothing anywhere (a credit's try records nothing) and is decided nowhere.
// The payee's unit holding another transfer's credit refuses this one like a refusal.
func (c *coordinator) tryBoth(ctx context.Context, t Transfer) (decision, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, tryBudget)
	defer cancel()
	answers, errs := c.both(ctx, t, "try")
	if errors.Is(errs[0], ErrTransferConflict) {
		return "", "", errs[0]
	}
	if errors.Is(errs[1], ErrTransferConflict) {
		answers[1], errs[1] = legAnswer{State: "refused", Reason: ReasonConflict}, nil
	}
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			continue
		case a.State == "refused":
			return TransferCancelled, a.Reason, nil
		case a.State == ledger.LegCancelled:
			return TransferCancelled, ReasonAborted, nil
		}
	}
	if err := errors.Join(errs[0], errs[1]); err != nil {
		return "", "", fmt.Errorf("%w: %w", errUndecided, err)
	}
	return TransferConfirmed, "", nil
}

// finish confirms or cancels both legs as decided; it says whether both applied it.
func (c *coordinator) finish(ctx context.Context, t Transfer) bool {
	step := "confirm"
	if t.State == TransferCancelled {
		step = "cancel"
	}
	_, errs := c.both(ctx, t, step)
	for _, err := range errs {
		if err != nil {
			c.n.log.Warn("finish transfer", "key", t.Key, "step", step, "err", err)
			return false
		}
	}
	return true
}

// both sends one step to both legs at once: the debit to the payer's unit, the credit to the
// payee's.
func (c *coordinator) both(ctx context.Context, t Transfer, step string) ([2]legAnswer, [2]error) {
	var (
		answers [2]legAnswer
		errs    [2]error
		wg      sync.WaitGroup
	)
	for i, leg := range []string{ledger.LegDebit, ledger.LegCredit} {
		unit := t.FromUnit
		if leg == ledger.LegCredit {
			unit = t.ToUnit
		}
		// Each ends with its step (bounded by ctx).
		wg.Go(func() { answers[i], errs[i] = c.step(ctx, unit, step, leg, t) })
	}
	wg.Wait()
	return answers, errs
}

// stepRequest is a step's body (PROTOCOL.md: POST /internal/tcc/{step}).
type stepRequest struct {
	Step        string `json:"step"`
	Key         string `json:"key"`
	Leg         string `json:"leg"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
	Reason      string `json:"reason,omitempty"`
}

// step sends one step to the current primary of unit, under its epoch, until it answers: a
// refused epoch, an unreachable or unavailable primary are retried with the routing state of the
// moment (the failure detector fails the unit over meanwhile). A participant's 4xx is final.
// A unit that holds another transfer's leg under the key (idempotency_conflict: other fields)
// holds nothing of this one: a try there is ErrTransferConflict, a cancel there has nothing to
// release and counts as applied.
func (c *coordinator) step(ctx context.Context, unit, step, leg string, t Transfer) (legAnswer, error) {
	req := stepRequest{Step: step, Key: t.Key, Leg: leg, FromUID: t.FromUID, ToUID: t.ToUID, AmountMinor: t.AmountMinor, Reason: t.Reason}
	for {
		if _, ok := c.n.fsm.unit(unit); !ok {
			return legAnswer{}, fmt.Errorf("%s %s of %q: %w %q", step, leg, t.Key, ErrUnknownUnit, unit)
		}
		r := c.call(ctx, unit, req, t.Headers)
		another := r.err == nil && r.status == http.StatusConflict && r.code == ReasonConflict
		switch {
		case r.err == nil && r.status == http.StatusOK:
			return r.answer, nil
		case another && step == "try":
			return legAnswer{}, fmt.Errorf("%s %s of %q: unit %s holds another transfer's leg under the key: %w", step, leg, t.Key, unit, ErrTransferConflict)
		case another && step == "cancel":
			return legAnswer{State: ledger.LegCancelled}, nil
		case r.err == nil && r.status/100 == 4 && r.status != http.StatusMisdirectedRequest && r.status != http.StatusTooManyRequests:
			return legAnswer{}, fmt.Errorf("%s %s of %q at unit %s: status %d %s", step, leg, t.Key, unit, r.status, r.code)
		}
		if !sleepDone(ctx, stepRetry) {
			return legAnswer{}, fmt.Errorf("%s %s of %q at unit %s: %w (last: %d %v)", step, leg, t.Key, unit, ctx.Err(), r.status, r.err)
		}
	}
}

// lead runs the leader's transfer duties until ctx ends: the done flusher and the recovery loop.
func (c *coordinator) lead(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.flushDone(ctx) }) // ends with ctx
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		c.recoverRound(ctx)
	}
}

// flushDone commits the done marks in batches.
func (c *coordinator) flushDone(ctx context.Context) {
	for {
		var keys []string
		select {
		case <-ctx.Done():
			return
		case k := <-c.done:
			keys = append(keys, k)
		}
		timer := time.NewTimer(doneEvery)
	gather:
		for len(keys) < doneBatchMax {
			select {
			case k := <-c.done:
				keys = append(keys, k)
			case <-timer.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		timer.Stop()
		if _, err := c.n.commitTransfer(Command{Op: OpTransferDone, Keys: keys}); err != nil {
			c.n.log.Warn("mark transfers done", "count", len(keys), "err", err)
		}
	}
}

// recoverRound drives every unfinished transfer that no goroutine of this replica drives: those
// a former leader left, those whose client went away, those whose participant was down.
func (c *coordinator) recoverRound(ctx context.Context) {
	now := time.Now()
	recent := c.sweep(now)
	open := c.n.fsm.openTransfers(recoverBatchMax)
	sem := make(chan struct{}, recoverParallelMax)
	var wg sync.WaitGroup
	for _, t := range open {
		if ctx.Err() != nil {
			break
		}
		if recent(t.Key) || !c.claim(t) {
			continue
		}
		giveUp := false
		if !t.Decided() {
			c.mu.Lock()
			first, seen := c.firstSeen[t.Key]
			if !seen {
				c.firstSeen[t.Key], first = now, now
			}
			c.mu.Unlock()
			giveUp = now.Sub(first) >= tryGiveUp
		}
		sem <- struct{}{}
		// Each drive ends within transferBudget.
		wg.Go(func() {
			defer func() { <-sem }()
			defer c.release(t.Key)
			dctx, cancel := context.WithTimeout(ctx, transferBudget)
			defer cancel()
			if _, err := c.drive(dctx, t, giveUp); err != nil {
				c.n.log.Warn("recover transfer", "key", t.Key, "err", err)
			}
		})
	}
	wg.Wait()
}

// Reads of the registry, under the state machine's lock.

func (f *fsm) transfer(key string) (Transfer, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.transfers.byKey[key]
	if !ok {
		return Transfer{}, false
	}
	return *t, true
}

// openTransfers returns up to limit transfers not done.
func (f *fsm) openTransfers(limit int) []Transfer {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Transfer, 0, min(limit, len(f.transfers.open)))
	for k := range f.transfers.open {
		if len(out) == limit {
			break
		}
		out = append(out, *f.transfers.byKey[k])
	}
	return out
}

func (f *fsm) transferFigures(p shadow.Plane) ledger.CoreTransfers {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.transfers.figuresOf(p)
}

// unit returns a unit's configuration without copying the whole state.
func (f *fsm) unit(name string) (Unit, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.state.Units[name]
	return u, ok
}

// The HTTP API of transfers (PROTOCOL.md).

func (n *node) transferRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/transfers", n.handleTransfer)
	mux.HandleFunc("GET /v1/transfers", n.handleTransferFigures)
	mux.HandleFunc("GET /v1/transfers/{key}", n.handleTransferGet)
	mux.HandleFunc("POST /v1/transfers/{key}/resolve", n.handleResolve)
}

// handleTransfer answers a cross-unit payment like a unit answers a same-unit one. Only the
// leader coordinates: a follower answers 503 not_leader and the caller tries another replica.
func (n *node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, transferBodyMax))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body over %d bytes", transferBodyMax))
		return
	}
	p, err := ledger.ParsePayment(body) // the decoding and codes of a same-unit payment's
	if err != nil {
		writeError(w, http.StatusBadRequest, ledger.Code(err), err.Error())
		return
	}
	t := Transfer{Key: p.Key, FromUID: p.FromUID, ToUID: p.ToUID, AmountMinor: p.AmountMinor}
	for _, h := range carriedHeaders {
		if v := r.Header.Get(h); v != "" {
			if t.Headers == nil {
				t.Headers = map[string]string{}
			}
			t.Headers[h] = v
		}
	}
	if n.raft.State() != raft.Leader {
		writeError(w, http.StatusServiceUnavailable, "not_leader", "this core replica does not lead: ask another")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), transferBudget)
	defer cancel()
	began := time.Now()
	t, err = n.tcc.pay(ctx, t)
	n.metrics.transferSeconds.WithLabelValues("answer").Observe(time.Since(began).Seconds())
	switch {
	case errors.Is(err, ErrTransferConflict):
		writeError(w, http.StatusConflict, "idempotency_conflict", err.Error())
	case errors.Is(err, ErrSameUnit):
		writeError(w, http.StatusUnprocessableEntity, "same_unit", err.Error())
	case errors.Is(err, errUndecided):
		writeError(w, http.StatusServiceUnavailable, "transfer_pending", "the transfer is not decided yet: retry with the same key")
	case err != nil:
		status, code := errorStatus(err)
		writeError(w, status, code, err.Error())
	default:
		status, body := t.outcome()
		writeJSON(w, status, body)
	}
}

// handleTransferGet answers GET /v1/payments/{key} for a cross-unit payment.
func (n *node) handleTransferGet(w http.ResponseWriter, r *http.Request) {
	if n.raft.State() != raft.Leader {
		n.forward(w, r, nil)
		return
	}
	key, p := r.PathValue("key"), planeOf(r)
	t, known := n.fsm.transfer(key)
	ok := known && t.plane() == p // each plane reads its own transfers only
	if driven, ok := n.tcc.drives(key); !known && ok && driven == p {
		t, ok = Transfer{Key: key, State: TransferTrying}, true // not decided yet
	}
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no transfer with key "+key)
		return
	}
	status, body := t.outcome()
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		// Refused before any money moved: not a recorded payment.
		writeError(w, http.StatusNotFound, "not_found", "no payment with key "+t.Key)
		return
	}
	writeJSON(w, status, body)
}

// handleTransferFigures answers the audit's figures of the transfers.
func (n *node) handleTransferFigures(w http.ResponseWriter, r *http.Request) {
	if n.raft.State() != raft.Leader {
		n.forward(w, r, nil)
		return
	}
	p := shadow.Production
	if r.URL.Query().Get("plane") == string(shadow.Shadow) {
		p = shadow.Shadow
	}
	f := n.fsm.transferFigures(p)
	f.Undecided += n.tcc.unrecorded(p)
	writeJSON(w, http.StatusOK, f)
}

// resolveRun is the run id a presumed abort of a shadow plane's leg carries to its
// participants' cancel steps: the participant that asks knows its plane, not the run.
const resolveRun = "redline.resolve"

// resolveRequest is the body of POST /v1/transfers/{key}/resolve: the leg's transfer, as the
// participant that asks recorded it.
type resolveRequest struct {
	FromUID     int64 `json:"from_uid"`
	ToUID       int64 `json:"to_uid"`
	AmountMinor int64 `json:"amount_minor"`
}

// handleResolve answers a participant that asks about a transfer it holds a tried leg of: the
// decision, or trying (the recovery loop drives it); a transfer never begun is cancelled here
// (presumed abort), and the recovery loop cancels both legs.
func (n *node) handleResolve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, transferBodyMax))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	if n.raft.State() != raft.Leader {
		n.forward(w, r, body)
		return
	}
	var req resolveRequest
	if err := unmarshalStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	guess := &Transfer{Key: r.PathValue("key"), FromUID: req.FromUID, ToUID: req.ToUID, AmountMinor: req.AmountMinor}
	switch shadow.Plane(r.URL.Query().Get("plane")) {
	case "", shadow.Production:
	case shadow.Shadow:
		guess.Headers = map[string]string{shadow.Header: resolveRun}
	default:
		writeError(w, http.StatusBadRequest, "bad_plane", "plane must be production or shadow")
		return
	}
	key := guess.Key
	t, ok := n.fsm.transfer(key)
	if _, driven := n.tcc.drives(key); !ok && driven {
		t, ok = Transfer{State: TransferTrying}, true // its coordinator is at it: wait
	}
	if !ok {
		if t, err = n.commitTransfer(Command{Op: OpTransferDecide, Key: key, Decision: TransferCancelled, Reason: ReasonUnknown, Transfer: guess}); err != nil {
			status, code := errorStatus(err)
			writeError(w, status, code, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, legAnswer{State: t.State, Reason: t.Reason})
}

// unmarshalStrict decodes one JSON value, unknown fields refused.
func unmarshalStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// sleepDone waits d and says whether ctx is still live.
func sleepDone(ctx context.Context, d time.Duration) bool {
	sleep(ctx, d)
	return ctx.Err() == nil
}
