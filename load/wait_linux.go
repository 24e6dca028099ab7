package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdWaker sleeps on a timerfd read through the Go netpoller. Go's own timers, while the
// process is otherwise idle, wake no sooner than the next whole millisecond (the netpoller's
// epoll timeout is in milliseconds), so at 10,000 arrivals per second the generator would send
// in bursts up to a millisecond late. A timerfd fires at the kernel's high-resolution timer
// instead, and the goroutine parks in the netpoller like any network read: no thread is held
// and nothing spins.
type timerfdWaker struct {
	fd   int
	f    *os.File
	stop func() bool // unregisters the interrupt on ctx
	buf  [8]byte
}

// newWaker returns a waker whose waits end early, with an error, once ctx is done. It falls
// back to Go's timers where timerfd is unavailable.
func newWaker(ctx context.Context) waker {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newTimerWaker(ctx)
	}
	w := &timerfdWaker{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
	// The deadline in the past makes the pending and every later read return at once.
	w.stop = context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) }) //nolint:errcheck // fails only when closed
	return w
}

func (w *timerfdWaker) wait(ctx context.Context, until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(w.fd, 0, &spec, nil); err != nil {
		return fmt.Errorf("arm timerfd: %w", err)
	}
	if _, err := w.f.Read(w.buf[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return context.Cause(ctx)
		}
		return fmt.Errorf("read timerfd: %w", err)
	}
	return nil
}

func (w *timerfdWaker) close() {
	w.stop()
	w.f.Close()
}
