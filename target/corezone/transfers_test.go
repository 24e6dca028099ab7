package corezone

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/redline-dev/redline/shadow"
)

// applyAll runs commands through a state machine as Raft would, one log index each.
func applyAll(t *testing.T, f *fsm, cmds ...Command) []applyResult {
	t.Helper()
	var out []applyResult
	for _, c := range cmds {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f.Apply(&raft.Log{Index: uint64(len(out) + 10), Data: b}).(applyResult))
	}
	return out
}

func transferAB(key string, amount int64) *Transfer {
	return &Transfer{Key: key, FromUID: 0, ToUID: 1, AmountMinor: amount} // buckets 0 and 1: units a and b
}

func TestTransferCommands(t *testing.T) {
	f := &fsm{}
	applyAll(t, f, Command{Op: OpInit, Seeds: seeds2()})
	res := applyAll(t, f,
		Command{Op: OpTransferBegin, Transfer: transferAB("k1", 5)},
		Command{Op: OpTransferBegin, Transfer: transferAB("k1", 5)}, // a retry: the same transfer
		Command{Op: OpTransferBegin, Transfer: transferAB("k1", 6)}, // the key with another amount
		Command{Op: OpTransferBegin, Transfer: &Transfer{Key: "k2", FromUID: 0, ToUID: 2, AmountMinor: 1}},
		Command{Op: OpTransferDecide, Key: "k1", Decision: TransferConfirmed},
		Command{Op: OpTransferDecide, Key: "k1", Decision: TransferCancelled, Reason: "late"}, // the first decision wins
		Command{Op: OpTransferDecide, Key: "k9", Decision: TransferCancelled},                 // never begun
		Command{Op: OpTransferDecide, Key: "k3", Decision: TransferCancelled, Reason: ReasonUnknown, Transfer: transferAB("k3", 7)},
		Command{Op: OpTransferBegin, Transfer: transferAB("k4", 2)},
		Command{Op: OpTransferDecide, Key: "k4", Decision: TransferCancelled, Reason: ReasonUnknown, Transfer: transferAB("k4", 2)}, // begun: no presumption
	)
	wantErr := []error{nil, nil, ErrTransferConflict, ErrSameUnit, nil, nil, ErrUnknownTransfer, nil, nil, nil}
	for i, r := range res {
		if !errors.Is(r.err, wantErr[i]) {
			t.Errorf("command %d: %v, want %v", i, r.err, wantErr[i])
		}
	}
	if got := res[1].transfer; got.State != TransferTrying || got.FromUnit != "a" || got.ToUnit != "b" || got.Index != 10 {
		t.Errorf("begun transfer: %+v", got)
	}
	if got := res[5].transfer; got.State != TransferConfirmed {
		t.Errorf("second decision changed the first: %+v", got)
	}
	if got := res[7].transfer; got.State != TransferCancelled || got.Reason != ReasonUnknown {
		t.Errorf("presumed abort: %+v", got)
	}
	if got := res[9].transfer; got.State != TransferTrying {
		t.Errorf("presumed abort of a begun transfer: %+v, want it left trying", got)
	}
	fig := f.transferFigures(shadow.Production)
	if fig.Begun != 2 || fig.Confirmed.Count != 1 || fig.Cancelled.Count != 1 || fig.Undecided != 1 || fig.Unfinished != 2 {
		t.Errorf("figures %+v", fig)
	}
	applyAll(t, f, Command{Op: OpTransferDone, Keys: []string{"k1", "k3", "k4", "nope"}}) // k4 undecided: stays open
	fig = f.transferFigures(shadow.Production)
	if fig.Unfinished != 0 || fig.Undecided != 1 {
		t.Errorf("after done: %+v", fig)
	}
	if open := f.openTransfers(10); len(open) != 1 || open[0].Key != "k4" {
		t.Errorf("open transfers %+v, want k4", open)
	}
}

