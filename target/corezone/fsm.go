package corezone

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// stateBytesMax bounds a snapshot: the state is a few kilobytes.
const stateBytesMax = 1 << 20

// fsm is the raft.FSM over State. Readers get copies; Apply replaces the state as a whole.
type fsm struct {
	mu    sync.RWMutex
	state State
}

var _ raft.FSM = (*fsm)(nil)

// applyResult is what Apply returns to the leader's ApplyFuture.
type applyResult struct {
	unit Unit
	err  error
}

func (f *fsm) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return applyResult{err: fmt.Errorf("%w: decode: %w", ErrBadCommand, err)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, u, err := f.state.apply(c)
	if err != nil {
		return applyResult{unit: u, err: err}
	}
	f.state = n
	return applyResult{unit: u}
}

// current returns a copy of the state.
func (f *fsm) current() State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	b, err := json.Marshal(f.current())
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, stateBytesMax+1))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if len(b) > stateBytesMax {
		return fmt.Errorf("read snapshot: larger than %d bytes", stateBytesMax)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (snapshot) Release() {}
