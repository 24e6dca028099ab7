package unit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// replicateRequest is the body of POST /internal/replicate: entries from_seq.. of the primary's
// history, whose chain before from_seq is prev_chain.
type replicateRequest struct {
	Epoch     int64             `json:"epoch"`
	FromSeq   int64             `json:"from_seq"`
	PrevChain string            `json:"prev_chain"`
	Primary   string            `json:"primary"`
	Entries   []json.RawMessage `json:"entries"`
}

// replicateResponse is the standby's answer: its history head after the batch. A refusal carries
// the same head beside the error, so the primary can fill a gap.
type replicateResponse struct {
	LastSeq int64  `json:"last_seq"`
	Chain   string `json:"chain"`
}

// gapError is a standby's refusal of a batch that does not follow its history.
type gapError struct{ head replicateResponse }

func (g *gapError) Error() string { return fmt.Sprintf("standby at seq %d", g.head.LastSeq) }
func (g *gapError) Unwrap() error { return ErrSeqGap }

// replicate is the replicator goroutine: it ships committed batches to the standby in order and
// moves the acknowledged head. It ends when ctx is cancelled.
func (s *server) replicate(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-s.ship:
			s.shipBatch(ctx, s.coalesce(b))
		}
	}
}

// coalesce appends the batches queued behind b to it (up to entriesPerRequestMax entries): the
// standby then commits them in one transaction, which is group commit on its side.
func (s *server) coalesce(b *batch) *batch {
	for len(b.bodies) < min(entriesPerRequestMax, s.batchMax) { // BatchMax 1: no group commit anywhere
		select {
		case next := <-s.ship:
			assert(next.fromSeq == b.lastSeq+1, "queued batches are contiguous")
			b.bodies = append(b.bodies, next.bodies...)
			b.lastSeq = next.lastSeq
		default:
			return b
		}
	}
	return b
}

// assert panics on a programmer error.
func assert(cond bool, msg string) {
	if !cond {
		panic("unit: assertion failed: " + msg)
	}
}

