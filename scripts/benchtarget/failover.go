package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ledger is what the driver's own client knows: every key sent and its outcome.
type ledger struct {
	mu       sync.Mutex
	payments map[string]payment
	status   map[string]string // committed, failed, or "" (unknown: to read back)
}

func (l *ledger) record(p payment, status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.payments[p.Key] = p
	l.status[p.Key] = status
}

// send posts p with its key until it has an outcome (retrying through failovers), records it,
// and returns the status.
func (l *ledger) send(ctx context.Context, t *target, p payment) string {
	deadline := time.Now().Add(retryFor)
	backoff := 10 * time.Millisecond
	for {
		status, err := t.pay(context.WithoutCancel(ctx), p)
		if errors.Is(err, errRefused) {
			status = "refused"
		}
		if status != "" || time.Now().After(deadline) {
			l.record(p, status)
			return status
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// failover kills unit primaries under load and measures kill → buckets serving again.
func failover(ctx context.Context, t *target, o options) error {
	st, err := t.routing(ctx)
	if err != nil {
		return err
	}
	units := make([]string, 0, len(st.Units))
	for name := range st.Units {
		units = append(units, name)
	}
	slices.Sort(units)
	l := &ledger{payments: map[string]payment{}, status: map[string]string{}}
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range o.loadWorkers {
		// Each worker ends with stopLoad, after its payment in flight has an outcome.
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for seq := int64(0); lctx.Err() == nil; seq++ {
				l.send(lctx, t, newPayment(rng, w, seq, o))
			}
		})
	}
	var took []time.Duration
	var coreMS []int64
	for i := 0; i < o.kills && ctx.Err() == nil; i++ {
		if err := t.awaitHealthy(ctx); err != nil {
			stopLoad()
			wg.Wait()
			return err
		}
		sleep(ctx, o.killEvery)
		unit := units[i%len(units)]
		st, err := t.routingRetry(ctx)
		if err != nil {
			stopLoad()
			wg.Wait()
			return err
		}
		bucket := int64(slices.Index(st.Buckets, unit))
		primary := st.Units[unit].Primary
		killed := time.Now()
		if err := t.kill(ctx, unit, primary); err != nil {
			stopLoad()
			wg.Wait()
			return err
		}
		probe := payment{Key: fmt.Sprintf("probe-%d-%d", i, killed.UnixNano()), FromUID: bucket, ToUID: bucket + 100, AmountMinor: 1}
		status := l.send(ctx, t, probe)
		d := time.Since(killed)
		took = append(took, d)
		after, _ := t.routingRetry(ctx)
		coreMS = append(coreMS, after.Units[unit].LastFailoverMS)
		fmt.Printf("kill %2d: unit %s primary %s: serving again after %6.1f ms (%s); core measured %d ms\n",
			i+1, unit, primary, float64(d.Microseconds())/1000, status, after.Units[unit].LastFailoverMS)
	}
	_ = t.awaitHealthy(ctx)
	stopLoad()
	wg.Wait()
	lost, twice, unresolved, err := l.verify(ctx, t, o.accounts)
	if err != nil {
		return err
	}
	verdict, _ := t.audit(ctx)
	slices.Sort(took)
	p99, median := time.Duration(0), time.Duration(0)
	if len(took) > 0 {
		p99 = took[(len(took)*99+99)/100-1] // nearest rank
		median = took[len(took)/2]
	}
	fmt.Printf("failover over %d kills: median %.1f ms, p99 %.1f ms; %d payments acknowledged, %d lost, %d accounts off (applied twice or lost), %d unresolved; audit %s\n",
		len(took), ms(median), ms(p99), l.acknowledged(), lost, twice, unresolved, verdict)
	out, _ := json.Marshal(map[string]any{
		"mode": "failover", "kills": len(took), "median_ms": ms(median), "p99_ms": ms(p99), "core_measured_ms": coreMS,
		"acknowledged": l.acknowledged(), "lost": lost, "accounts_off": twice, "unresolved": unresolved, "audit": verdict,
	})
	fmt.Println(string(out))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l *ledger) acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.status {
		if s == "committed" || s == "failed" {
			n++
		}
	}
	return n
}

