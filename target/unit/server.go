package unit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// Limits of a replica.
const (
	// opsQueueMax bounds the requests waiting for the writer.
	opsQueueMax = 8_192
	// batchWeightMax bounds one group-committed batch: a payment weighs 1, an opened account 1.
	batchWeightMax = 4_096
	// shipQueueMax bounds the committed batches waiting to be replicated (the pipeline depth
	// between the writer and the replicator; with async replication, the window of loss).
	shipQueueMax = 64
	// entriesPerRequestMax bounds the entries of one replication request when filling a gap.
	entriesPerRequestMax = 4_096
	// entriesKept is the window of entry bodies kept to bring a standby up to date.
	entriesKept = 200_000
	// requestTimeout bounds a business request inside the unit.
	requestTimeout = 10 * time.Second
	// replicateTimeout bounds one replication round trip (a batch may hold 10,000 accounts);
	// replicateFailAfter is how long the primary retries a standby that refuses connections or
	// fails before it asks the core zone to drop it.
	replicateTimeout   = 10 * time.Second
	replicateFailAfter = 1 * time.Second
	// coreTimeout bounds one request to the core zone.
	coreTimeout = 2 * time.Second
	// shutdownTimeout bounds the HTTP server's stop.
	shutdownTimeout = 2 * time.Second
)

// view is the replica's configuration, replaced whole under server.mu.
type view struct {
	Role        string
	Epoch       int64
	StandbyAddr string
}

// server is one running replica. The writer goroutine owns the database's writer connection
// and the history head; the replicator goroutine owns shipping; mu guards the view.
type server struct {
	cfg      Config
	batchMax int
	log      *slog.Logger
	db       *storage.DB
	addr     string
	client   *http.Client
	metrics  *metrics

	ops  chan *op    // handlers → writer
	ship chan *batch // writer → replicator

	mu          sync.Mutex
	v           view
	catching    bool   // a catch-up goroutine runs
	primaryHint string // the primary that last replicated here, for a catch-up

	replicated *progress // acknowledged history: what clients may be told

	// Owned by the writer goroutine.
	lastSeq     int64
	chain       string
	persisted   view
	forgetBelow int64 // forgetful-dedup: records at or below this seq are not consulted
	opened      openedAtHead

	committed    atomic.Int64 // the writer's last seq, for readers
	staleRefused atomic.Int64 // writes refused under a stale epoch

	bg sync.WaitGroup // catch-up goroutines, waited for by run

	// halt stops the whole process (both planes) with an error, set by run (and by openPlane
	// for the shadow plane): the writer's way out when its history head in memory may no
	// longer be the database's (writer.go, failStop).
	halt func(error)

	js        jsRef        // the relay's JetStream handle, nil while disconnected
	published atomic.Int64 // the relay's cursor: the last seq published

	planeState // production or shadow, and the shadow plane of a production server (plane.go)
}

