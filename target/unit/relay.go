package unit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// Limits of the relay.
const (
	// relayBatchMax bounds the events published before waiting for their acks; a relay that
	// died mid-batch can leave a gap only inside one batch, so it resumes that far back.
	relayBatchMax = 1_024
	// relayGap is the least time between two rounds of the relay: under load a round takes what
	// the gap gathered (one outbox read and one ack wait for many events, not one each).
	relayGap = 20 * time.Millisecond
	// relayAckWait bounds the wait for one batch's acks (SyncAlways: each is an fsync).
	relayAckWait = 10 * time.Second
	// relayRetry is the pause after a failure (broker down, not primary).
	relayRetry = 200 * time.Millisecond
)

// relay publishes the outbox to the broker while this replica is the primary: events of
// acknowledged (replicated) payments only, in seq order, each with Nats-Msg-Id = event id, and
// advances past a batch only when JetStream acknowledged all of it. It never holds the writer:
// it reads the outbox through the read pool, so the payment path never waits on it. It ends
// when ctx is cancelled.
func (s *server) relay(ctx context.Context) {
	for ctx.Err() == nil {
		nc, js, st, err := events.ConnectPlane(ctx, s.cfg.NATS, "relay-"+s.cfg.Unit+"-"+s.cfg.Replica+"-"+string(s.planeOf()), s.planeOf())
		if err != nil {
			s.log.Warn("relay: connect", "err", err)
			sleepCtx(ctx, relayRetry)
			continue
		}
		s.js.Store(&js)
		err = s.relayOn(ctx, js, st)
		s.js.Store(nil)
		nc.Close()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("relay", "err", err)
			sleepCtx(ctx, relayRetry)
		}
	}
}

// relayOn publishes until ctx ends or the broker fails. It reads the outbox only when the
// replicated head has moved past what it read last: an idle primary's relay waits on the head,
// and costs nothing.
func (s *server) relayOn(ctx context.Context, js jetstream.JetStream, st jetstream.Stream) error {
	cursor := int64(-1) // unknown: read from the stream when primary
	var (
		read  int64     // the outbox is read up to here: no row in (cursor, read]
		round time.Time // when the last read started
	)
	for ctx.Err() == nil {
		if s.view().Role != ledger.RolePrimary {
			cursor = -1
			sleepCtx(ctx, relayRetry)
			continue
		}
		if cursor < 0 {
			last, err := events.LastSeqOn(ctx, st, s.planeOf(), s.cfg.Unit)
			if err != nil {
				return err
			}
			cursor = max(0, last-relayBatchMax)
			read = cursor
		}
		head, advanced := s.replicated.watch()
		if head <= read {
			waitCtx(ctx, advanced, relayRetry) // woken by the head, or to look at the role again
			continue
		}
		if gap := relayGap - time.Since(round); gap > 0 {
			sleepCtx(ctx, gap)
			head = s.replicated.head()
		}
		round = time.Now()
		rows, err := s.db.Outbox(ctx, read, head, relayBatchMax)
		if err != nil {
			return err
		}
		read = head
		if len(rows) == relayBatchMax {
			read = rows[len(rows)-1].Seq // more may follow
		}
		if len(rows) == 0 {
			continue
		}
		if err := s.publish(ctx, js, rows); err != nil {
			return err
		}
		cursor = rows[len(rows)-1].Seq
		s.published.Store(cursor)
	}
	return nil
}

// publish sends rows asynchronously and waits until every one is acknowledged.
func (s *server) publish(ctx context.Context, js jetstream.JetStream, rows []storage.OutboxRow) error {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	for _, r := range rows {
		m, err := events.MessageOn(s.planeOf(), s.event(r))
		if err != nil {
			return err
		}
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(relayAckWait))
		if err != nil {
			return fmt.Errorf("publish event %s: %w", m.Header.Get(jetstream.MsgIDHeader), err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(relayAckWait)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish event %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-timeout.C:
			return fmt.Errorf("publish events: no ack within %v", relayAckWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.metrics.eventsPublished.Add(float64(len(rows)))
	return nil
}

func (s *server) event(r storage.OutboxRow) events.Event {
	return events.Event{ID: events.ID(s.cfg.Unit, r.Seq), Unit: s.cfg.Unit, Seq: r.Seq, Key: r.Key,
		FromUID: r.FromUID, ToUID: r.ToUID, AmountMinor: r.AmountMinor}
}

// publishEarly is the publish-before-commit defect: the batch's events go to the broker before
// its transaction commits (fire and forget), so a kill before the commit or its replication
// leaves events of payments that never happened.
func (s *server) publishEarly(rows []storage.OutboxRow) {
	p := s.js.Load()
	if p == nil {
		return
	}
	for _, r := range rows {
		if m, err := events.MessageOn(s.planeOf(), s.event(r)); err == nil {
			_, _ = (*p).PublishMsgAsync(m)
		}
	}
	select {
	case <-(*p).PublishAsyncComplete():
	case <-time.After(relayAckWait):
	}
}

// jsRef is the relay's JetStream handle, shared with the writer for the defect.
type jsRef = atomic.Pointer[jetstream.JetStream]

// waitCtx waits until ch is closed, d has passed or ctx ends.
func waitCtx(ctx context.Context, ch <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-t.C:
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