// TestDecisionCarriesTheTransfer: nothing is in the log before a transfer's decision, which
// carries it; the first decision for a key wins, so a coordinator's late confirm after a
// participant's question was answered by a presumed abort is refused, and the other way round.
func TestDecisionCarriesTheTransfer(t *testing.T) {
	confirm := func(tr *Transfer) Command {
		return Command{Op: OpTransferDecide, Key: tr.Key, Decision: TransferConfirmed, Transfer: tr}
	}
	cancel := func(tr *Transfer, reason string) Command {
		return Command{Op: OpTransferDecide, Key: tr.Key, Decision: TransferCancelled, Reason: reason, Transfer: tr}
	}
	tests := []struct {
		name       string
		cmds       []Command
		wantState  string // of the last command's answer
		wantReason string
		wantErr    error
		wantBegun  int64
	}{
		{"a coordinator's confirm records the transfer", []Command{confirm(transferAB("k", 5))}, TransferConfirmed, "", nil, 1},
		{"a coordinator's cancel records it", []Command{cancel(transferAB("k", 5), "insufficient_funds")}, TransferCancelled, "insufficient_funds", nil, 1},
		{"a retry answers the first decision", []Command{confirm(transferAB("k", 5)), confirm(transferAB("k", 5))}, TransferConfirmed, "", nil, 1},
		{"a late confirm after a presumed abort is refused", []Command{cancel(transferAB("k", 5), ReasonUnknown), confirm(transferAB("k", 5))}, TransferCancelled, ReasonUnknown, nil, 0},
		{"a presumed abort after a confirm answers the confirm", []Command{confirm(transferAB("k", 5)), cancel(transferAB("k", 5), ReasonUnknown)}, TransferConfirmed, "", nil, 1},
		{"a presumed abort with other fields answers the decision", []Command{cancel(transferAB("k", 5), "aborted"), cancel(transferAB("k", 6), ReasonUnknown)}, TransferCancelled, "aborted", nil, 1},
		{"the key with other fields", []Command{confirm(transferAB("k", 5)), confirm(transferAB("k", 6))}, TransferConfirmed, "", ErrTransferConflict, 1},
		{"one unit", []Command{confirm(&Transfer{Key: "k", FromUID: 0, ToUID: 2, AmountMinor: 1})}, "", "", ErrSameUnit, 0},
		{"the transfer of another key", []Command{{Op: OpTransferDecide, Key: "k", Decision: TransferConfirmed, Transfer: transferAB("j", 5)}}, "", "", ErrBadCommand, 0},
		{"a decision on a begun transfer", []Command{{Op: OpTransferBegin, Transfer: transferAB("k", 5)}, confirm(transferAB("k", 5))}, TransferConfirmed, "", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fsm{}
			applyAll(t, f, Command{Op: OpInit, Seeds: seeds2()})
			res := applyAll(t, f, tt.cmds...)
			last := res[len(res)-1]
			if !errors.Is(last.err, tt.wantErr) {
				t.Fatalf("error %v, want %v", last.err, tt.wantErr)
			}
			if got := last.transfer; got.State != tt.wantState || got.Reason != tt.wantReason {
				t.Errorf("answer %s %q, want %s %q", got.State, got.Reason, tt.wantState, tt.wantReason)
			}
			fig := f.transferFigures(shadow.Production)
			if fig.Begun != tt.wantBegun || fig.Confirmed.Count+fig.Cancelled.Count > 1 {
				t.Errorf("figures %+v, want %d begun and at most one decision", fig, tt.wantBegun)
			}
		})
	}
}