// shipBatch gets b onto the standby, or the standby out of the configuration, or this primary
// fenced; only then does it return.
func (s *server) shipBatch(ctx context.Context, b *batch) {
	start, backoff := time.Now(), 5*time.Millisecond
	for ctx.Err() == nil {
		v := s.view()
		if v.Role != ledger.RolePrimary {
			return // fenced or demoted: the waiters were failed then
		}
		if v.StandbyAddr == "" {
			s.replicated.to(b.lastSeq)
			return
		}
		t0 := time.Now()
		err := s.send(ctx, v, b.fromSeq, b.prevChain, b.bodies)
		var gap *gapError
		switch {
		case err == nil:
			s.metrics.replicated(time.Since(t0), len(b.bodies))
			s.replicated.to(b.lastSeq)
			return
		case errors.Is(err, ErrStaleEpoch) && !s.cfg.has(DefectNoFencing) && !s.follower():
			s.stepDown(ctx, v, err)
			return
		case errors.As(err, &gap):
			if err = s.fill(ctx, v, gap.head, b.fromSeq-1); err == nil {
				continue
			}
		case !errors.Is(err, ErrNotStandby) && !errors.Is(err, ErrDiverged) && time.Since(start) < replicateFailAfter:
			s.log.Warn("replicate", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 200*time.Millisecond)
			continue
		}
		if s.follower() {
			// A shadow plane never changes the unit's configuration: it retries until the
			// production plane's (mirrored) view changes.
			sleep(ctx, backoff)
			backoff = min(2*backoff, 200*time.Millisecond)
			continue
		}
		s.log.Warn("standby cannot take the batch; dropping it", "standby", v.StandbyAddr, "err", err)
		if err := s.dropStandby(ctx, v); err != nil {
			if errors.Is(err, ErrStaleEpoch) && s.cfg.has(DefectNoFencing) {
				s.goAlone(v, err) // the defect: a replaced primary ignores that it was replaced
				continue
			}
			if errors.Is(err, ErrStaleEpoch) {
				s.stepDown(ctx, v, err)
				return
			}
			s.log.Error("drop standby", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// stepDown steps this primary down: a newer epoch exists, so nothing it holds beyond the
// acknowledged head may be acknowledged, and it must catch up before serving again.
func (s *server) stepDown(ctx context.Context, v view, cause error) {
	s.replicated.fail(fmt.Errorf("%w: %w", ErrFenced, cause))
	s.mu.Lock()
	changed := s.v.Role == ledger.RolePrimary && s.v.Epoch == v.Epoch
	if changed {
		s.v = view{Role: ledger.RoleCatchingUp, Epoch: v.Epoch}
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	s.viewChanged(ctx)
	s.metrics.fenced.Inc()
	s.log.Warn("fenced: a newer epoch replaced this primary", "epoch", v.Epoch, "cause", cause)
	s.startCatchUp(ctx)
}

// fill brings a standby whose history ends at head up to seq upTo from the stored entries.
func (s *server) fill(ctx context.Context, v view, head replicateResponse, upTo int64) error {
	if head.LastSeq > upTo {
		return fmt.Errorf("fill standby at %d beyond %d: %w", head.LastSeq, upTo, ErrDiverged)
	}
	mine, err := s.db.ChainAt(ctx, head.LastSeq)
	if err != nil || mine != head.Chain {
		return fmt.Errorf("fill standby at %d (chain %q, mine %q, %v): %w", head.LastSeq, head.Chain, mine, err, ErrDiverged)
	}
	seq, chain := head.LastSeq, head.Chain
	for seq < upTo {
		stored, err := s.db.Entries(ctx, seq+1, min(entriesPerRequestMax, int(upTo-seq)))
		if err != nil {
			return fmt.Errorf("fill standby from %d: %w", seq+1, err)
		}
		bodies := make([]json.RawMessage, len(stored))
		next := chain
		for i, e := range stored {
			bodies[i] = e.Body
			next = chainNext(next, e.Body)
		}
		if err := s.send(ctx, v, seq+1, chain, bodies); err != nil {
			return fmt.Errorf("fill standby from %d: %w", seq+1, err)
		}
		seq, chain = seq+int64(len(stored)), next
	}
	return nil
}

// send posts one replication request and maps the standby's refusals to errors.
func (s *server) send(ctx context.Context, v view, fromSeq int64, prevChain string, bodies []json.RawMessage) error {
	req := replicateRequest{Epoch: v.Epoch, FromSeq: fromSeq, PrevChain: prevChain, Primary: s.addr, Entries: bodies}
	var resp replicateResponse
	ctx, cancel := context.WithTimeout(ctx, replicateTimeout)
	defer cancel()
	return s.call(ctx, http.MethodPost, "http://"+v.StandbyAddr+"/internal/replicate", req, &resp)
}

// call does one JSON request to a peer. A refusal comes back as an *apiError wrapping the
// sentinel of its code.
func (s *server) call(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeAPIError(resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// responseBytesMax bounds a peer's answer read into memory.
const responseBytesMax = 1 << 20

// dropStandby asks the core zone to take the standby out of the unit's configuration under the
// epoch v; on success this primary continues alone under the new epoch.
func (s *server) dropStandby(ctx context.Context, v view) error {
	body := map[string]int64{"epoch": v.Epoch}
	var out struct {
		Epoch int64 `json:"epoch"`
	}
	err := s.core(ctx, http.MethodPost, "/v1/units/"+s.cfg.Unit+"/drop-standby", body, &out)
	var api *apiError
	if errors.As(err, &api) && api.status == http.StatusConflict {
		// The core zone refuses a stale request: a newer configuration replaced this primary.
		return fmt.Errorf("drop standby under epoch %d: %w: %w", v.Epoch, ErrStaleEpoch, err)
	}
	if err != nil {
		return fmt.Errorf("drop standby under epoch %d: %w", v.Epoch, err)
	}
	epoch := out.Epoch
	if epoch <= v.Epoch {
		u, err := s.routing(ctx)
		if err != nil {
			return fmt.Errorf("read epoch after drop: %w", err)
		}
		epoch = u.Epoch
	}
	s.mu.Lock()
	if s.v.Role == ledger.RolePrimary && s.v.Epoch == v.Epoch && epoch > v.Epoch {
		s.v = view{Role: ledger.RolePrimary, Epoch: epoch}
	}
	s.mu.Unlock()
	s.viewChanged(ctx)
	s.log.Warn("standby dropped; continuing alone", "epoch", epoch)
	return nil
}

// goAlone drops the standby locally without the core zone's consent: only the no-fencing defect
// does this (a zombie primary that keeps acknowledging).
func (s *server) goAlone(v view, cause error) {
	s.mu.Lock()
	if s.v.Role == ledger.RolePrimary && s.v.Epoch == v.Epoch {
		s.v.StandbyAddr = ""
	}
	s.mu.Unlock()
	s.log.Warn("no-fencing: continuing alone under a stale epoch", "epoch", v.Epoch, "cause", cause)
}

// unitConfig is a unit's entry in the core zone's routing state.
type unitConfig struct {
	Epoch     int64             `json:"epoch"`
	Primary   string            `json:"primary"`
	Standby   string            `json:"standby"`
	StandbyOK bool              `json:"standby_ok"`
	Addrs     map[string]string `json:"addrs"`
}

// routing reads this unit's configuration from the core zone.
func (s *server) routing(ctx context.Context) (unitConfig, error) {
	var state struct {
		Units map[string]unitConfig `json:"units"`
	}
	if err := s.core(ctx, http.MethodGet, "/v1/routing", nil, &state); err != nil {
		return unitConfig{}, err
	}
	u, ok := state.Units[s.cfg.Unit]
	if !ok {
		return unitConfig{}, fmt.Errorf("routing has no unit %q: %w", s.cfg.Unit, storage.ErrNotFound)
	}
	return u, nil
}

// core calls the core zone, trying each replica in turn (a follower redirects or proxies to the
// leader; a refusal from any of them is final).
func (s *server) core(ctx context.Context, method, path string, in, out any) error {
	if len(s.cfg.CoreAddrs) == 0 {
		return errors.New("no core zone configured")
	}
	var errs []error
	for _, addr := range s.cfg.CoreAddrs {
		cctx, cancel := context.WithTimeout(ctx, coreTimeout)
		err := s.call(cctx, method, "http://"+addr+path, in, out)
		cancel()
		var api *apiError
		if err == nil || errors.As(err, &api) && api.status/100 == 4 {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("call core zone %s: %w", path, errors.Join(errs...))
}
