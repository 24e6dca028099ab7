package unit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

type opKind int

const (
	opPay opKind = iota
	opOpen
	opReplicate
	opConfig
	opInstall
	opCatchUpLog
	opRewind
	opTCC // a step of a cross-unit transfer (tcc.go)
)

// op is a request to the writer goroutine; done receives exactly one result.
type op struct {
	kind     opKind
	epoch    int64 // X-Redline-Epoch of a business write, 0 when absent
	pay      ledger.Payment
	accounts []ledger.Account
	repl     *replicateRequest
	cfg      *configRequest
	install  *snapshot
	base     int64 // opRewind: the seq the books go back to
	tcc      *tccRequest
	run      string // the stress run id of a marked business write (plane.go)
	done     chan result
}

func (o *op) business() bool { return o.kind == opPay || o.kind == opOpen || o.kind == opTCC }

func (o *op) weight() int {
	if o.kind == opOpen {
		return max(1, len(o.accounts))
	}
	return 1
}

// result is the writer's answer. seq is the history position a client must see replicated
// before it is told (0: nothing to wait for).
type result struct {
	err     error
	outcome ledger.Outcome
	created int
	seq     int64
	last    replicateResponse
	tcc     tccAnswer
}

// batch is a group of committed entries on their way to the standby.
type batch struct {
	epoch     int64
	fromSeq   int64
	lastSeq   int64
	prevChain string
	bodies    []json.RawMessage
}

// submit hands o to the writer and waits for its result.
func (s *server) submit(ctx context.Context, o *op) result {
	o.done = make(chan result, 1)
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return result{err: fmt.Errorf("queue write: %w", ctx.Err())}
	}
	select {
	case r := <-o.done:
		return r
	case <-ctx.Done():
		return result{err: fmt.Errorf("await write: %w", ctx.Err())}
	}
}

// write is the writer goroutine: it owns the writer connection and the history head. It
// gathers the business requests that queued up while the previous batch committed into one
// transaction (group commit). It ends when ctx is cancelled.
func (s *server) write(ctx context.Context) {
	var held *op
	for ctx.Err() == nil { // after a halt too: not one more transaction
		o := held
		held = nil
		if o == nil {
			select {
			case <-ctx.Done():
				return
			case o = <-s.ops:
			}
		}
		if !o.business() {
			s.control(ctx, o)
			continue
		}
		ops, weight := []*op{o}, o.weight()
	drain:
		for weight < s.batchMax {
			select {
			case n := <-s.ops:
				if !n.business() {
					held = n
					break drain
				}
				ops, weight = append(ops, n), weight+n.weight()
			default:
				break drain
			}
		}
		s.commit(ctx, ops)
	}
}

func (s *server) control(ctx context.Context, o *op) {
	var r result
	switch o.kind {
	case opReplicate:
		r = s.applyReplicated(ctx, o.repl)
	case opConfig:
		r = s.configure(ctx, o.cfg)
	case opInstall:
		r = s.installSnapshot(ctx, o.install)
	case opCatchUpLog:
		r = s.applyLog(ctx, o.repl)
	case opRewind:
		r = s.rewindBooks(ctx, o.base)
	default:
		panic(fmt.Sprintf("unit: writer got op kind %d", o.kind))
	}
	s.failStop(r.err)
	o.done <- r
}

// failStop halts the process when err is a COMMIT of unknown outcome. The writer's history
// head (seq, chain), its persisted view and its counters in memory then may or may not match
// the database: carrying on would write the next batch over seqs the database already holds
// (every batch failing from then on) or ship a history the standby cannot follow. Stopping is
// the one safe answer, and an ordinary one: the supervisor restarts the process, which reads
// its head from the database and catches up as after a kill; the core zone fails the unit over
// meanwhile. Nothing of the batch was acknowledged, so nothing acknowledged is lost.
func (s *server) failStop(err error) {
	if !errors.Is(err, storage.ErrCommitUnknown) {
		return
	}
	assert(s.halt != nil, "a writer runs without a way to halt")
	s.log.Error("halting: a commit's outcome is unknown", "err", err)
	s.halt(err)
}

