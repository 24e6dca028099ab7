package unit

import (
	"context"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/target/ledger"
)

// configRequest is the body of POST /internal/config, from the core zone leader.
type configRequest struct {
	Epoch       int64  `json:"epoch"`
	Role        string `json:"role"`
	StandbyAddr string `json:"standby_addr"`
}

// configure applies a configuration from the core zone (in the writer, so it is ordered with
// every write). A configuration older than the replica's epoch is refused, and so is one that
// contradicts it: primary and standby swapped under the same epoch, or primary for a replica
// still catching up.
func (s *server) configure(ctx context.Context, c *configRequest) result {
	v := s.view()
	switch {
	case c.Role != ledger.RolePrimary && c.Role != ledger.RoleStandby && c.Role != ledger.RoleCatchingUp:
		return result{err: fmt.Errorf("configure role %q: %w", c.Role, ErrInvalidConfig)}
	case c.Epoch < v.Epoch:
		s.staleRefused.Add(1)
		return result{err: fmt.Errorf("configure under epoch %d at epoch %d: %w", c.Epoch, v.Epoch, ErrStaleEpoch)}
	case c.Epoch == v.Epoch && c.Role != v.Role && c.Role != ledger.RoleCatchingUp && v.Role != ledger.RoleCatchingUp:
		return result{err: fmt.Errorf("configure %s under epoch %d, already %s under it: %w", c.Role, c.Epoch, v.Role, ErrInvalidConfig)}
	case c.Role == ledger.RolePrimary && v.Role == ledger.RoleCatchingUp:
		return result{err: fmt.Errorf("configure primary while catching up: %w", ErrInvalidConfig)}
	}
	next := view{Role: c.Role, Epoch: c.Epoch}
	if c.Role == ledger.RolePrimary {
		next.StandbyAddr = c.StandbyAddr
	}
	s.mu.Lock()
	s.v = next
	s.mu.Unlock()
	switch {
	case c.Role == ledger.RolePrimary && v.Role != ledger.RolePrimary:
		// Promoted: the whole history here is durable and may be acknowledged; the replicator
		// starts the new standby (if any) from its own head, with nothing of an earlier term.
		s.drainShip()
		s.replicated.reset(s.lastSeq)
		s.forgetBelow = s.lastSeq
	case c.Role != ledger.RolePrimary && v.Role == ledger.RolePrimary:
		s.replicated.fail(fmt.Errorf("demoted under epoch %d: %w", c.Epoch, ErrFenced))
	}
	s.viewChanged(ctx)
	if err := s.persistNow(ctx); err != nil {
		return result{err: err}
	}
	if next.Role == ledger.RolePrimary && next.StandbyAddr != "" && next.StandbyAddr != v.StandbyAddr {
		s.syncStandby()
	}
	s.log.Info("configured", "role", next.Role, "epoch", next.Epoch, "standby", next.StandbyAddr)
	if next.Role == ledger.RoleCatchingUp {
		s.startCatchUp(ctx)
	}
	return result{}
}