func newServer(ctx context.Context, cfg Config) (*server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("unit", cfg.Unit, "replica", cfg.Replica)
	db, err := storage.OpenAt(ctx, cfg.Place())
	if err != nil {
		return nil, fmt.Errorf("open unit database: %w", err)
	}
	st, err := db.State(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read unit state: %w", err)
	}
	if err := checkStart(cfg, st); err != nil {
		db.Close()
		return nil, err
	}
	s := &server{
		cfg: cfg, log: log, db: db, batchMax: cmp.Or(cfg.BatchMax, batchWeightMax),
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
		metrics: newMetrics(),
		ops:     make(chan *op, opsQueueMax),
		ship:    make(chan *batch, shipQueueMax),
		v:       view{Role: cfg.Role, Epoch: max(cfg.Epoch, st.Epoch), StandbyAddr: cfg.StandbyAddr},
		lastSeq: st.LastSeq, chain: st.Chain,
		persisted:  view{Role: st.Role, Epoch: st.Epoch},
		planeState: planeState{plane: cfg.plane},
	}
	s.committed.Store(st.LastSeq)
	s.staleRefused.Store(st.StaleRefused)
	if s.v.Role != ledger.RolePrimary {
		s.v.StandbyAddr = ""
	}
	s.forgetBelow = st.LastSeq
	// What the standby is known to hold is the acknowledged head persisted with the last batch,
	// not the local head: a primary killed between its commit and the standby's ack restarts
	// with a tail the standby may lack. That tail counts as replicated (a retry of it
	// acknowledged, its events published) only once shipped: syncStandby fills the standby and
	// moves the head; alone, the first ship attempt moves it at once.
	s.replicated = newProgress(min(st.AckedSeq, st.LastSeq))
	if s.v.Role == ledger.RolePrimary {
		s.syncStandby()
	}
	if err := s.persistIdentity(ctx, st); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkStart refuses a start that contradicts the replica's own history: a primary under an
// epoch older than one it already saw could accept writes a newer primary also accepts.
func checkStart(cfg Config, st storage.State) error {
	if cfg.Role == ledger.RolePrimary && cfg.Epoch < st.Epoch {
		return fmt.Errorf("start %s/%s as primary under epoch %d, already at %d: %w",
			cfg.Unit, cfg.Replica, cfg.Epoch, st.Epoch, ErrStaleEpoch)
	}
	if (st.Unit != "" && st.Unit != cfg.Unit) || (st.Replica != "" && st.Replica != cfg.Replica) {
		return fmt.Errorf("start %s/%s on the database of %s/%s: %w", cfg.Unit, cfg.Replica, st.Unit, st.Replica, ErrInvalidConfig)
	}
	return nil
}

func (s *server) persistIdentity(ctx context.Context, st storage.State) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.SetMeta(ctx, storage.MetaUnit, 0, s.cfg.Unit); err != nil {
		return err
	}
	if err := tx.SetMeta(ctx, storage.MetaReplica, 0, s.cfg.Replica); err != nil {
		return err
	}
	if err := s.persistView(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// persistView writes the view into the transaction when it changed since the last write.
func (s *server) persistView(ctx context.Context, tx *storage.Tx) error {
	v := s.view()
	if v.Role != s.persisted.Role {
		if err := tx.SetMeta(ctx, storage.MetaRole, 0, v.Role); err != nil {
			return err
		}
	}
	if v.Epoch != s.persisted.Epoch {
		if err := tx.SetMeta(ctx, storage.MetaEpoch, v.Epoch, ""); err != nil {
			return err
		}
	}
	s.persisted = view{Role: v.Role, Epoch: v.Epoch}
	return nil
}

func (s *server) view() view {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}

// run serves until ctx is cancelled. It owns the writer, the replicator and the HTTP server.
func (s *server) run(ctx context.Context) error {
	defer s.db.Close()
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
		}
	}
	s.addr = ln.Addr().String()
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	s.halt = func(err error) { cancelCause(fmt.Errorf("%w: %w", ErrHalted, err)) }
	srv := &http.Server{
		Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }, // a stop ends every request
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.write(ctx) }()     // ends with ctx
	go func() { defer wg.Done(); s.replicate(ctx) }() // ends with ctx
	wg.Add(1)
	go func() { defer wg.Done(); s.resolveTCC(ctx) }() // ends with ctx
	if s.cfg.NATS != "" {
		wg.Add(1)
		go func() { defer wg.Done(); s.relay(ctx) }() // ends with ctx
	}
	if s.side != nil {
		first, err := s.side.openPlane(ctx) // before serving: ready from the first request, usually
		wg.Add(1)
		go func() { defer wg.Done(); s.runShadow(ctx, first, err) }() // ends with ctx
	}
	errc := make(chan error, 1)
	go func() { // ends when srv is shut down below
		defer wg.Done()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s: %w", s.addr, err)
		}
		cancel()
	}()
	s.viewChanged(ctx)
	if s.view().Role == ledger.RoleCatchingUp {
		s.startCatchUp(ctx)
	}
	s.log.Info("unit replica serving", "addr", s.addr, "role", s.view().Role, "epoch", s.view().Epoch)
	<-ctx.Done()
	s.replicated.fail(ErrStopped)
	stopCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer stop()
	if err := srv.Shutdown(stopCtx); err != nil {
		srv.Close()
	}
	wg.Wait()
	s.bg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, ErrHalted) {
		return cause
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
