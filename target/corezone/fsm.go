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

// fsm is the raft.FSM over State and the transfer registry. Readers get copies; Apply
// replaces the state as a whole.
type fsm struct {
	mu        sync.RWMutex
	state     State
	transfers transfers
}

var _ raft.FSM = (*fsm)(nil)

// applyResult is what Apply returns to the leader's ApplyFuture.
type applyResult struct {
	unit     Unit
	transfer Transfer
	err      error
}

func (f *fsm) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return applyResult{err: fmt.Errorf("%w: decode: %w", ErrBadCommand, err)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if isTransferOp(c.Op) {
		t, err := f.transfers.apply(c, l.Index, f.state)
		return applyResult{transfer: t, err: err}
	}
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

// snapshotData is a snapshot: the state's fields and the transfer registry's (a snapshot of
// the routing state alone reads as one without transfers).
type snapshotData struct {
	State
	transfersSnapshot
}

// Snapshot copies the state; Persist encodes it. Raft calls Snapshot on the goroutine that
// applies the log and Persist on one of its own, so the encoding (up to finishedKeptMax
// transfers: ~18 MB of JSON) no longer holds up the decisions committed meanwhile.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return snapshot{State: f.state.Clone(), transfersSnapshot: f.transfers.export()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, snapshotBytesMax+1))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if len(b) > snapshotBytesMax {
		return fmt.Errorf("read snapshot: larger than %d bytes", snapshotBytesMax)
	}
	var s snapshotData
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s.State
	f.transfers = restoreTransfers(s.transfersSnapshot)
	return nil
}

// snapshot is the state machine at a log index.
type snapshot snapshotData

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotData(s)); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (snapshot) Release() {}
