package audit

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// CheckShadowLeaks is the invariant "zero stress writes in production": no production database
// of any replica took a write marked as stress traffic.
const CheckShadowLeaks = "zero_stress_writes_in_production"

// shadowPrefix names the shadow plane's own invariants among a report's checks.
const shadowPrefix = "shadow."

// PlaneClient returns a client whose every request is marked for the shadow plane: with it,
// the audit's requests to unit replicas and consumer groups read their shadow data.
func PlaneClient(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out := *c
	out.Transport = planeTransport{base: base}
	return &out
}

type planeTransport struct{ base http.RoundTripper }

func (t planeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(shadow.PlaneHeader, string(shadow.Shadow))
	return t.base.RoundTrip(r)
}

// OnlineWithShadow is OnlineWithEvents over both planes: production's invariants, the leak
// invariant, and the shadow plane's own invariants (money conserved there too, its events
// applied once), named shadow.<name>. The two planes are audited side by side.
func OnlineWithShadow(ctx context.Context, client *http.Client, targets []Target, p Pipeline) (Report, error) {
	if client == nil {
		client = http.DefaultClient
	}
	var (
		wg         sync.WaitGroup
		prod, shad Report
		errP, errS error
		leaks      ledger.Check
	)
	wg.Go(func() { prod, errP = OnlineWithEvents(ctx, client, targets, p) })
	wg.Go(func() {
		sp := p
		sp.Stream = events.ShadowStream
		shad, errS = OnlineWithEvents(ctx, PlaneClient(client), targets, sp)
	})
	wg.Go(func() { leaks = onlineLeaks(ctx, client, targets) })
	wg.Wait()
	if errP != nil {
		return prod, errP
	}
	if errS != nil {
		return prod, errS
	}
	return prod.withShadow(leaks, &shad), nil
}

// withShadow adds the leak invariant and, when given, the shadow plane's report to r.
func (r Report) withShadow(leaks ledger.Check, shad *Report) Report {
	r.Checks = append(r.Checks, leaks)
	if shad != nil {
		for _, c := range shad.Checks {
			c.Name = shadowPrefix + c.Name
			r.Checks = append(r.Checks, c)
		}
		r.Shadow = shad
	}
	r.Verdict = ledger.Overall(r.Checks)
	return r
}

// shadowAnswer is a replica's GET /internal/shadow.
type shadowAnswer struct {
	Ready bool   `json:"ready"`
	Error string `json:"error"`
	Leaks int64  `json:"leaks"`
}

// onlineLeaks asks every replica for its production database's leak count.
func onlineLeaks(ctx context.Context, client *http.Client, targets []Target) ledger.Check {
	leaks := map[string]int64{}
	var missing []string
	ready := int64(0)
	for _, t := range targets {
		var a shadowAnswer
		if err := get(ctx, client, "http://"+t.Addr+"/internal/shadow", &a); err != nil {
			missing = append(missing, t.Unit+"/"+t.Replica)
			continue
		}
		if a.Ready {
			ready++
		}
		leaks[t.Unit] = max(leaks[t.Unit], a.Leaks)
	}
	c := judgeLeaks(leaks, int64(len(targets)), missing)
	c.Figures["shadow_ready"] = ready
	return c
}

// judgeLeaks judges the leak counts of units (the highest of each unit's replicas: the
// standby counts the leaks it applied from the primary, the same ones).
func judgeLeaks(leaks map[string]int64, asked int64, missing []string) ledger.Check {
	c := ledger.Check{Name: CheckShadowLeaks, Figures: map[string]int64{"replicas": asked, "replicas_unread": int64(len(missing))}}
	var total int64
	var where []string
	for u, n := range leaks {
		total += n
		if n > 0 {
			where = append(where, fmt.Sprintf("%s: %d", u, n))
		}
	}
	sort.Strings(where)
	c.Figures["stress_writes_in_production"] = total
	switch {
	case total > 0:
		c.Verdict, c.Detail = ledger.False, fmt.Sprintf("%d stress writes in production databases (%s)", total, strings.Join(where, ", "))
	case len(missing) > 0:
		c.Verdict, c.Detail = ledger.Unknown, "replicas not read: "+strings.Join(missing, ", ")
	default:
		c.Verdict, c.Detail = ledger.True, fmt.Sprintf("no stress write in the production databases of %d replicas", asked)
	}
	return c
}

// offlineLeaks reads every production database's leak count under dataDir.
func offlineLeaks(ctx context.Context, dbs map[string]*storage.DB) ledger.Check {
	leaks := map[string]int64{}
	var missing []string
	keys := make([]string, 0, len(dbs))
	for k := range dbs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n, err := dbs[k].MetaNum(ctx, storage.MetaShadowLeaks)
		if err != nil {
			missing = append(missing, k)
			continue
		}
		u := filepath.Dir(filepath.FromSlash(k))
		leaks[u] = max(leaks[u], n)
	}
	return judgeLeaks(leaks, int64(len(dbs)), missing)
}

// ShadowCoreFigures reads the core zone's figures of the shadow plane's cross-unit transfers.
func ShadowCoreFigures(ctx context.Context, client *http.Client, coreAddrs []string) ledger.CoreTransfers {
	return coreFigures(ctx, client, coreAddrs, "/v1/transfers?plane="+string(shadow.Shadow))
}

// WithShadowCore is WithCore for the shadow plane's report: its cross-unit invariant judged
// against the core zone's decisions of the shadow plane's transfers.
func (r Report) WithShadowCore(core ledger.CoreTransfers) Report {
	if r.Shadow == nil {
		return r
	}
	s := r.Shadow.WithCore(core)
	r.Shadow = &s
	for _, c := range s.Checks {
		if c.Name != ledger.CheckCrossUnitAtomic {
			continue
		}
		for i := range r.Checks {
			if r.Checks[i].Name == shadowPrefix+c.Name {
				c.Name = r.Checks[i].Name
				r.Checks[i] = c
			}
		}
	}
	r.Verdict = ledger.Overall(r.Checks)
	return r
}

// SettleShadowTransfers is SettleTransfers for the shadow plane's transfers.
func SettleShadowTransfers(ctx context.Context, client *http.Client, coreAddrs []string) ledger.CoreTransfers {
	figures := func(ctx context.Context) ledger.CoreTransfers { return ShadowCoreFigures(ctx, client, coreAddrs) }
	return settle(ctx, figures, transfersSettled)
}
