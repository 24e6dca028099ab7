package unit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// loader sends payments from loadWorkers goroutines to whichever replica the core zone holds as
// primary, retrying each key (same key, same fields) until it is acknowledged, like a client
// behind the router.
type loader struct {
	p       *unittest.Pair
	w       *unittest.Witness
	next    atomic.Int64
	retries atomic.Int64
}

const loadWorkers = 16

func (l *loader) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Add(1)
		go func() { // ends with ctx
			defer wg.Done()
			for ctx.Err() == nil {
				i := l.next.Add(1)
				pay := ledger.Payment{Key: fmt.Sprintf("load-%d", i), FromUID: i % 8, ToUID: (i + 3) % 8, AmountMinor: 1 + i%5}
				l.until(ctx, pay)
			}
		}()
	}
	wg.Wait()
}

// until retries pay until it is acknowledged or ctx ends (an unacknowledged key is simply not
// in the witness: it may or may not have been applied, once).
func (l *loader) until(ctx context.Context, pay ledger.Payment) {
	for ctx.Err() == nil {
		c := l.p.Core.Config()
		addr := l.p.Replicas[c.Primary].Addr()
		if addr == "" {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		status, o, err := l.p.Client.Pay(rctx, addr, c.Epoch, pay)
		cancel()
		if err == nil && status == http.StatusOK {
			l.w.Ack(o)
			return
		}
		if err == nil && status != http.StatusMisdirectedRequest && status != http.StatusServiceUnavailable {
			panic(fmt.Sprintf("payment %s: status %d", pay.Key, status))
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		l.retries.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKillsUnderLoad kills the primary three times while clients pay, fails over each time,
// brings the killed replica back catching up, and requires every acknowledged payment on the
// final primary (read back by the client) and every invariant true.
func TestKillsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills under load: a few seconds")
	}
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 8, 1_000_000)
	l := &loader{p: p, w: unittest.NewWitness()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }() // ends with cancel below
	for kill := range 3 {
		time.Sleep(300 * time.Millisecond)
		before := l.w.Len()
		victim := p.Primary()
		held, _ := p.State(victim)
		victim.Kill()
		primary := p.Failover(t)
		start := time.Now()
		victim.Start(ledger.RoleCatchingUp, p.Epoch(), "", primary.Addr())
		// Back as a promotable standby: in the configuration and holding what the primary
		// acknowledged alone before it was added (the core zone's sync guard; killing the
		// primary earlier leaves no standby the core zone would promote).
		// The wait lasts while the victim's state, its catch-up series (a snapshot's bytes as
		// they arrive and install) or its place in the configuration move.
		waitProgress(t, fmt.Sprintf("kill %d: the victim back as a synced standby", kill), func() bool {
			c := p.Core.Config()
			return c.Standby == victim.Name && c.StandbyOK && p.Core.Synced()
		}, func() string {
			st, err := p.State(victim)
			return fmt.Sprintf("victim %+v (%v; %s), core %+v", st, err, catchUpFigures(p, victim), p.Core.Config())
		})
		st, _ := p.State(victim)
		t.Logf("kill %d: back as a synced standby in %v, holding seq %d of %d before the catch-up; %s",
			kill, time.Since(start).Round(time.Millisecond), held.LastSeq, st.LastSeq, catchUpFigures(p, victim))
		waitProgress(t, fmt.Sprintf("kill %d: payments acknowledged again", kill), func() bool { return l.w.Len() > before+50 },
			func() string { return fmt.Sprint(l.w.Len()) })
	}
	cancel()
	<-done
	final := p.Primary()
	t.Logf("%d payments acknowledged, %d retries", l.w.Len(), l.retries.Load())
	if bad := l.w.Check(context.Background(), p.Client, final.Addr()); len(bad) > 0 {
		t.Fatalf("%d acknowledged payments not read back, e.g. %v", len(bad), bad[0])
	}
	expectAllTrue(t, p)
}

// catchUpFigures reads r's catch-up series from its metrics: how it caught up and what it pulled.
func catchUpFigures(p *unittest.Pair, r *unittest.Replica) string {
	_, raw, err := p.Client.Do(context.Background(), http.MethodGet, "http://"+r.Addr()+"/metrics", nil, nil, 0)
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "paycell_catchup") {
			out = append(out, l)
		}
	}
	return strings.Join(out, ", ")
}
