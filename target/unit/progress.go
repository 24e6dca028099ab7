package unit

import (
	"context"
	"sync"
)

// progress is a seq that only grows, with waiters: the replicated (acknowledgeable) head of the
// history. A primary that is fenced or stopped fails every waiter beyond the head.
type progress struct {
	mu      sync.Mutex
	seq     int64
	err     error         // set: waits beyond seq fail with it
	advance chan struct{} // closed and replaced on every change
}

func newProgress(seq int64) *progress {
	return &progress{seq: seq, advance: make(chan struct{})}
}

func (p *progress) changed() {
	close(p.advance)
	p.advance = make(chan struct{})
}

// to moves the head forward to seq.
func (p *progress) to(seq int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq > p.seq {
		p.seq = seq
		p.changed()
	}
}

// fail makes every wait beyond the head return err, until reset.
func (p *progress) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.changed()
	}
}

// reset starts over at seq with no failure (a replica becoming primary: its whole history is
// durable on it and acknowledgeable).
func (p *progress) reset(seq int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq, p.err = seq, nil
	p.changed()
}

// head returns the current head.
func (p *progress) head() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// watch returns the head and a channel closed at its next change.
func (p *progress) watch() (int64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq, p.advance
}

// wait blocks until the head reaches seq, the progress fails, or ctx ends.
func (p *progress) wait(ctx context.Context, seq int64) error {
	for {
		p.mu.Lock()
		if p.seq >= seq {
			p.mu.Unlock()
			return nil
		}
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return err
		}
		ch := p.advance
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
