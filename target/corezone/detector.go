package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"
)

// Failure detection (PROTOCOL.md): the leader polls each unit's primary every probeInterval,
// each poll bounded by probeTimeout, and fails over after failuresMax consecutive failures, or
// after refusalsMax consecutive refused connections: nothing listens on the primary's port, the
// process is gone (a paused or overloaded one still accepts and times out instead).
const (
	probeInterval   = 100 * time.Millisecond
	probeTimeout    = 300 * time.Millisecond
	failuresMax     = 3
	refusalsMax     = 2
	standbyFreshMax = time.Second // a standby silent for longer is not promoted
	// watchGrace: a primary that has not answered a new watcher yet (the target is starting,
	// or this replica just became the leader) is failed over only after this long, so that a
	// unit process still starting up is not taken for a dead one.
	watchGrace    = 2 * time.Second
	configRetries = 40 // a config push is retried for about configRetries × probeInterval/2
	replyBytesMax = 64 << 10
)

// Role values of GET /internal/state.
const (
	RolePrimary    = "primary"
	RoleStandby    = "standby"
	RoleCatchingUp = "catching_up"
)

// ReplicaState is a unit replica's answer to GET /internal/state.
type ReplicaState struct {
	Unit    string `json:"unit"`
	Replica string `json:"replica"`
	Role    string `json:"role"`
	Epoch   uint64 `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
}

// ReplicaConfig is the body of POST /internal/config.
type ReplicaConfig struct {
	Epoch       uint64 `json:"epoch"`
	Role        string `json:"role"`
	StandbyAddr string `json:"standby_addr"`
}

// watch is what the leader remembers about one unit between polls.
type watch struct {
	primary  string    // the primary the counters refer to
	failures int       // consecutive failed polls of the primary
	refusals int       // consecutive polls of those whose connection was refused
	lastOK   time.Time // last answer of the primary
	// The sync guard: add-standby puts a standby in the configuration before the primary has
	// shipped it what it acknowledged alone. The leader marks the standby synced (through
	// Raft, so a new leader knows) once it sees it at or past the primary's last seq as first
	// observed at the unit's epoch: every payment acknowledged after that observation was
	// replicated before its ack.
	epoch         uint64
	syncSeq       int64 // -1: not observed yet at this epoch
	standbyLastOK time.Time
	started       time.Time // when this watcher started
	answered      bool      // a primary answered this watcher at least once
}

// watchUnit polls one unit's replicas until ctx ends: it pushes the configuration to replicas
// that lag behind the routing table and fails over when the primary stops answering.
func (n *node) watchUnit(ctx context.Context, name string) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	w := &watch{syncSeq: -1, started: time.Now()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u, ok := n.fsm.current().Units[name]
		if !ok {
			return
		}
		n.check(ctx, name, u, w)
	}
}

// check is one round of watchUnit.
func (n *node) check(ctx context.Context, name string, u Unit, w *watch) {
	now := time.Now()
	if u.Primary != w.primary {
		w.primary, w.failures, w.refusals, w.lastOK = u.Primary, 0, 0, now
	}
	if u.Epoch != w.epoch {
		w.epoch, w.syncSeq = u.Epoch, -1
	}
	ps, perr := n.probe(ctx, u.PrimaryAddr())
	var ss ReplicaState
	serr := errors.New("no standby")
	if u.Standby != "" {
		ss, serr = n.probe(ctx, u.StandbyAddr())
		if serr == nil {
			w.standbyLastOK = time.Now()
		}
	}
	if perr != nil {
		if !w.answered && time.Since(w.started) < watchGrace {
			return
		}
		w.failures++
		w.refusals++
		if !refused(perr) {
			w.refusals = 0
		}
		n.metrics.probeFailures.WithLabelValues(name).Inc()
		if w.failures >= failuresMax || w.refusals >= refusalsMax {
			n.failover(ctx, name, u, w)
		}
		return
	}
	w.failures, w.refusals, w.lastOK, w.answered = 0, 0, time.Now(), true
	// Standby first: after add-standby it must accept the new epoch before the primary ships.
	if serr == nil && (ss.Epoch < u.Epoch || ss.Role != RoleStandby) && ss.Role != RoleCatchingUp {
		n.push(ctx, name, u.StandbyAddr(), ReplicaConfig{Epoch: u.Epoch, Role: RoleStandby})
	}
	if ps.Role == RoleCatchingUp {
		// Never hand the primary role to a replica without a full copy of the data.
		n.log.Warn("configured primary is catching up", "unit", name, "primary", u.Primary)
		return
	}
	if ps.Epoch < u.Epoch || ps.Role != RolePrimary {
		if n.push(ctx, name, u.PrimaryAddr(), ReplicaConfig{Epoch: u.Epoch, Role: RolePrimary, StandbyAddr: primaryStandbyAddr(u)}) != nil {
			return
		}
		// Observe the primary at its new epoch now rather than a poll later: the sync guard
		// below starts from this observation.
		if ps, perr = n.probe(ctx, u.PrimaryAddr()); perr != nil || ps.Epoch != u.Epoch {
			return
		}
		if u.Standby != "" {
			ss, serr = n.probe(ctx, u.StandbyAddr())
		}
	}
	if ps.Epoch == u.Epoch && w.syncSeq < 0 {
		w.syncSeq = ps.LastSeq
	}
	if !u.StandbySynced && u.StandbyOK && w.syncSeq >= 0 && serr == nil && ss.Epoch == u.Epoch && ss.Role == RoleStandby && ss.LastSeq >= w.syncSeq {
		if _, err := n.apply(Command{Op: OpSynced, Unit: name, Epoch: u.Epoch}); err != nil {
			n.log.Warn("mark standby synced", "unit", name, "err", err)
		}
	}
}

// primaryStandbyAddr is where the primary replicates: nowhere when its standby is out.
func primaryStandbyAddr(u Unit) string {
	if !u.StandbyOK {
		return ""
	}
	return u.StandbyAddr()
}

// failover promotes the standby of a unit whose primary stopped answering, when it is safe.
func (n *node) failover(ctx context.Context, name string, u Unit, w *watch) {
	switch {
	case u.Standby == "" || !u.StandbyOK:
		n.logEvery(w, "primary down, no promotable standby", name, u)
		return
	case !u.StandbySynced:
		n.logEvery(w, "primary down, standby not seen in sync at this epoch", name, u)
		return
	case time.Since(w.standbyLastOK) > standbyFreshMax:
		n.logEvery(w, "primary down, standby silent too", name, u)
		return
	}
	nu, err := n.apply(Command{Op: OpPromote, Unit: name, Epoch: u.Epoch})
	if err != nil {
		n.log.Warn("promote", "unit", name, "err", err)
		return
	}
	n.log.Info("promoted", "unit", name, "primary", nu.Primary, "epoch", nu.Epoch)
	cfg := ReplicaConfig{Epoch: nu.Epoch, Role: RolePrimary}
	for i := 0; i < configRetries && ctx.Err() == nil; i++ {
		if n.push(ctx, name, nu.PrimaryAddr(), cfg) == nil {
			break
		}
		sleep(ctx, probeInterval/2)
	}
	elapsed := time.Since(w.lastOK)
	n.metrics.failovers.WithLabelValues(name).Inc()
	n.metrics.failoverSeconds.Observe(elapsed.Seconds())
	n.metrics.lastFailover.WithLabelValues(name).Set(elapsed.Seconds())
	if _, err := n.apply(Command{Op: OpFailoverTime, Unit: name, FailoverMS: elapsed.Milliseconds()}); err != nil {
		n.log.Warn("record failover time", "unit", name, "err", err)
	}
	w.primary, w.failures, w.refusals, w.lastOK = nu.Primary, 0, 0, time.Now()
}

// logEvery logs a stuck failover once per failuresMax polls, not on every poll.
func (n *node) logEvery(w *watch, msg, name string, u Unit) {
	if w.failures%(failuresMax*10) == failuresMax {
		n.log.Warn(msg, "unit", name, "primary", u.Primary, "standby", u.Standby, "epoch", u.Epoch)
	}
}

// probe asks a replica for its state, within probeTimeout.
func (n *node) probe(ctx context.Context, addr string) (ReplicaState, error) {
	var st ReplicaState
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/internal/state", nil)
	if err != nil {
		return st, fmt.Errorf("probe %s: %w", addr, err)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return st, fmt.Errorf("probe %s: %w", addr, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("probe %s: status %d", addr, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, replyBytesMax)).Decode(&st); err != nil {
		return st, fmt.Errorf("probe %s: decode: %w", addr, err)
	}
	return st, nil
}

// refused reports whether a probe failed because its connection was refused.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// push sends a configuration to a replica, within probeTimeout.
func (n *node) push(ctx context.Context, unit, addr string, cfg ReplicaConfig) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/config", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("push config to %s: %w", addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		n.log.Warn("push config", "unit", unit, "addr", addr, "err", err)
		return fmt.Errorf("push config to %s: %w", addr, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		n.log.Warn("push config refused", "unit", unit, "addr", addr, "status", resp.StatusCode, "body", string(body))
		return fmt.Errorf("push config to %s: status %d", addr, resp.StatusCode)
	}
	n.log.Info("pushed config", "unit", unit, "addr", addr, "epoch", cfg.Epoch, "role", cfg.Role, "standby", cfg.StandbyAddr)
	return nil
}

// drain reads what is left of a body (bounded) so the connection can be reused, then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, replyBytesMax))
	rc.Close()
}
