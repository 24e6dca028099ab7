package targettest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/target/router"
)

// Payment statuses the workload records, beside the target's committed and failed.
const (
	StatusCommitted = "committed"
	StatusFailed    = "failed"
	statusRejected  = "rejected" // a 4xx other than a conflict: never applied
	statusConflict  = "conflict" // 409 idempotency_conflict for a key sent with the same fields
	statusUnknown   = "unknown"  // no answer within RetryFor
	statusAbsent    = "absent"   // unknown, then not found when read back
)

// Workload sends payments between accounts [0, Accounts) from Workers goroutines, same-unit
// ones and a CrossUnit share of cross-unit ones, each retried with its idempotency key until it
// has an outcome, and remembers every key and outcome: it is the test's own witness, beside the
// audit.
type Workload struct {
	Client   *Client
	Accounts int   // a multiple of 100, at least 200
	Balance  int64 // opening balance of every account
	Workers  int
	// AmountMax bounds a payment's amount (1..AmountMax).
	AmountMax int64
	// RetryFor is how long a payment is retried before its outcome is unknown.
	RetryFor time.Duration
	// Pause is each worker's rest between two payments (0: none).
	Pause time.Duration
	// CrossUnit is the share (0..1) of payments between accounts of two units; Units is the
	// target's unit count (0: 4), which places the buckets (bucket % units).
	CrossUnit float64
	Units     int
	// KeyPrefix begins the idempotency key of every payment the workers send, so that a test
	// can tell two workloads' payments apart in the databases (stress-marked ones, say).
	KeyPrefix string

	mu      sync.Mutex
	records map[string]*record
	acked   []string // keys with an acknowledged outcome, in order
	probes  int
	replays struct{ sent, mismatched int }
}

type record struct {
	p      Payment
	status string
}

// Witness is what the workload's own client found after a run.
type Witness struct {
	Sent, Committed, Failed, Rejected, Unknown int
	// CrossSent and CrossCommitted count the cross-unit payments among them.
	CrossSent, CrossCommitted int
	Replayed                  int
	// Lost: acknowledged keys the business API no longer knows, or knows with another outcome.
	Lost []string
	// Conflicts: keys the target called conflicting though they were always sent the same.
	Conflicts []string
	// ReplayMismatches: acknowledged keys whose replay answered another outcome.
	ReplayMismatches int
	// BalanceOff: accounts whose balance is not what the acknowledged outcomes make it.
	BalanceOff []string
	// Unresolved: unknown outcomes that could not be read back (balances are then not compared).
	Unresolved int
}

// OK says the witness saw nothing wrong.
func (w Witness) OK() bool {
	return len(w.Lost) == 0 && len(w.Conflicts) == 0 && w.ReplayMismatches == 0 && len(w.BalanceOff) == 0 && w.Unresolved == 0
}

func (w Witness) String() string {
	return fmt.Sprintf("sent %d: committed %d, failed %d, rejected %d, unknown %d; cross-unit %d (%d committed); replayed %d (%d mismatched); lost %d %v; conflicts %d; balances off %d %v; unresolved %d",
		w.Sent, w.Committed, w.Failed, w.Rejected, w.Unknown, w.CrossSent, w.CrossCommitted, w.Replayed, w.ReplayMismatches,
		len(w.Lost), first(w.Lost, 5), len(w.Conflicts), len(w.BalanceOff), first(w.BalanceOff, 5), w.Unresolved)
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// Seed creates the accounts.
func (w *Workload) Seed(ctx context.Context) error {
	if w.Accounts < 200 || w.Accounts%100 != 0 {
		return fmt.Errorf("seed workload: %d accounts, want a multiple of 100 from 200", w.Accounts)
	}
	return w.Client.CreateAccounts(ctx, w.Accounts, w.Balance)
}

// Run sends payments until ctx ends; payments in flight then are still retried (up to RetryFor).
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.Workers {
		// Each worker ends when ctx does, after its payment in flight has an outcome.
		wg.Go(func() { w.work(ctx, i) })
	}
	wg.Wait()
}

func (w *Workload) work(ctx context.Context, worker int) {
	rng := rand.New(rand.NewPCG(uint64(worker), uint64(time.Now().UnixNano())))
	n := int64(w.Accounts)
	for seq := 0; ctx.Err() == nil; seq++ {
		from := rng.Int64N(n)
		to := (from + 100*(1+rng.Int64N(n/100-1))) % n // same bucket, so the same unit
		if w.CrossUnit > 0 && rng.Float64() < w.CrossUnit {
			to = w.crossPeer(rng, from)
		}
		p := Payment{Key: fmt.Sprintf("%sw%d-%d-%d", w.KeyPrefix, worker, seq, rng.Int64()), FromUID: from, ToUID: to, AmountMinor: 1 + rng.Int64N(w.AmountMax)}
		w.mu.Lock()
		if w.records == nil {
			w.records = map[string]*record{}
		}
		r := &record{p: p, status: statusUnknown}
		w.records[p.Key] = r
		w.mu.Unlock()
		status := w.send(context.WithoutCancel(ctx), p)
		w.mu.Lock()
		r.status = status
		if status == StatusCommitted || status == StatusFailed {
			w.acked = append(w.acked, p.Key)
		}
		w.mu.Unlock()
		if w.Pause > 0 {
			sleep(ctx, w.Pause)
		}
	}
}