// commit decides and applies a batch of business writes in one transaction, then hands the new
// entries to the replicator. Clients are answered by their handlers once the entries are
// replicated.
func (s *server) commit(ctx context.Context, ops []*op) {
	v := s.view()
	if v.Role != ledger.RolePrimary {
		answerAll(ops, result{err: ErrNotPrimary})
		return
	}
	results, b, err := s.commitTx(ctx, v, ops)
	if err != nil {
		s.log.Error("commit batch", "err", err)
		s.failStop(err) // before the answers: no client hears of it while the writer goes on
		answerAll(ops, result{err: err})
		return
	}
	s.metrics.batch(len(ops), len(b.bodies))
	if len(b.bodies) > 0 {
		select {
		case s.ship <- b:
		case <-ctx.Done():
		}
	}
	for i, o := range ops {
		o.done <- results[i]
	}
}

func answerAll(ops []*op, r result) {
	for _, o := range ops {
		o.done <- r
	}
}

func (s *server) commitTx(ctx context.Context, v view, ops []*op) ([]result, *batch, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	b := &batch{epoch: v.Epoch, fromSeq: s.lastSeq + 1, prevChain: s.chain}
	seq, chain := s.lastSeq, s.chain
	fromSeq, fromChain := s.lastSeq, s.chain
	results := make([]result, len(ops))
	var early []storage.OutboxRow // publish-before-commit
	var written tally
	for i, o := range ops {
		e, res, err := s.decide(ctx, tx, v, o, seq+1)
		if err != nil {
			return nil, nil, err
		}
		results[i] = res
		if e == nil {
			continue
		}
		body, err := json.Marshal(e)
		if err != nil {
			return nil, nil, fmt.Errorf("encode entry: %w", err)
		}
		chain = chainNext(chain, body)
		if err := apply(ctx, tx, e, body, e.Stale, chain); err != nil {
			return nil, nil, err
		}
		seq++
		written.add(e, s.planeOf())
		b.bodies = append(b.bodies, body)
		if p := e.Payment; p != nil && p.Status == ledger.StatusCommitted && s.cfg.has(DefectPublishBeforeCommit) {
			early = append(early, storage.OutboxRow{Seq: e.Seq, Key: p.Key, FromUID: p.FromUID, ToUID: p.ToUID, AmountMinor: p.AmountMinor})
		}
	}
	b.lastSeq = seq
	acked := s.replicated.head()
	if s.cfg.has(DefectAsyncReplication) {
		acked = seq // acknowledged as soon as committed here
	}
	if err := s.persistBatch(ctx, tx, acked, seq); err != nil {
		return nil, nil, err
	}
	if err := s.persistLeaks(ctx, tx, written); err != nil {
		return nil, nil, err
	}
	if s.cfg.has(DefectPublishBeforeCommit) {
		s.publishEarly(early)
	}
	opening := tx.PendingOpenedMinor() // read before the commit clears what tx holds
	if err := tx.Commit(); err != nil {
		return nil, nil, err
	}
	s.setHead(seq, chain)
	s.advanceOpened(fromSeq, fromChain, opening)
	s.counted(written)
	return results, b, nil
}

// persistBatch writes the bookkeeping that rides along with every batch.
func (s *server) persistBatch(ctx context.Context, tx *storage.Tx, ackedSeq, seq int64) error {
	if err := tx.SetMeta(ctx, storage.MetaAckedSeq, ackedSeq, ""); err != nil {
		return err
	}
	if err := tx.SetMeta(ctx, storage.MetaStaleRefused, s.staleRefused.Load(), ""); err != nil {
		return err
	}
	if err := s.persistView(ctx, tx); err != nil {
		return err
	}
	return s.trim(ctx, tx, seq)
}

// trim drops entry bodies that fell out of the window, every 1,024 seqs (a short range each
// time, so the cost does not grow with the history).
func (s *server) trim(ctx context.Context, tx *storage.Tx, seq int64) error {
	if seq/1024 != s.lastSeq/1024 && seq > entriesKept {
		return tx.TrimEntries(ctx, seq-entriesKept-4*1024, seq-entriesKept)
	}
	return nil
}