// TestTransfersSnapshot: a snapshot restores the routing state and every transfer, and a
// snapshot of the routing state alone (older replicas) still reads.
func TestTransfersSnapshot(t *testing.T) {
	f := &fsm{}
	applyAll(t, f, Command{Op: OpInit, Seeds: seeds2()},
		Command{Op: OpTransferBegin, Transfer: transferAB("k1", 5)},
		Command{Op: OpTransferBegin, Transfer: transferAB("k2", 5)},
		Command{Op: OpTransferDecide, Key: "k1", Decision: TransferConfirmed},
		Command{Op: OpTransferDone, Keys: []string{"k1"}})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := &fsm{}
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(g.current(), f.current()); diff != "" {
		t.Errorf("state (-restored +original):\n%s", diff)
	}
	if diff := cmp.Diff(g.transfers.export(), f.transfers.export()); diff != "" {
		t.Errorf("transfers (-restored +original):\n%s", diff)
	}
	old, _ := json.Marshal(f.current())
	h := &fsm{}
	if err := h.Restore(io.NopCloser(bytes.NewReader(old))); err != nil || !h.current().Initialized() {
		t.Errorf("restore a routing-only snapshot: %v", err)
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestTransfersPrune: beyond finishedKeptMax finished transfers the oldest are forgotten, a
// quarter at a time; the audit's figures keep counting them.
func TestTransfersPrune(t *testing.T) {
	s := initState(t)
	var r transfers
	n := finishedKeptMax + finishedKeptMax/4 + 1
	keys := make([]string, 0, 1024)
	for i := range n {
		key := "p" + strconv.Itoa(i)
		if _, err := r.apply(Command{Op: OpTransferBegin, Transfer: transferAB(key, 1)}, uint64(i), s); err != nil {
			t.Fatal(err)
		}
		if _, err := r.apply(Command{Op: OpTransferDecide, Key: key, Decision: TransferConfirmed}, uint64(i), s); err != nil {
			t.Fatal(err)
		}
		if keys = append(keys, key); len(keys) == cap(keys) || i == n-1 {
			if _, err := r.apply(Command{Op: OpTransferDone, Keys: keys}, uint64(i), s); err != nil {
				t.Fatal(err)
			}
			keys = keys[:0]
		}
	}
	if len(r.byKey) != finishedKeptMax || len(r.finished) != finishedKeptMax {
		t.Errorf("%d transfers and %d finished kept, want %d", len(r.byKey), len(r.finished), finishedKeptMax)
	}
	if _, ok := r.byKey["p0"]; ok {
		t.Errorf("the oldest transfer is still kept")
	}
	if _, ok := r.byKey["p"+strconv.Itoa(n-1)]; !ok {
		t.Errorf("the newest transfer was forgotten")
	}
	if f := r.figuresOf(shadow.Production); f.Begun != int64(n) || f.Confirmed.Count != int64(n) || f.Unfinished != 0 {
		t.Errorf("figures %+v, want %d begun and confirmed", f, n)
	}
}

// TestTransferPlanes: a marked transfer is counted in the shadow plane's figures only, and the
// split survives a snapshot.
func TestTransferPlanes(t *testing.T) {
	f := &fsm{}
	applyAll(t, f, Command{Op: OpInit, Seeds: seeds2()})
	marked := transferAB("s1", 3)
	marked.Headers = map[string]string{shadow.Header: "run-1"}
	applyAll(t, f,
		Command{Op: OpTransferBegin, Transfer: transferAB("p1", 5)},
		Command{Op: OpTransferBegin, Transfer: marked},
		Command{Op: OpTransferDecide, Key: "p1", Decision: TransferConfirmed},
		Command{Op: OpTransferDecide, Key: "s1", Decision: TransferConfirmed},
		Command{Op: OpTransferBegin, Transfer: &Transfer{Key: "s2", FromUID: 0, ToUID: 1, AmountMinor: 1, Headers: map[string]string{shadow.Header: "run-1"}}},
	)
	prod, shad := f.transferFigures(shadow.Production), f.transferFigures(shadow.Shadow)
	if prod.Begun != 1 || prod.Confirmed.Count != 1 || prod.Undecided != 0 || prod.Unfinished != 1 {
		t.Errorf("production figures %+v", prod)
	}
	if shad.Begun != 2 || shad.Confirmed.Count != 1 || shad.Undecided != 1 || shad.Unfinished != 1 || shad.Confirmed == prod.Confirmed {
		t.Errorf("shadow figures %+v", shad)
	}
	back := restoreTransfers(f.transfers.export())
	if got := back.figuresOf(shadow.Shadow); got != shad {
		t.Errorf("shadow figures after a snapshot %+v, want %+v", got, shad)
	}
}

// BenchmarkSnapshot is the time raft's goroutine that applies the log spends in Snapshot with
// 100,000 finished transfers in the registry: decisions wait that long. Encoding them in
// Snapshot held it 94 ms; Persist encodes them now, on a goroutine of its own (31 ms).
func BenchmarkSnapshot(b *testing.B) {
	s, _, err := State{}.apply(Command{Op: OpInit, Seeds: seeds2()})
	if err != nil {
		b.Fatal(err)
	}
	f := &fsm{state: s}
	f.transfers.init()
	keys := make([]string, 0, 100_000)
	for i := range cap(keys) {
		key := "bench-" + strconv.Itoa(i)
		for _, c := range []Command{{Op: OpTransferBegin, Transfer: transferAB(key, 1)}, {Op: OpTransferDecide, Key: key, Decision: TransferConfirmed}} {
			if _, err := f.transfers.apply(c, uint64(i), s); err != nil {
				b.Fatal(err)
			}
		}
		keys = append(keys, key)
	}
	if _, err := f.transfers.apply(Command{Op: OpTransferDone, Keys: keys}, uint64(len(keys)), s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
