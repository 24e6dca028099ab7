package supervisor_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/targettest"
)

// misrouteWritesMin is how many marked payments the defect's test sends at least: over two
// units, enough for the shadow-misroute defect (one in a thousand per replica) to strike.
const misrouteWritesMin = 2600

// isolation runs marked and unmarked payments side by side on a two-unit target and returns the
// two witnesses and the audit.
func isolation(t *testing.T, defects []string, markedMin int) (prod, shad targettest.Witness, rep audit.Report, live supervisor.Shadow) {
	t.Helper()
	tg := targettest.Start(t, targettest.Options{Units: 2, Defects: defects})
	newWorkload := func(h http.Header) *targettest.Workload {
		c := targettest.NewClient(tg.RouterURL, 10)
		c.Header = h
		return &targettest.Workload{Client: c, Accounts: 400, Balance: 1_000_000, Workers: 6, AmountMax: 50, RetryFor: 15 * time.Second,
			CrossUnit: 0.2, Units: 2}
	}
	pw := newWorkload(nil)
	sw := newWorkload(http.Header{shadow.Header: {"isolation-run"}})
	for _, w := range []*targettest.Workload{pw, sw} {
		if err := w.Seed(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, w := range []*targettest.Workload{pw, sw} {
		go func() { w.Run(ctx); done <- struct{}{} }() // ends with cancel
	}
	deadline := time.Now().Add(90 * time.Second)
	for sw.Mark() < markedMin && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
	if sw.Mark() < markedMin {
		t.Fatalf("only %d marked payments acknowledged in 90 s, want %d", sw.Mark(), markedMin)
	}
	if err := tg.Admin(context.Background(), http.MethodGet, "/admin/shadow", &live); err != nil {
		t.Fatal(err)
	}
	prod, shad = pw.Verify(context.Background()), sw.Verify(context.Background())
	t.Logf("production: %s", prod)
	t.Logf("shadow: %s", shad)
	return prod, shad, tg.Audit(t), live
}

func checkOf(rep audit.Report, name string) ledger.Check {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return ledger.Check{Name: name, Verdict: "missing"}
}

// TestShadowIsolation: marked payments (a fifth of them across units) land only in the shadow plane. Production balances are
// exactly what the unmarked payments made them, the shadow plane's what the marked ones made
// them, the audit (both planes) is true and the admin API counts no leak.
func TestShadowIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole topology under load")
	}
	prod, shad, rep, live := isolation(t, nil, 600)
	if !prod.OK() || !shad.OK() {
		t.Errorf("witnesses: production %s; shadow %s", prod, shad)
	}
	if c := checkOf(rep, audit.CheckShadowLeaks); c.Verdict != ledger.True {
		t.Errorf("%s: %s %s %v", c.Name, c.Verdict, c.Detail, c.Figures)
	}
	if rep.Verdict != ledger.True || rep.Shadow == nil {
		t.Errorf("audit %s (shadow report present: %v): %+v", rep.Verdict, rep.Shadow != nil, rep.Checks)
	}
	for _, name := range []string{"shadow.money_conserved", "shadow.events_applied_once", "shadow.cross_unit_atomic", "cross_unit_atomic"} {
		if c := checkOf(rep, name); c.Verdict != ledger.True {
			t.Errorf("%s: %s %s", name, c.Verdict, c.Detail)
		}
	}
	if live.Leaks != 0 || live.Ready != live.Replicas || live.Replicas != 4 {
		t.Errorf("admin shadow: %+v", live)
	}
}

// TestShadowMisrouteCaught: with the shadow-misroute defect, the leaks are counted live and the
// audit's invariant is false.
func TestShadowMisrouteCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole topology under load")
	}
	_, _, rep, live := isolation(t, []string{"shadow-misroute"}, misrouteWritesMin)
	if c := checkOf(rep, audit.CheckShadowLeaks); c.Verdict != ledger.False || c.Figures["stress_writes_in_production"] == 0 {
		t.Errorf("%s: %s %s %v, want false", c.Name, c.Verdict, c.Detail, c.Figures)
	}
	if rep.Verdict != ledger.False {
		t.Errorf("audit verdict %s, want false", rep.Verdict)
	}
	if live.Leaks == 0 {
		t.Errorf("admin shadow counted no leak: %+v", live)
	}
}
