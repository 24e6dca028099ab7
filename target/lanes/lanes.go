// Package lanes gathers requests bound for the same destination into batches. Each destination
// has a lane: a bounded queue drained by a fixed number of senders. A sender takes every item
// queued at that moment (up to a maximum) and hands them to one call of the send function, so
// while a destination is busy with earlier batches, items gather: batches grow with the load and
// cost no wait when it is light. The router batches payments per unit with it, the core zone the
// steps of cross-unit transfers per unit.
//
// A lane may also linger: its sender then waits up to that long after the first item for more,
// one sender gathering at a time. Batches then grow at light loads too, at the cost of that wait:
// for items nobody waits on (the core zone's confirms of transfers already answered).
package lanes

import (
	"context"
	"sync"
	"time"
)

// SendFunc sends one batch bound for dest. It owns the items' answers: every item must be
// answered (by whatever channel the item carries) before it returns. ctx ends at Close.
type SendFunc[T any] func(ctx context.Context, dest string, batch []T)

// Config bounds the lanes.
type Config struct {
	Senders  int           // batches in flight to one destination
	BatchMax int           // items in one batch
	Depth    int           // items one lane holds waiting
	Linger   time.Duration // a sender's wait for more items after the first; 0: none
}

// Lanes holds one lane per destination and their senders.
type Lanes[T any] struct {
	senders  int
	batchMax int
	depth    int
	linger   time.Duration
	send     SendFunc[T]

	mu      sync.Mutex
	lanes   map[string]chan T
	ctx     context.Context
	cancel  context.CancelFunc
	closed  bool
	stopped chan struct{} // closed by Close: waiters give up
	wg      sync.WaitGroup
}

// New returns lanes whose senders (cfg.Senders per destination) call send with at most
// cfg.BatchMax items; a lane holds at most cfg.Depth items waiting.
func New[T any](cfg Config, send SendFunc[T]) *Lanes[T] {
	ctx, cancel := context.WithCancel(context.Background())
	return &Lanes[T]{
		senders: max(1, cfg.Senders), batchMax: max(1, cfg.BatchMax), depth: max(1, cfg.Depth),
		linger: max(0, cfg.Linger), send: send,
		lanes: map[string]chan T{}, ctx: ctx, cancel: cancel, stopped: make(chan struct{}),
	}
}

// Add queues item on dest's lane, starting its senders on first use. False when the lane is full
// or the lanes are closed: the item will not be sent.
func (l *Lanes[T]) Add(dest string, item T) bool {
	q := l.lane(dest)
	if q == nil {
		return false
	}
	select {
	case q <- item:
		return true
	default:
		return false
	}
}

// Stopped is closed once Close begins: a caller waiting for an answer gives up.
func (l *Lanes[T]) Stopped() <-chan struct{} { return l.stopped }

// Close stops every sender after its batch in flight and waits for them. Items still queued
// are not sent: their waiters learn it from Stopped.
func (l *Lanes[T]) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.stopped)
		l.cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *Lanes[T]) lane(dest string) chan T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if q, ok := l.lanes[dest]; ok {
		return q
	}
	q := make(chan T, l.depth)
	l.lanes[dest] = q
	var gathering sync.Mutex // held by the sender that lingers for a batch
	for range l.senders {
		// Each sender ends when Close cancels l.ctx, after its batch in flight.
		l.wg.Go(func() { l.drain(dest, q, &gathering) })
	}
	return q
}

// drain sends q's items in batches until Close.
func (l *Lanes[T]) drain(dest string, q chan T, gathering *sync.Mutex) {
	for {
		batch := l.gather(q, gathering)
		if batch == nil {
			return
		}
		l.send(l.ctx, dest, batch)
	}
}

// gather waits for q's next item and takes the items queued behind it (those arriving within
// the linger too); nil at Close.
func (l *Lanes[T]) gather(q chan T, gathering *sync.Mutex) []T {
	if l.linger > 0 {
		gathering.Lock()
		defer gathering.Unlock()
	}
	var first T
	select {
	case <-l.ctx.Done():
		return nil
	case first = <-q:
	}
	batch := []T{first}
	if l.linger == 0 {
		for len(batch) < l.batchMax {
			select {
			case item := <-q:
				batch = append(batch, item)
			default:
				return batch
			}
		}
		return batch
	}
	t := time.NewTimer(l.linger)
	defer t.Stop()
	for len(batch) < l.batchMax {
		select {
		case item := <-q:
			batch = append(batch, item)
		case <-t.C:
			return batch
		case <-l.ctx.Done():
			return batch // sent under the cancelled context: its items learn they were not
		}
	}
	return batch
}
