package supervisor_test

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/storage"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/targettest"
)

// misrouteWritesMin is how many marked payments the defect's test sends at least, on one unit:
// enough for the shadow-misroute defect (one marked write in a thousand per replica) to strike.
const misrouteWritesMin = 1100

// markedKeys begins the key of every marked payment of the tests, so that the databases can be
// searched for them.
const markedKeys = "m-"

// isolated is what a run of marked and unmarked payments side by side found.
type isolated struct {
	prod, shad targettest.Witness
	rep        audit.Report
	live       supervisor.Shadow
	// leaked: marked keys a production client reads back through the business API.
	leaked []string
	rows   markedRows
	// missing: committed marked payments no shadow database holds.
	missing []string
}

// isolationRun shapes an isolation run.
type isolationRun struct {
	units       int
	defects     []string
	prodWorkers int // beside 6 marked workers
	markedMin   int // marked payments acknowledged before the run ends
}

// isolation runs marked and unmarked payments side by side (a fifth across units) on a target on
// storage srv and returns what the witnesses, the audit and the databases say.
func isolation(t *testing.T, srv sqldb.Server, run isolationRun) isolated {
	t.Helper()
	tg := targettest.Start(t, targettest.Options{Units: run.units, Defects: run.defects, Storage: srv})
	newWorkload := func(h http.Header, workers int) *targettest.Workload {
		c := targettest.NewClient(tg.RouterURL, 10)
		c.Header = h
		return &targettest.Workload{Client: c, Accounts: 400, Balance: 1_000_000, Workers: workers, AmountMax: 50, RetryFor: 15 * time.Second,
			CrossUnit: 0.2, Units: run.units}
	}
	pw := newWorkload(nil, run.prodWorkers)
	sw := newWorkload(http.Header{shadow.Header: {"isolation-run"}}, 6)
	sw.KeyPrefix = markedKeys
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
	for sw.Mark() < run.markedMin && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
	if sw.Mark() < run.markedMin {
		t.Fatalf("only %d marked payments acknowledged in 90 s, want %d", sw.Mark(), run.markedMin)
	}
	var out isolated
	if err := tg.Admin(context.Background(), http.MethodGet, "/admin/shadow", &out.live); err != nil {
		t.Fatal(err)
	}
	out.prod, out.shad = pw.Verify(context.Background()), sw.Verify(context.Background())
	t.Logf("production: %s", out.prod)
	t.Logf("shadow: %s", out.shad)
	out.rep = tg.Audit(t)
	out.leaked = sw.FoundBy(context.Background(), pw.Client)
	out.rows = findMarked(t, tg, srv, markedKeys)
	for _, k := range sw.Committed() {
		if !out.rows.shadow[k] {
			out.missing = append(out.missing, k)
		}
	}
	t.Logf("databases: %d rows of marked payments in production %v; %d marked keys in the shadow databases, %d committed ones missing",
		out.rows.production, out.rows.byTable, len(out.rows.shadow), len(out.missing))
	return out
}

// markedRows is the test's own look into the unit replicas' databases, beside the audit's.
type markedRows struct {
	// production counts rows under marked keys in production databases (every replica);
	// byTable by "unit/replica/table".
	production int64
	byTable    map[string]int64
	// shadow holds the marked keys of payments and transfer legs in the shadow databases.
	shadow map[string]bool
}

// markedTables are the tables of a unit's database whose rows carry a payment's key.
var markedTables = []string{"payments", "postings", "outbox", "tcc", "lost"}