// verify reads every key back: an acknowledged key must be found with its outcome (else lost);
// an unknown one is resolved. Then every account's balance must be what the outcomes make it
// (a payment applied twice, or lost, shows there).
func (l *ledger) verify(ctx context.Context, t *target, accounts int) (lost, off, unresolved int, err error) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.status))
	for k := range l.status {
		keys = append(keys, k)
	}
	l.mu.Unlock()
	var mu sync.Mutex
	each(keys, func(k string) {
		status, body, err := t.call(ctx, http.MethodGet, t.router+"/v1/payments/"+url.PathEscape(k), nil, false)
		var o outcome
		_ = json.Unmarshal(body, &o)
		mu.Lock()
		defer mu.Unlock()
		want := l.status[k]
		switch {
		case want == "refused":
		case want != "" && (err != nil || status != http.StatusOK || o.Status != want):
			lost++
		case want == "" && err == nil && status == http.StatusOK:
			l.status[k] = o.Status
		case want == "" && err == nil && status == http.StatusNotFound:
			l.status[k] = "absent"
		case want == "":
			unresolved++
		}
	})
	if unresolved > 0 {
		return lost, 0, unresolved, nil
	}
	expected := make([]int64, accounts)
	for i := range expected {
		expected[i] = 1_000_000_000
	}
	for k, s := range l.status {
		if s == "committed" {
			p := l.payments[k]
			expected[p.FromUID] -= p.AmountMinor
			expected[p.ToUID] += p.AmountMinor
		}
	}
	uids := make([]string, accounts)
	for i := range uids {
		uids[i] = strconv.Itoa(i)
	}
	each(uids, func(uid string) {
		status, body, err := t.call(ctx, http.MethodGet, t.router+"/v1/accounts/"+uid, nil, false)
		var a struct {
			BalanceMinor int64 `json:"balance_minor"`
		}
		_ = json.Unmarshal(body, &a)
		i, _ := strconv.Atoi(uid)
		if err != nil || status != http.StatusOK || a.BalanceMinor != expected[i] {
			mu.Lock()
			off++
			mu.Unlock()
		}
	})
	return lost, off, 0, nil
}

// each calls f on every item from readBackWorkers goroutines and returns when all are done.
func each(items []string, f func(string)) {
	ch := make(chan string)
	var wg sync.WaitGroup
	for range readBackWorkers {
		wg.Go(func() { // ends when ch is closed and drained
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

// routingState is the part of the routing table the driver reads.
type routingState struct {
	Buckets []string `json:"buckets"`
	Units   map[string]struct {
		Primary        string `json:"primary"`
		LastFailoverMS int64  `json:"last_failover_ms"`
	} `json:"units"`
}

func (t *target) routing(ctx context.Context) (routingState, error) {
	var st routingState
	status, body, err := t.call(ctx, http.MethodGet, t.admin+"/admin/routing", nil, true)
	if err != nil || status != http.StatusOK {
		return st, fmt.Errorf("read routing: %d %v", status, err)
	}
	return st, json.Unmarshal(body, &st)
}

// routingRetry reads the routing table, retrying for up to healWait (the admin API or the core
// zone may be slow to answer on a loaded machine).
func (t *target) routingRetry(ctx context.Context) (routingState, error) {
	deadline := time.Now().Add(healWait)
	for {
		st, err := t.routing(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return st, err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func (t *target) kill(ctx context.Context, unit, replica string) error {
	status, body, err := t.call(ctx, http.MethodPost, t.admin+"/admin/processes/unit/"+unit+"/"+replica+"/kill", nil, true)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("kill unit %s/%s: %d %s %v", unit, replica, status, body, err)
	}
	return nil
}

// awaitHealthy waits until every unit serves with a synced standby again.
func (t *target) awaitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(healWait)
	for ctx.Err() == nil {
		status, body, err := t.call(ctx, http.MethodGet, t.admin+"/admin/health", nil, true)
		var h struct {
			OK bool `json:"ok"`
		}
		if err == nil && status == http.StatusOK && json.Unmarshal(body, &h) == nil && h.OK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("target not healthy after %v", healWait)
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return ctx.Err()
}

// audit returns the audit's overall verdict.
func (t *target) audit(ctx context.Context) (string, error) {
	status, body, err := t.call(ctx, http.MethodGet, t.admin+"/admin/audit", nil, true)
	if err != nil || status != http.StatusOK {
		return "unknown", fmt.Errorf("audit: %d %v", status, err)
	}
	var rep struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return "unknown", err
	}
	return rep.Verdict, nil
}