// persistNow writes the view in its own transaction.
func (s *server) persistNow(ctx context.Context) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.persistView(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// applyReplicated applies a batch from the primary in one transaction (group commit on the
// standby side), after fencing: a batch from an epoch older than this replica's is refused, so
// a replaced primary can never get an acknowledgement again.
func (s *server) applyReplicated(ctx context.Context, req *replicateRequest) result {
	v := s.view()
	head := replicateResponse{LastSeq: s.lastSeq, Chain: s.chain}
	stale := req.Epoch < v.Epoch
	if !s.cfg.has(DefectNoFencing) {
		if stale {
			s.staleRefused.Add(1)
			s.metrics.staleRefused.Inc()
			return result{err: fmt.Errorf("replicate under epoch %d at epoch %d: %w", req.Epoch, v.Epoch, ErrStaleEpoch), last: head}
		}
		if v.Role != ledger.RoleStandby {
			return result{err: fmt.Errorf("replicate to a %s: %w", v.Role, ErrNotStandby), last: head}
		}
	}
	if req.Epoch > v.Epoch && v.Role == ledger.RoleStandby {
		// A primary of a newer configuration that includes this standby (its own config may
		// still be on its way): adopt the epoch, so older primaries are refused from now on.
		s.mu.Lock()
		s.v.Epoch = req.Epoch
		s.mu.Unlock()
		s.viewChanged(ctx)
	}
	bodies, err := s.skipApplied(ctx, req)
	if err != nil {
		if errors.Is(err, ErrDiverged) && v.Role == ledger.RoleStandby && !s.cfg.has(DefectNoFencing) {
			s.divergedStandby(ctx, req, err)
		}
		return result{err: err, last: head}
	}
	if err := s.applyBodies(ctx, bodies, stale); err != nil {
		return result{err: err, last: replicateResponse{LastSeq: s.lastSeq, Chain: s.chain}}
	}
	s.metrics.applied(len(bodies))
	return result{last: replicateResponse{LastSeq: s.lastSeq, Chain: s.chain}}
}

// skipApplied checks that the batch continues this replica's history and drops the entries it
// already holds (a primary retrying after a lost answer).
func (s *server) skipApplied(ctx context.Context, req *replicateRequest) ([]entryBody, error) {
	if req.FromSeq > s.lastSeq+1 {
		return nil, &gapError{head: replicateResponse{LastSeq: s.lastSeq, Chain: s.chain}}
	}
	if req.FromSeq < 1 {
		return nil, fmt.Errorf("replicate from seq %d: %w", req.FromSeq, ErrDiverged)
	}
	mine, err := s.chain, error(nil)
	if req.FromSeq <= s.lastSeq {
		mine, err = s.db.ChainAt(ctx, req.FromSeq-1)
	}
	if err != nil {
		return nil, fmt.Errorf("replicate from %d: read the chain before it (%v): %w", req.FromSeq, err, ErrDiverged)
	}
	if mine != req.PrevChain {
		return nil, fmt.Errorf("replicate from %d: the chain before it differs: %w", req.FromSeq, ErrDiverged)
	}
	chain := req.PrevChain
	out := make([]entryBody, 0, len(req.Entries))
	for i, body := range req.Entries {
		seq := req.FromSeq + int64(i)
		chain = chainNext(chain, body)
		if seq > s.lastSeq {
			out = append(out, entryBody{seq: seq, body: body})
			continue
		}
		held, err := s.db.ChainAt(ctx, seq)
		if err != nil || held != chain {
			return nil, fmt.Errorf("replicate seq %d: held entry differs: %w", seq, ErrDiverged)
		}
	}
	return out, nil
}

type entryBody struct {
	seq  int64
	body []byte
}

func (s *server) applyBodies(ctx context.Context, bodies []entryBody, stale bool) error {
	if len(bodies) == 0 {
		return nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	seq, chain := s.lastSeq, s.chain
	var written tally
	for _, eb := range bodies {
		e, err := decodeEntry(eb.body)
		if err != nil {
			return err
		}
		if e.Seq != eb.seq || e.Seq != seq+1 {
			return fmt.Errorf("apply entry %d at seq %d: %w", e.Seq, seq+1, ErrDiverged)
		}
		chain = chainNext(chain, eb.body)
		if err := apply(ctx, tx, e, eb.body, stale || e.Stale, chain); err != nil {
			return err
		}
		seq++
		written.add(e, s.planeOf())
	}
	if err := s.persistLeaks(ctx, tx, written); err != nil {
		return err
	}
	if err := s.persistView(ctx, tx); err != nil {
		return err
	}
	if err := s.trim(ctx, tx, seq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.setHead(seq, chain)
	s.counted(written)
	return nil
}

// divergedStandby reacts to a batch that does not fit this standby's history (it holds entries
// its primary never had, or missed entries the primary no longer keeps): it leaves the
// configuration and catches up from the primary's snapshot.
func (s *server) divergedStandby(ctx context.Context, req *replicateRequest, cause error) {
	s.log.Warn("history diverged from the primary's; catching up", "primary", req.Primary, "cause", cause)
	s.mu.Lock()
	s.v.Role = ledger.RoleCatchingUp
	if req.Primary != "" {
		s.primaryHint = req.Primary
	}
	s.mu.Unlock()
	s.viewChanged(ctx)
	s.startCatchUp(ctx)
}

// drainShip drops the batches of an earlier term still queued for the replicator.
func (s *server) drainShip() {
	for {
		select {
		case <-s.ship:
		default:
			return
		}
	}
}

// syncStandby queues an empty batch, so a new standby is brought up to the head now rather than
// at the next write (the replicator fills its gap from the stored entries).
func (s *server) syncStandby() {
	select {
	case s.ship <- &batch{fromSeq: s.lastSeq + 1, lastSeq: s.lastSeq, prevChain: s.chain}:
	default: // batches are queued: the first of them does it
	}
}
