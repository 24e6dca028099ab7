package corezone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Timing of the Raft group, tighter than the library's defaults (1 s) so that a killed core
// leader is replaced in about a second on loopback; loose enough for a busy 2-core machine: with
// cross-unit payments on the log, a 150 ms lease made an overloaded leader step down every few
// seconds (each time failing the transfers in flight).
//
// raftCommitTimeout is how long the leader's replication loop waits for a new entry before it
// sends each follower an AppendEntries anyway, which tells followers the commit index. The
// leader commits (and answers an apply) as soon as a majority has an entry, whatever it is, and
// every read of the state machine is the leader's (followers forward), so it bounds only how
// stale a follower's copy is. At 5 ms an idle zone sent ~270 RPCs/s, each reading the log from
// bolt: half of the core zone's idle CPU. The library's default, 50 ms, costs a tenth of that.
const (
	raftHeartbeatTimeout = 500 * time.Millisecond
	raftElectionTimeout  = 500 * time.Millisecond
	raftLeaderLease      = 400 * time.Millisecond
	raftCommitTimeout    = 50 * time.Millisecond
	raftApplyTimeout     = 2 * time.Second
	raftTransportTimeout = 2 * time.Second
	raftPoolMax          = 3
	raftLogCached        = 1_024 // most recent log entries kept in memory
	raftSnapshotsKept    = 2
	leaderCheckInterval  = 50 * time.Millisecond
	shutdownGrace        = 2 * time.Second
	peersMax             = 7
)

// Config configures one core zone replica.
type Config struct {
	// ID is this replica's Raft server id ("1", "2", "3").
	ID string
	// DataDir holds the Raft log (wal/, logstore.go) and snapshots.
	DataDir string
	// HTTPAddr is where the core HTTP API listens.
	HTTPAddr string
	// RaftAddr is where the Raft transport listens.
	RaftAddr string
	// Peers lists every replica of the group, this one included.
	Peers []Peer
	// Seeds is the initial unit layout; the first leader applies it once.
	Seeds []UnitSeed
	// Log receives the replica's log lines (nil: discarded).
	Log io.Writer
}

// Peer is a replica of the group.
type Peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Validate reports what is wrong with cfg.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.ID == "" || cfg.DataDir == "" || cfg.HTTPAddr == "" || cfg.RaftAddr == "" {
		errs = append(errs, errors.New("id, data dir, http and raft addresses are required"))
	}
	if len(cfg.Peers) == 0 || len(cfg.Peers) > peersMax {
		errs = append(errs, fmt.Errorf("%d peers, want 1..%d", len(cfg.Peers), peersMax))
	}
	self := false
	for _, p := range cfg.Peers {
		if p.ID == "" || p.RaftAddr == "" || p.HTTPAddr == "" {
			errs = append(errs, fmt.Errorf("peer %+v: id, raft and http addresses are required", p))
		}
		self = self || p.ID == cfg.ID
	}
	if !self {
		errs = append(errs, fmt.Errorf("peers do not include this replica %q", cfg.ID))
	}
	if err := CheckSeeds(cfg.Seeds); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// node is one running replica.
type node struct {
	cfg     Config
	raft    *raft.Raft
	fsm     *fsm
	log     *slog.Logger
	metrics *metrics
	http    *http.Client
	tcc     *coordinator
}

// Run runs one core zone replica until ctx is cancelled, then shuts it down.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("check core config: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create core data dir: %w", err)
	}
	n := &node{
		cfg:     cfg,
		fsm:     &fsm{},
		log:     slog.New(slog.NewTextHandler(cfg.Log, nil)).With("core", cfg.ID),
		metrics: newMetrics(),
		http:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}},
	}
	n.tcc = newCoordinator(n)
	defer n.tcc.closeLanes() // last: after every goroutine that sends steps
	defer n.http.CloseIdleConnections()
	defer n.tcc.http.CloseIdleConnections()
	closeRaft, err := n.startRaft()
	if err != nil {
		return err
	}
	defer closeRaft()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen core http: %w", err)
	}
	srv := &http.Server{Handler: n.routes(), ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	// The server goroutine ends when Shutdown below closes the listener.
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("serve core http", "err", err)
		}
	})
	n.log.Info("core replica up", "http", cfg.HTTPAddr, "raft", cfg.RaftAddr)
	n.watchLeadership(ctx) // blocks until ctx is done
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	n.tcc.finishing.Wait() // after the handlers that start them
	return nil
}