// findMarked reads every unit replica's production and shadow database (SQLite files or
// PostgreSQL schemas, as the target placed them) for the rows of keys beginning with prefix.
func findMarked(t *testing.T, tg *targettest.Target, srv sqldb.Server, prefix string) markedRows {
	t.Helper()
	ctx := context.Background()
	out := markedRows{byTable: map[string]int64{}, shadow: map[string]bool{}}
	for _, p := range tg.Topology(t).Processes {
		if p.Role != supervisor.RoleUnit {
			continue
		}
		prod := srv.Place(filepath.Join(tg.DataDir, "units", p.Unit, p.Replica), storage.FileName, "unit", p.Unit, p.Replica)
		db := openReaders(t, prod)
		for _, table := range markedTables {
			var n int64
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE idem_key LIKE $1`, prefix+"%").Scan(&n); err != nil {
				t.Fatalf("%s: count marked rows of %s: %v", prod, table, err)
			}
			if n > 0 {
				out.production += n
				out.byTable[p.Unit+"/"+p.Replica+"/"+table] = n
			}
		}
		sdb := openReaders(t, storage.ShadowPlace(prod))
		rows, err := sdb.QueryContext(ctx, `SELECT idem_key FROM payments WHERE idem_key LIKE $1
			UNION SELECT idem_key FROM tcc WHERE idem_key LIKE $1`, prefix+"%")
		if err != nil {
			t.Fatalf("%s: read marked keys: %v", storage.ShadowPlace(prod), err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out.shadow[k] = true
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func openReaders(t *testing.T, p sqldb.Place) *sql.DB {
	t.Helper()
	db, err := sqldb.OpenReaders(context.Background(), p, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func checkOf(rep audit.Report, name string) ledger.Check {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return ledger.Check{Name: name, Verdict: "missing"}
}

// TestShadowIsolation: marked payments (a fifth of them across units) land only in the shadow
// plane, on SQLite and on PostgreSQL. Production balances are exactly what the unmarked
// payments made them, the shadow plane's what the marked ones made them; no production
// database holds a row of a marked payment, and the shadow databases hold every committed one;
// a production client reads none back; the audit (both planes) is true and the admin API
// counts no leak.
func TestShadowIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole topology under load")
	}
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			got := isolation(t, be.Server(t), isolationRun{units: 2, prodWorkers: 6, markedMin: 600})
			if !got.prod.OK() || !got.shad.OK() {
				t.Errorf("witnesses: production %s; shadow %s", got.prod, got.shad)
			}
			if got.rows.production != 0 || len(got.missing) != 0 || len(got.leaked) != 0 {
				t.Errorf("marked payments: %d rows in production databases %v; %d committed missing from the shadow databases %v; %d read back by a production client %v",
					got.rows.production, got.rows.byTable, len(got.missing), first(got.missing), len(got.leaked), first(got.leaked))
			}
			rep := got.rep
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
			if got.live.Leaks != 0 || got.live.Ready != got.live.Replicas || got.live.Replicas != 4 {
				t.Errorf("admin shadow: %+v", got.live)
			}
		})
	}
}

// first is at most the first 5 of s, for messages.
func first(s []string) []string { return s[:min(5, len(s))] }

// TestShadowMisrouteCaught: with the shadow-misroute defect, the leaks are counted live, the
// audit's invariant is false, and the test's own look into the production databases finds the
// misrouted rows.
func TestShadowMisrouteCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole topology under load")
	}
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			// One unit and few production workers: the defect needs marked writes on one replica,
			// and the test's time goes into them.
			got := isolation(t, be.Server(t), isolationRun{units: 1, defects: []string{"shadow-misroute"}, prodWorkers: 2, markedMin: misrouteWritesMin})
			rep := got.rep
			if c := checkOf(rep, audit.CheckShadowLeaks); c.Verdict != ledger.False || c.Figures["stress_writes_in_production"] == 0 {
				t.Errorf("%s: %s %s %v, want false", c.Name, c.Verdict, c.Detail, c.Figures)
			}
			if rep.Verdict != ledger.False {
				t.Errorf("audit verdict %s, want false", rep.Verdict)
			}
			if got.live.Leaks == 0 {
				t.Errorf("admin shadow counted no leak: %+v", got.live)
			}
			if got.rows.production == 0 {
				t.Errorf("no row of a marked payment in the production databases")
			}
		})
	}
}
