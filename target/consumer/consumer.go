// Package consumer is one consumer group of paycell's events (ledger, settlement,
// notification) as its own process: a durable JetStream pull consumer that applies every event
// exactly once (the inbox row and the effect in one SQLite transaction, the ack after the
// commit), exposes its lag and rate, and obeys a throttle set through its HTTP API (the
// supervisor's admin API forwards /admin/consumers/{group}/... here). The payment path never
// waits on it: the relay publishes to the broker, never to a consumer.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/sqldb"
)

// Defect is a seeded defect of a consumer.
type Defect string

// DefectAckBeforeApply acknowledges a batch before applying it: a kill in between loses events.
const DefectAckBeforeApply Defect = "consumer-ack-before-apply"

// Defects lists the consumer's defects.
func Defects() []Defect { return []Defect{DefectAckBeforeApply} }

// AckWait is how long the broker waits for a delivered event's ack before it delivers the event
// again: what a consumer killed between fetch and ack costs its group in delay. A batch is applied
// in one transaction well under it; one that takes longer is delivered twice and the inbox skips
// the second copy.
const AckWait = 3 * time.Second

// Limits of a consumer.
const (
	fetchMax  = 256                    // messages per fetch
	fetchWait = 100 * time.Millisecond // how long a fetch gathers up to fetchMax messages
	// idleWait is how long an idle lane's fetch waits for one message (it returns with the
	// first): an idle lane asks the broker once per idleWait, not once per fetchWait.
	idleWait     = 2 * time.Second
	ackPendMax   = 4 * fetchMax
	pollInterval = 250 * time.Millisecond // lag and rate sampling
	// drainedPolls: a lane with no batch and no lag asks the broker for its lag once in
	// drainedPolls polls (new events would have come as a batch, unless the lane is paused).
	drainedPolls = 4
	retryWait    = 200 * time.Millisecond
	stopWait     = 2 * time.Second
	// drainedLagMax is the lag under which a group counts as drained after a throttle (under
	// load a few batches are always in flight).
	drainedLagMax = 2 * fetchMax
)

// Errors of a consumer.
var (
	ErrInvalidConfig = errors.New("invalid consumer config")
)