// startRaft opens the log and snapshot stores, bootstraps the group on first start, and starts
// Raft. The returned func shuts Raft down and closes the stores.
func (n *node) startRaft() (func(), error) {
	cfg := n.cfg
	rlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: cfg.Log})
	store, err := openLogStore(cfg.DataDir, rlog)
	if err != nil {
		return nil, err
	}
	// The leader sends followers the entries it has just written from memory, not read back
	// from the log and decoded one by one (6% of the leader's CPU under cross-unit load).
	logs, err := raft.NewLogCache(raftLogCached, store)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(cfg.DataDir, raftSnapshotsKept, cfg.Log)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open raft snapshots: %w", err)
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("resolve raft address: %w", err)
	}
	trans, err := raft.NewTCPTransport(cfg.RaftAddr, advertise, raftPoolMax, raftTransportTimeout, cfg.Log)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen raft: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = raftHeartbeatTimeout
	rc.ElectionTimeout = raftElectionTimeout
	rc.LeaderLeaseTimeout = raftLeaderLease
	rc.CommitTimeout = raftCommitTimeout
	rc.Logger = rlog
	closeAll := func() {
		trans.Close()
		store.Close()
	}
	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if !existing {
		servers := make([]raft.Server, 0, len(cfg.Peers))
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
		}
		// Every replica bootstraps with the same configuration: raft accepts that, and no
		// replica has to wait for another to start.
		if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			closeAll()
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, store, snaps, trans)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	return func() {
		if err := r.Shutdown().Error(); err != nil {
			n.log.Error("shut raft down", "err", err)
		}
		closeAll()
	}, nil
}

// watchLeadership runs the leader's duties (initialization, failure detection) while this
// replica leads, and stops them when it does not. It returns when ctx is done, after the duties
// it started have ended.
func (n *node) watchLeadership(ctx context.Context) {
	t := time.NewTicker(leaderCheckInterval)
	defer t.Stop()
	var (
		stop func()
		wg   sync.WaitGroup
	)
	end := func() {
		if stop != nil {
			stop()
			wg.Wait()
			stop = nil
		}
	}
	defer end()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		leading := n.raft.State() == raft.Leader
		n.metrics.leader.Set(b2f(leading))
		n.metrics.epoch.Set(float64(n.fsm.current().Epoch))
		switch {
		case leading && stop == nil:
			lctx, cancel := context.WithCancel(ctx)
			stop = cancel
			// The duties end when leadership is lost (end above) or ctx is done.
			wg.Go(func() { n.lead(lctx) })
		case !leading && stop != nil:
			end()
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// lead runs while this replica is the leader: it makes sure the state machine is current and
// initialized, then watches every unit until ctx ends.
func (n *node) lead(ctx context.Context) {
	n.log.Info("leading", "term", n.raft.CurrentTerm())
	for ctx.Err() == nil {
		if err := n.raft.Barrier(raftApplyTimeout).Error(); err != nil {
			n.log.Warn("barrier", "err", err)
			sleep(ctx, leaderCheckInterval)
			continue
		}
		if n.fsm.current().Initialized() {
			break
		}
		_, err := n.apply(Command{Op: OpInit, Seeds: n.cfg.Seeds})
		if err != nil && !errors.Is(err, ErrInitialized) {
			n.log.Warn("initialize routing", "err", err)
			sleep(ctx, leaderCheckInterval)
		}
	}
	var wg sync.WaitGroup
	for name := range n.fsm.current().Units {
		// Each watcher ends with ctx (leadership lost or replica stopping).
		wg.Go(func() { n.watchUnit(ctx, name) })
	}
	wg.Go(func() { n.tcc.lead(ctx) }) // recovery of transfers; ends with ctx
	wg.Wait()
}

// apply replicates c through Raft and returns the unit it affected.
func (n *node) apply(c Command) (Unit, error) {
	res, err := n.commit(c)
	return res.unit, err
}

// commit replicates c through Raft and returns the state machine's answer.
func (n *node) commit(c Command) (applyResult, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return applyResult{}, fmt.Errorf("encode command: %w", err)
	}
	f := n.raft.Apply(b, raftApplyTimeout)
	if err := f.Error(); err != nil {
		n.metrics.commands.WithLabelValues(string(c.Op), "raft_error").Inc()
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return applyResult{}, fmt.Errorf("apply %s: %w: %w", c.Op, ErrNotLeader, err)
		}
		return applyResult{}, fmt.Errorf("apply %s: %w", c.Op, err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("apply %s: unexpected response %T", c.Op, f.Response())
	}
	result := "ok"
	if res.err != nil {
		result = "refused"
	}
	n.metrics.commands.WithLabelValues(string(c.Op), result).Inc()
	return res, res.err
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
