//go:build !linux

package load

import "context"

func newWaker(ctx context.Context) waker { return newTimerWaker(ctx) }