// Config configures one consumer group's process.
type Config struct {
	Group   string
	DataDir string
	// DSN and Schema put the group's database on PostgreSQL (a schema of its own); empty DSN:
	// a SQLite file in DataDir.
	DSN, Schema string
	NATS        string
	Listener    net.Listener // or Listen
	Listen      string
	Defects     []Defect
	Logger      *slog.Logger

	// killPoint, when set, runs between the two steps of a batch (apply and ack, in the order
	// the defect decides): a test cancels the context there, as a SIGKILL at the wrong moment.
	killPoint func()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if !slices.Contains(events.Groups(), c.Group) {
		errs = append(errs, fmt.Errorf("group %q: want one of %v", c.Group, events.Groups()))
	}
	if c.DataDir == "" || c.NATS == "" {
		errs = append(errs, errors.New("a data dir and a broker URL are required"))
	}
	if c.DSN != "" {
		if err := c.Place().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Listener == nil && c.Listen == "" {
		errs = append(errs, errors.New("a listen address or a listener is required"))
	}
	for _, d := range c.Defects {
		if !slices.Contains(Defects(), d) {
			errs = append(errs, fmt.Errorf("unknown defect %q", d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Place is where the group's database lives.
func (c Config) Place() sqldb.Place {
	return sqldb.Place{Dir: c.DataDir, File: FileName, DSN: c.DSN, Schema: c.Schema}
}

// consumer is one running group.
type consumer struct {
	cfg   Config
	log   *slog.Logger
	lanes []*lane // production, shadow (plane.go)
	thr   *throttle
	m     *metrics

	applied atomic.Int64
	lag     atomic.Int64
	maxLag  atomic.Int64
	rate    atomic.Int64 // events applied in the last second
	drainMS atomic.Int64

	mu       sync.Mutex
	released time.Time // when the last throttle was released, zero once drained
}

// Run serves the group until ctx is cancelled, then stops at once (like a kill).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := newMetrics(cfg.Group)
	lanes, err := openLanes(ctx, cfg.Place(), m)
	if err != nil {
		return err
	}
	c := &consumer{cfg: cfg, log: log.With("group", cfg.Group), lanes: lanes, thr: newThrottle(), m: m}
	for _, l := range lanes {
		defer l.store.close()
		c.applied.Add(l.applied.Load())
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	for _, l := range c.lanes {
		wg.Go(func() { c.consume(ctx, l) }) // ends with ctx
	}
	wg.Add(1)
	go func() { // ends when the server is shut down below
		defer wg.Done()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("serve", "err", err)
		}
		cancel()
	}()
	<-ctx.Done()
	stopCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), stopWait)
	defer stop()
	if err := srv.Shutdown(stopCtx); err != nil {
		srv.Close()
	}
	wg.Wait()
	return nil
}

// consume connects and applies until ctx ends, reconnecting after a failure.
func (c *consumer) consume(ctx context.Context, l *lane) {
	for ctx.Err() == nil {
		nc, js, _, err := events.ConnectPlane(ctx, c.cfg.NATS, "consumer-"+c.cfg.Group+"-"+string(l.plane), l.plane)
		if err != nil {
			c.log.Warn("connect", "err", err)
			sleep(ctx, retryWait)
			continue
		}
		if err := c.consumeOn(ctx, js, l); err != nil && ctx.Err() == nil {
			c.log.Warn("consume", "err", err)
			sleep(ctx, retryWait)
		}
		nc.Close()
	}
}

func (c *consumer) consumeOn(ctx context.Context, js jetstream.JetStream, l *lane) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, l.stream(), jetstream.ConsumerConfig{
		Durable: c.cfg.Group, AckPolicy: jetstream.AckExplicitPolicy, AckWait: AckWait,
		MaxAckPending: ackPendMax, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", c.cfg.Group, err)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.poll(pctx, cons, l) }() // ends with stop
	defer wg.Wait()
	idle := false // the last fetch found nothing
	for ctx.Err() == nil {
		n, err := c.thr.admit(ctx, fetchMax)
		if err != nil {
			return nil // cancelled
		}
		msgs, err := fetch(ctx, cons, n, idle)
		if err != nil {
			return err
		}
		if idle = len(msgs) == 0; idle {
			continue
		}
		c.thr.took(ctx, len(msgs))
		if err := c.handle(ctx, msgs, l); err != nil {
			return err
		}
	}
	return nil
}

// fetch fetches up to n messages: those that come within fetchWait, or when idle the first
// that comes within idleWait (the next fetch gathers what follows it). An idle fetch ends with
// ctx (a stop does not wait for it); the busy one is short, and its client-side wait outlasts the
// broker's by a second, so that a message the broker delivered is never dropped by the client.
func fetch(ctx context.Context, cons jetstream.Consumer, n int, idle bool) ([]jetstream.Msg, error) {
	var (
		batch jetstream.MessageBatch
		err   error
	)
	if idle {
		ictx, cancel := context.WithTimeout(ctx, idleWait)
		defer cancel()
		batch, err = cons.Fetch(1, jetstream.FetchContext(ictx))
	} else {
		batch, err = cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
	}
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// handle applies a batch then acks it (or, with the defect, the other way round).
func (c *consumer) handle(ctx context.Context, msgs []jetstream.Msg, l *lane) error {
	batch := make([]delivered, 0, len(msgs))
	var pending uint64 // the stream's messages not delivered yet, as of the batch's last message
	for _, m := range msgs {
		e, err := events.Decode(m.Data())
		if err != nil {
			c.log.Error("drop undecodable event", "err", err)
			_ = m.Term()
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read metadata: %w", err)
		}
		batch = append(batch, delivered{e: e, streamSeq: md.Sequence.Stream})
		pending = md.NumPending
	}
	if slices.Contains(c.cfg.Defects, DefectAckBeforeApply) {
		for _, m := range msgs {
			if err := m.DoubleAck(ctx); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		c.between()
	}
	fresh, err := l.store.apply(ctx, c.cfg.Group, batch)
	if err != nil {
		return err
	}
	l.applied.Add(int64(fresh))
	l.writes.Add(float64(fresh))
	c.applied.Add(int64(fresh))
	c.m.applied.Add(float64(fresh))
	if slices.Contains(c.cfg.Defects, DefectAckBeforeApply) {
		return nil
	}
	c.between()
	if ctx.Err() != nil {
		return nil // killed after the commit: the broker redelivers, the inbox skips
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	l.lag.Store(int64(pending)) // the batch is acked: what is left is what was not delivered
	l.handled.Add(1)
	return nil
}

func (c *consumer) between() {
	if c.cfg.killPoint != nil {
		c.cfg.killPoint()
	}
}

// poll samples a lane's lag (messages not yet delivered plus delivered and not acked); the
// production lane's poll also judges the group's figures over both lanes: the rate, the max
// lag, the drain. A lane that handled a batch since the last tick took its lag from the batch's
// metadata; only one that did not (idle, paused, stuck) asks the broker, and a drained one only
// every drainedPolls ticks: a consumer info request per lane and tick was 3% of the broker's CPU
// under load and a quarter of it idle.
func (c *consumer) poll(ctx context.Context, cons jetstream.Consumer, l *lane) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last, lastAt := c.applied.Load(), time.Now()
	handled := l.handled.Load()
	quiet := 0 // ticks to skip before the next info request of a drained lane
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch h := l.handled.Load(); {
		case h != handled:
			handled, quiet = h, 0
		case quiet > 0:
			quiet--
		default:
			if info, err := cons.Info(ctx); err == nil {
				lag := int64(info.NumPending) + int64(info.NumAckPending)
				l.lag.Store(lag)
				if lag == 0 {
					quiet = drainedPolls - 1
				}
			}
		}
		if l.plane == shadow.Shadow {
			continue
		}
		lag := c.totalLag()
		c.lag.Store(lag)
		c.m.lag.Set(float64(lag))
		if lag > c.maxLag.Load() {
			c.maxLag.Store(lag)
		}
		c.noteDrain(lag)
		if now := time.Since(lastAt); now >= time.Second {
			n := c.applied.Load()
			r := int64(float64(n-last) / now.Seconds())
			c.rate.Store(r)
			c.m.rate.Set(float64(r))
			c.thr.observe(r)
			last, lastAt = n, time.Now()
		}
	}
}

// noteDrain records how long the lag took to drain after the last release.
func (c *consumer) noteDrain(lag int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released.IsZero() && lag <= drainedLagMax {
		c.drainMS.Store(time.Since(c.released).Milliseconds())
		c.released = time.Time{}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