// decide turns one business op into an entry (nil when it changes nothing) and its result.
// The error is an operating error that fails the whole batch; business errors go in the result.
func (s *server) decide(ctx context.Context, tx *storage.Tx, v view, o *op, seq int64) (*entry, result, error) {
	if o.kind == opTCC {
		return s.decideTCC(ctx, tx, v, o, seq)
	}
	stale, err := s.fenceWrite(v, o.epoch)
	if err != nil {
		return nil, result{err: err}, nil
	}
	e := &entry{Seq: seq, Epoch: v.Epoch, Stale: stale, Run: o.run}
	if stale {
		e.Epoch = o.epoch
	}
	if o.kind == opOpen {
		return s.decideOpen(ctx, tx, e, o.accounts)
	}
	in, err := tx.PayInputs(ctx, o.pay.Key, o.pay.FromUID, o.pay.ToUID)
	if err != nil {
		return nil, result{}, err
	}
	if in.Recorded {
		rec, err := tx.Payment(ctx, o.pay.Key)
		switch {
		case err != nil:
			return nil, result{}, err
		case !(s.cfg.has(DefectForgetfulDedup) && rec.Seq <= s.forgetBelow):
			if err := ledger.Retry(rec.Outcome, o.pay); err != nil {
				return nil, result{err: err}, nil
			}
			return nil, result{outcome: rec.Outcome, seq: rec.Seq}, nil
		}
	}
	switch {
	case in.TCCKnown:
		return nil, result{err: fmt.Errorf("pay %q: a cross-unit transfer has the key: %w", o.pay.Key, ledger.ErrIdempotencyConflict)}, nil
	case !in.FromOK || !in.ToOK:
		return nil, result{err: fmt.Errorf("pay %q: %w", o.pay.Key, ledger.ErrUnknownAccount)}, nil
	}
	out := ledger.Decide(o.pay, in.FromMinor)
	e.Kind, e.Payment = kindPay, &out
	return e, result{outcome: out, seq: seq}, nil
}

func (s *server) decideOpen(ctx context.Context, tx *storage.Tx, e *entry, accounts []ledger.Account) (*entry, result, error) {
	var fresh []ledger.Account
	for _, a := range accounts {
		_, openedMinor, err := tx.Account(ctx, a.UID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			fresh = append(fresh, a)
		case err != nil:
			return nil, result{}, err
		default:
			if err := ledger.Opening(openedMinor, true, a); err != nil {
				return nil, result{err: err}, nil
			}
		}
	}
	if len(fresh) == 0 {
		return nil, result{}, nil
	}
	opened, err := s.openedMinor(ctx, tx)
	if err != nil {
		return nil, result{}, err
	}
	if err := ledger.OpeningsWithin(opened, fresh); err != nil {
		return nil, result{err: err}, nil // keeps every balance and audit sum within int64
	}
	e.Kind, e.Accounts = kindOpen, fresh
	return e, result{created: len(fresh), seq: e.Seq}, nil
}

// fenceWrite checks a business write's epoch against the replica's: an older one is refused, or
// accepted and marked stale under the no-fencing defect.
func (s *server) fenceWrite(v view, reqEpoch int64) (stale bool, err error) {
	if reqEpoch == 0 || reqEpoch >= v.Epoch {
		return false, nil
	}
	if s.cfg.has(DefectNoFencing) {
		return true, nil
	}
	s.staleRefused.Add(1)
	s.metrics.staleRefused.Inc()
	return false, fmt.Errorf("write under epoch %d at epoch %d: %w", reqEpoch, v.Epoch, ErrStaleEpoch)
}

// setHead records a committed history head.
// openedAtHead is the money opened in the books (the accounts' opening balances) at one head
// of their history, kept by the writer so that opening an account does not sum the accounts
// table each time (a few ms for 25,000 accounts). A head is its seq and its chain: equal chains
// are one history, so a books changed by any other path (a standby's apply, a rewind, a
// snapshot) never match it, and are summed again.
type openedAtHead struct {
	known bool
	seq   int64
	chain string
	minor int64
}

// openedMinor is the money opened in the books and in tx's pending accounts.
func (s *server) openedMinor(ctx context.Context, tx *storage.Tx) (int64, error) {
	if c := s.opened; c.known && c.seq == s.lastSeq && c.chain == s.chain {
		return c.minor + tx.PendingOpenedMinor(), nil
	}
	sum, err := tx.OpenedMinor(ctx)
	if err != nil {
		return 0, err
	}
	s.opened = openedAtHead{known: true, seq: s.lastSeq, chain: s.chain, minor: sum - tx.PendingOpenedMinor()}
	return sum, nil
}

// advanceOpened carries the opened money from the head a transaction began at to the head it
// committed, adding opening, the money of the accounts it opened.
func (s *server) advanceOpened(fromSeq int64, fromChain string, opening int64) {
	if c := s.opened; c.known && c.seq == fromSeq && c.chain == fromChain {
		s.opened = openedAtHead{known: true, seq: s.lastSeq, chain: s.chain, minor: c.minor + opening}
	}
}

func (s *server) setHead(seq int64, chain string) {
	s.lastSeq, s.chain = seq, chain
	s.committed.Store(seq)
	s.metrics.lastSeq.Set(float64(seq))
}