// Pay sends one payment from the caller's goroutine, with the workers' retries, and records it
// like theirs; it returns the outcome's status.
func (w *Workload) Pay(ctx context.Context, from, to, amount int64) string {
	w.mu.Lock()
	w.probes++
	p := Payment{Key: fmt.Sprintf("p-%d-%d", w.probes, time.Now().UnixNano()), FromUID: from, ToUID: to, AmountMinor: amount}
	if w.records == nil {
		w.records = map[string]*record{}
	}
	r := &record{p: p, status: statusUnknown}
	w.records[p.Key] = r
	w.mu.Unlock()
	status := w.send(ctx, p)
	w.mu.Lock()
	r.status = status
	if status == StatusCommitted || status == StatusFailed {
		w.acked = append(w.acked, p.Key)
	}
	w.mu.Unlock()
	return status
}

// PayStale sends one payment straight to a unit replica at addr under epoch, as a router whose
// routing table is out of date would, and records it: acknowledged when the replica accepts it
// (it should refuse: 421), never applied otherwise. It returns the replica's status code.
func (w *Workload) PayStale(ctx context.Context, addr string, epoch uint64, from, to, amount int64) (int, error) {
	w.mu.Lock()
	w.probes++
	p := Payment{Key: fmt.Sprintf("s-%d-%d", w.probes, time.Now().UnixNano()), FromUID: from, ToUID: to, AmountMinor: amount}
	if w.records == nil {
		w.records = map[string]*record{}
	}
	r := &record{p: p, status: statusUnknown}
	w.records[p.Key] = r
	w.mu.Unlock()
	direct := &Client{URL: "http://" + addr, HTTP: w.Client.HTTP, Header: http.Header{router.EpochHeader: {strconv.FormatUint(epoch, 10)}}}
	status, out, _, err := direct.Pay(ctx, p)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil && status == http.StatusOK:
		r.status = out.Status
		w.acked = append(w.acked, p.Key)
	case err == nil:
		r.status = statusRejected
	}
	return status, err
}

