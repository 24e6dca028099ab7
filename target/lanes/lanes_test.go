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
	l := New(1, 3, 16, func(_ context.Context, dest string, batch []item) {
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
	l := New(1, 10, 4, func(_ context.Context, dest string, batch []item) {
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
	l := New(1, 1, 2, func(_ context.Context, _ string, batch []item) {
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
