package load

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// Recorder receives the outcome of every arrival: a Sample for each request sent, a Drop for
// each arrival that found no free worker. It must be safe for concurrent use and fast: it is
// called on the generator's goroutines (the event loop's, or the workers'), inline.
type Recorder interface {
	Record(metrics.Sample)
	Drop(phase, op string)
}

var _ Recorder = (*metrics.Collector)(nil)

// Progress is a snapshot of a running generator's counters, for a progress line. The counters
// are read one by one, in an order that keeps Due ≥ Sent+Dropped ≥ Completed ≥ Failed.
type Progress struct {
	Due       int64 // arrivals of this segment whose time has come
	Sent      int64 // arrivals handed to a worker
	Dropped   int64 // arrivals that found every worker busy
	InFlight  int64 // requests sent and not yet completed
	Completed int64 // requests completed, failed or not
	Failed    int64 // completed requests that failed
}

// Result is what a run of the generator did.
type Result struct {
	Phase string
	Seed  int64 // the seed of the template variables; the chosen one when Vars.Seed was 0
	Start time.Time
	End   time.Time // when Run returned
	Progress
	Aborted     int64 // requests still in flight when the grace period ended (also in Failed)
	Interrupted bool  // the context was cancelled before the profile ended
}

// Option changes how a Generator runs.
type Option func(*Generator)

// withWorkerEngine makes the generator send with goroutine workers and fasthttp, the engine of
// https origins, whatever the origins are: the tests run both engines.
func withWorkerEngine() Option { return func(g *Generator) { g.useLoop = false } }

// WithPacer replaces the schedule of the config's profile with p. The run still lasts the
// profile's duration: arrivals p puts at or past it are not sent.
func WithPacer(p Pacer) Option { return func(g *Generator) { g.pacer = p } }

// Generator sends the arrivals of one load phase, open model: each arrival at its time on an
// absolute schedule, to a bounded set of workers, whether or not earlier ones have completed.
// An arrival that finds every worker busy is dropped and counted, never queued, so that the
// latency of the rest stays honest. Latency is measured from the intended time of an arrival
// (metrics.Sample.Intended), which includes any time the generator itself was late. A worker
// is a slot for one request in flight: the event loop of plain HTTP keeps them as state, the
// engine of https as goroutines (see client.go).
type Generator struct {
	cfg      Config
	rec      Recorder
	pacer    Pacer
	duration time.Duration
	grace    time.Duration
	timeout  time.Duration
	mix      *mix
	client   *client // the worker engine's; nil with the event loop
	useLoop  bool    // send with the plain-HTTP event loop
	seed     int64

	work    chan arrival // unbuffered: a send succeeds only into an idle worker's hands
	workers sync.WaitGroup
	spawned int // workers started, owned by the pacer loop
	ran     atomic.Bool
	aborted atomic.Bool // the grace period ended with requests in flight

	// Counters, each written by one side: due, sent and dropped by the pacer loop; completed,
	// failed and abortedN by the workers.
	due, sent, dropped, completed, failed, abortedN atomic.Int64
}

// wakeQuantum is the shortest sleep of the pacer: arrivals due less than this apart are sent
// together when the first of them wakes it, each with its own intended time. It bounds the
// send lateness the pacing adds (p99 goal: 1 ms at 10,000/s) and, at high rates, turns one
// wake-up per arrival into one per quantum, which is most of the pacing's CPU.
const wakeQuantum = 500 * time.Microsecond

// arrival is one scheduled request, from the pacer loop to a worker.
type arrival struct {
	seq      int64
	op       int
	intended time.Time
	rand     arrivalRand // after the mix's pick
}