// send posts p until it has an outcome or RetryFor passes, and returns the outcome's status.
func (w *Workload) send(ctx context.Context, p Payment) string {
	deadline := time.Now().Add(w.RetryFor)
	backoff := 10 * time.Millisecond
	for {
		status, out, eb, err := w.Client.Pay(ctx, p)
		switch {
		case err == nil && status == http.StatusOK:
			return out.Status
		case err == nil && status == http.StatusConflict && eb.Error.Code == "idempotency_conflict":
			return statusConflict
		case err == nil && status >= 400 && status < 500 && status != http.StatusMisdirectedRequest && status != http.StatusTooManyRequests:
			return statusRejected
		}
		if time.Now().After(deadline) {
			return statusUnknown
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// Replay sends the last n acknowledged payments again, with their keys and fields: a client
// that lost the answers. Each must answer its first outcome.
func (w *Workload) Replay(ctx context.Context, n int) {
	w.ReplayBefore(ctx, w.Mark(), n)
}

// Mark is a point in the sequence of acknowledged payments, for ReplayBefore: take it before a
// fault to replay, after the fault, payments that the replica which then served them wrote.
func (w *Workload) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// ReplayBefore is Replay of the n payments acknowledged last before mark.
func (w *Workload) ReplayBefore(ctx context.Context, mark, n int) {
	w.mu.Lock()
	mark = min(mark, len(w.acked))
	keys := append([]string(nil), w.acked[max(0, mark-n):mark]...)
	recs := make([]record, len(keys))
	for i, k := range keys {
		recs[i] = *w.records[k]
	}
	w.mu.Unlock()
	var mismatched atomic.Int64
	// In parallel (bounded): each replay stands alone, as a client retrying many payments does.
	parallel(recs, func(r record) {
		if got := w.send(ctx, r.p); got != r.status {
			mismatched.Add(1)
		}
	})
	w.mu.Lock()
	w.replays.sent += len(recs)
	w.replays.mismatched += int(mismatched.Load())
	w.mu.Unlock()
}

// Verify reads every key back through the business API, resolves unknown outcomes, and
// compares every account's balance with what the outcomes make it. Call it after Run returned.
func (w *Workload) Verify(ctx context.Context) Witness {
	w.mu.Lock()
	recs := make([]*record, 0, len(w.records))
	for _, r := range w.records {
		recs = append(recs, r)
	}
	wit := Witness{Replayed: w.replays.sent, ReplayMismatches: w.replays.mismatched}
	w.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].p.Key < recs[j].p.Key })
	var mu sync.Mutex
	parallel(recs, func(r *record) {
		status, out, err := w.readBack(ctx, r.p.Key)
		mu.Lock()
		defer mu.Unlock()
		switch r.status {
		case StatusCommitted, StatusFailed:
			if err != nil || status != http.StatusOK || out.Status != r.status {
				wit.Lost = append(wit.Lost, fmt.Sprintf("%s(%s→%d %s)", r.p.Key, r.status, status, out.Status))
			}
		case statusUnknown:
			switch {
			case err == nil && status == http.StatusOK:
				r.status = out.Status
			case err == nil && status == http.StatusNotFound:
				r.status = statusAbsent
			default:
				wit.Unresolved++
			}
		}
	})
	expected := make([]int64, w.Accounts)
	for i := range expected {
		expected[i] = w.Balance
	}
	for _, r := range recs {
		wit.Sent++
		cross := w.cross(r.p)
		if cross {
			wit.CrossSent++
		}
		switch r.status {
		case StatusCommitted:
			wit.Committed++
			if cross {
				wit.CrossCommitted++
			}
			expected[r.p.FromUID] -= r.p.AmountMinor
			expected[r.p.ToUID] += r.p.AmountMinor
		case StatusFailed:
			wit.Failed++
		case statusRejected:
			wit.Rejected++
		case statusConflict:
			wit.Conflicts = append(wit.Conflicts, r.p.Key)
		default:
			wit.Unknown++
		}
	}
	if wit.Unresolved > 0 {
		return wit
	}
	uids := make([]int64, w.Accounts)
	for i := range uids {
		uids[i] = int64(i)
	}
	// The core zone answers a cross-unit payment once it is decided, and the payee's unit
	// applies the credit moments later; a reservation of a transfer whose coordinator died is
	// released once its participant asked (PROTOCOL.md): balances converge, so the accounts off
	// are read again until they agree or balanceSettleMax passed.
	deadline := time.Now().Add(balanceSettleMax)
	for {
		var off []int64
		wit.BalanceOff = wit.BalanceOff[:0]
		parallel(uids, func(uid int64) {
			status, a, err := w.account(ctx, uid)
			if err != nil || status != http.StatusOK || a.BalanceMinor != expected[uid] {
				mu.Lock()
				off = append(off, uid)
				wit.BalanceOff = append(wit.BalanceOff, fmt.Sprintf("%d(%d≠%d)", uid, a.BalanceMinor, expected[uid]))
				mu.Unlock()
			}
		})
		if len(off) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		uids = off
		sleep(ctx, 100*time.Millisecond)
	}
	sort.Strings(wit.BalanceOff)
	return wit
}

// Committed returns the keys of the payments committed (after Verify: with the unknown
// outcomes it resolved), sorted.
func (w *Workload) Committed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for k, r := range w.records {
		if r.status == StatusCommitted {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// FoundBy returns the keys of w's committed payments that client c reads back: none, when c
// sees another plane than w's client (a production client reading stress-marked payments).
func (w *Workload) FoundBy(ctx context.Context, c *Client) []string {
	var mu sync.Mutex
	var found []string
	parallel(w.Committed(), func(key string) {
		deadline := time.Now().Add(w.RetryFor)
		for {
			status, _, err := c.Payment(ctx, key)
			if err == nil && status == http.StatusNotFound {
				return
			}
			if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
				mu.Lock()
				found = append(found, fmt.Sprintf("%s(%d %v)", key, status, err))
				mu.Unlock()
				return
			}
			sleep(ctx, 50*time.Millisecond)
		}
	})
	sort.Strings(found)
	return found
}

// readBack reads a payment, retrying while the target is unavailable (bounded).
func (w *Workload) readBack(ctx context.Context, key string) (int, Outcome, error) {
	deadline := time.Now().Add(w.RetryFor)
	for {
		status, out, err := w.Client.Payment(ctx, key)
		if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return status, out, err
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

func (w *Workload) account(ctx context.Context, uid int64) (int, Account, error) {
	deadline := time.Now().Add(w.RetryFor)
	for {
		status, a, err := w.Client.Account(ctx, uid)
		if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return status, a, err
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

const (
	// verifyWorkers bounds the reads of Verify.
	verifyWorkers = 16
	// balanceSettleMax bounds how long Verify reads again the balances that are off: longer
	// than a participant takes to ask the core zone about a leg left tried by a coordinator that
	// died (5 s, then once a second), which a presumed abort then releases.
	balanceSettleMax = 10 * time.Second
)

// parallel calls f on every item from verifyWorkers goroutines, and returns when all are done.
func parallel[T any](items []T, f func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range verifyWorkers {
		// Each ends when ch is closed and drained.
		wg.Go(func() {
			for it := range ch {
				f(it)
			}
		})
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
