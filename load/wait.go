package load

import (
	"context"
	"time"
)

// waker sleeps the pacer until an arrival is due. wait returns early, with ctx's cause, once
// ctx is done.
type waker interface {
	wait(ctx context.Context, until time.Time) error
	close()
}

// timerWaker sleeps on a Go timer: millisecond precision when the process is idle.
type timerWaker struct{ t *time.Timer }

func newTimerWaker(context.Context) waker {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerWaker{t: t}
}

func (w *timerWaker) wait(ctx context.Context, until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	w.t.Reset(d)
	select {
	case <-w.t.C:
		return nil
	case <-ctx.Done():
		w.t.Stop()
		return context.Cause(ctx)
	}
}

func (w *timerWaker) close() { w.t.Stop() }