// NewGenerator checks cfg (see Config.Validate), parses its templates and prepares the
// connection pools. It returns an error wrapping ErrInvalidConfig and every problem of cfg.
func NewGenerator(cfg Config, rec Recorder, opts ...Option) (*Generator, error) {
	if rec == nil {
		return nil, fmt.Errorf("new generator: %w: nil recorder", ErrInvalidConfig)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("new generator: %w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	m, err := newMix(cfg.Requests)
	if err != nil {
		return nil, fmt.Errorf("new generator: %w", err)
	}
	sched, err := NewSchedule(cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("new generator: %w", err)
	}
	g := &Generator{
		cfg:      cfg,
		rec:      rec,
		pacer:    sched,
		duration: cfg.Profile.Duration(),
		mix:      m,
		seed:     cfg.Vars.Seed,
		work:     make(chan arrival),
	}
	g.timeout = cmpOr(cfg.Timeout, TimeoutDefault)
	g.grace = cmpOr(cfg.GracePeriod, g.timeout)
	if g.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		g.seed = int64(binary.LittleEndian.Uint64(b[:]) | 1)
	}
	g.useLoop = loopAvailable
	for _, o := range m.ops {
		if scheme, _, _ := cutScheme(o.origin); scheme != "http" {
			g.useLoop = false
		}
	}
	for _, o := range opts {
		o(g)
	}
	if !g.useLoop {
		g.client = newClient(m.ops, cfg.Workers, cfg.Connections)
	}
	return g, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Progress returns a snapshot of the counters; safe to call at any time, from any goroutine.
//
// It is read without a lock, counter by counter, while arrivals go on: Due, read last, may be
// ahead of Sent plus Dropped by the arrivals being dispatched, never behind (an arrival is due
// before it is sent or dropped). At the end of Run they add up exactly.
func (g *Generator) Progress() Progress {
	var p Progress
	p.Failed = g.failed.Load()
	p.Completed = g.completed.Load()
	p.Sent = g.sent.Load()
	p.Dropped = g.dropped.Load()
	p.Due = g.due.Load()
	p.InFlight = p.Sent - p.Completed
	return p
}

// Run sends the arrivals of the profile and blocks until the profile has ended and the
// requests in flight have completed, or the grace period after the end has passed, when they
// are aborted. When ctx is cancelled, no arrival is sent after that moment, in-flight requests
// get the grace period from then, and Run returns ctx's cause with the Result so far
// (Interrupted set). A Generator runs once.
func (g *Generator) Run(ctx context.Context) (Result, error) {
	if !g.ran.CompareAndSwap(false, true) {
		return Result{}, ErrAlreadyRun
	}
	var start time.Time
	var err error
	if g.useLoop {
		var l *wireLoop
		if l, err = newWireLoop(ctx, g); err != nil {
			return Result{Phase: g.cfg.Phase, Seed: g.seed}, fmt.Errorf("run load phase %q: %w", g.cfg.Phase, err)
		}
		start = time.Now()
		err = l.run(ctx, start)
	} else {
		defer g.client.close()
		start = time.Now()
		err = g.pace(ctx, start)
		close(g.work) // idle workers exit; busy ones exit after their request
		g.drain()
	}
	res := Result{
		Phase:       g.cfg.Phase,
		Seed:        g.seed,
		Start:       start,
		End:         time.Now(),
		Progress:    g.Progress(),
		Aborted:     g.abortedN.Load(),
		Interrupted: err != nil && ctx.Err() != nil,
	}
	if err != nil {
		return res, fmt.Errorf("run load phase %q: %w", g.cfg.Phase, err)
	}
	return res, nil
}

// pace dispatches every arrival of this segment at its time, then waits for the end of the
// profile. It returns ctx's cause when ctx was cancelled first.
func (g *Generator) pace(ctx context.Context, start time.Time) error {
	w := newWaker(ctx)
	defer w.close()
	now := time.Now()
	for n := int64(0); ; n++ {
		off, ok := nextOwned(g.pacer, g.cfg.Segment, g.duration, &n)
		if !ok {
			break
		}
		intended := start.Add(off)
		if intended.After(now) {
			if now = time.Now(); intended.After(now) {
				wake := intended
				if q := now.Add(wakeQuantum); wake.Before(q) {
					wake = q
				}
				if err := w.wait(ctx, wake); err != nil {
					return err
				}
				now = time.Now()
			}
		}
		// A cancellation that came while the previous arrivals were dispatched stops this one.
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		g.dispatch(n, intended)
	}
	return w.wait(ctx, start.Add(g.duration))
}

// dispatch hands one arrival to an idle worker, starts a worker when none is idle and fewer
// than Workers exist, or drops the arrival.
func (g *Generator) dispatch(n int64, intended time.Time) {
	g.due.Add(1)
	r := newArrivalRand(g.seed, n)
	a := arrival{seq: n, op: g.mix.pick(&r), intended: intended, rand: r}
	select {
	case g.work <- a:
		g.sent.Add(1)
		return
	default:
	}
	if g.spawned < g.cfg.Workers {
		g.spawned++
		g.sent.Add(1)
		g.workers.Add(1)
		go g.worker(a) // owned by Run: drain waits for every worker
		return
	}
	g.dropped.Add(1)
	g.rec.Drop(g.cfg.Phase, g.mix.ops[a.op].name)
}

// drain waits for the workers; when the grace period passes first, it aborts the requests in
// flight and waits for the workers to see it, which is immediate.
func (g *Generator) drain() {
	done := make(chan struct{})
	go func() { // owned by drain: ends when every worker has returned, which abort forces
		g.workers.Wait()
		close(done)
	}()
	t := time.NewTimer(g.grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.aborted.Store(true)
		g.client.abort()
		<-done
	}
}

// worker sends arrivals until the work channel closes.
func (g *Generator) worker(a arrival) {
	defer g.workers.Done()
	w := newWorkerState(len(g.mix.ops))
	for ok := true; ok; a, ok = <-g.work {
		g.send(w, a)
	}
}
