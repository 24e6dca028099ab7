package lanes

import (
	"context"
	"sync"
	"testing"
	"time"
)

// item is a test request: the sender answers it on done with the size of its batch.
type item struct {
	n    int
	done chan int
}

func newItem(n int) item { return item{n: n, done: make(chan int, 1)} }

func TestItemsGatherWhileTheSenderIsBusy(t *testing.T) {
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		batches [][]int
	)
	l := New(Config{Senders: 1, BatchMax: 3, Depth: 16}, func(_ context.Context, dest string, batch []item) {
		if dest != "a" {
			t.Errorf("dest %q, want a", dest)
		}
		<-release
		mu.Lock()
		var ns []int
		for _, it := range batch {
			ns = append(ns, it.n)
		}
		batches = append(batches, ns)
		mu.Unlock()
		for _, it := range batch {
			it.done <- len(batch)
		}
	})
	defer l.Close()
	items := make([]item, 5)
	for i := range items {
		items[i] = newItem(i)
	}
	if !l.Add("a", items[0]) {
		t.Fatal("Add refused the first item")
	}
	// The one sender holds item 0; the next four gather behind it.
	waitFor(t, func() bool { return len(l.lane("a")) == 0 })
	for _, it := range items[1:] {
		if !l.Add("a", it) {
			t.Fatalf("Add refused item %d", it.n)
		}
	}
	close(release)
	sizes := make([]int, len(items))
	for i, it := range items {
		select {
		case sizes[i] = <-it.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("item %d not answered", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]int{{0}, {1, 2, 3}, {4}} // batchMax 3: what waited is taken three at a time
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	for i := range want {
		if len(batches[i]) != len(want[i]) {
			t.Fatalf("batches %v, want %v", batches, want)
		}
		for j := range want[i] {
			if batches[i][j] != want[i][j] {
				t.Fatalf("batches %v, want %v", batches, want)
			}
		}
	}
}

func TestDestinationsHaveLanesOfTheirOwn(t *testing.T) {
	block := make(chan struct{})
	l := New(Config{Senders: 1, BatchMax: 10, Depth: 4}, func(_ context.Context, dest string, batch []item) {
		if dest == "slow" {
			<-block
		}
		for _, it := range batch {
			it.done <- len(batch)
		}
	})
	defer func() {
		close(block)
		l.Close()
	}()
	if !l.Add("slow", newItem(0)) {
		t.Fatal("Add refused")
	}
	fast := newItem(1)
	if !l.Add("fast", fast) {
		t.Fatal("Add refused")
	}
	select {
	case <-fast.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a busy destination held up another one")
	}
}

func TestAddRefusesWhenFullOrClosed(t *testing.T) {
	block := make(chan struct{})
	l := New(Config{Senders: 1, BatchMax: 1, Depth: 2}, func(_ context.Context, _ string, batch []item) {
		<-block
		for _, it := range batch {
			it.done <- 1
		}
	})
	if !l.Add("a", newItem(0)) {
		t.Fatal("Add refused the first item")
	}
	waitFor(t, func() bool { return len(l.lane("a")) == 0 }) // taken by the sender
	if !l.Add("a", newItem(1)) || !l.Add("a", newItem(2)) {
		t.Fatal("Add refused an item within the depth")
	}
	if l.Add("a", newItem(3)) {
		t.Fatal("Add took an item beyond the lane's depth")
	}
	close(block)
	l.Close()
	select {
	case <-l.Stopped():
	default:
		t.Fatal("Stopped is open after Close")
	}
	if l.Add("a", newItem(4)) || l.Add("b", newItem(5)) {
		t.Fatal("Add took an item after Close")
	}
}

// TestLingerGathersItemsArrivingLater: a lingering lane's items that arrive within the linger
// of the first go in its batch, though the sender was idle and a second sender was free; a full
// batch goes at once.
func TestLingerGathersItemsArrivingLater(t *testing.T) {
	var (
		mu      sync.Mutex
		batches []int
	)
	l := New(Config{Senders: 2, BatchMax: 4, Depth: 16, Linger: 300 * time.Millisecond}, func(_ context.Context, _ string, batch []item) {
		mu.Lock()
		batches = append(batches, len(batch))
		mu.Unlock()
		for _, it := range batch {
			it.done <- len(batch)
		}
	})
	defer l.Close()
	first, later := newItem(0), newItem(1)
	if !l.Add("a", first) {
		t.Fatal("Add refused the first item")
	}
	time.Sleep(20 * time.Millisecond)
	if !l.Add("a", later) {
		t.Fatal("Add refused the second item")
	}
	for _, it := range []item{first, later} {
		select {
		case n := <-it.done:
			if n != 2 {
				t.Fatalf("item %d sent in a batch of %d, want both items in one", it.n, n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("item %d not answered", it.n)
		}
	}
	// Four items fill a batch: sent without waiting out the linger.
	full := []item{newItem(2), newItem(3), newItem(4), newItem(5)}
	began := time.Now()
	for _, it := range full {
		if !l.Add("a", it) {
			t.Fatalf("Add refused item %d", it.n)
		}
	}
	for _, it := range full {
		select {
		case <-it.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("item %d not answered", it.n)
		}
	}
	if d := time.Since(began); d >= 300*time.Millisecond {
		t.Errorf("a full batch waited %v, want it sent before the linger ends", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || batches[0] != 2 || batches[1] != 4 {
		t.Errorf("batches of %v, want [2 4]", batches)
	}
}

// TestCloseEndsALinger: Close does not wait out a lingering batch; its items are sent under the
// cancelled context, and so answered.
func TestCloseEndsALinger(t *testing.T) {
	l := New(Config{Senders: 1, BatchMax: 4, Depth: 4, Linger: time.Hour}, func(ctx context.Context, _ string, batch []item) {
		n := len(batch)
		if ctx.Err() != nil {
			n = -1
		}
		for _, it := range batch {
			it.done <- n
		}
	})
	it := newItem(0)
	if !l.Add("a", it) {
		t.Fatal("Add refused")
	}
	waitFor(t, func() bool { return len(l.lane("a")) == 0 }) // the sender lingers with it
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited out the linger")
	}
	if n := <-it.done; n != -1 {
		t.Errorf("item answered %d, want it sent under the cancelled context (-1)", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
