package supervisor_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/targettest"
)

// The rehearsal's load (TestSeededDefectsAreCaught): production workers and stress-marked ones
// (1 in 9 payments marked, about 11%), each a fifth across units (crossShare); and the consumer
// group throttled to throttledPercent during the faults.
const (
	rehearsalWorkers       = 8
	rehearsalMarkedWorkers = 1
	throttledGroup         = "settlement"
	throttledPercent       = 10
)

// rehearsalChecks are the audit's invariants the rehearsal names one by one (beside the whole
// verdict): the books, the events, cross-unit atomicity, the isolation of stress traffic and
// the shadow plane's own.
var rehearsalChecks = []string{
	ledger.CheckMoneyConserved, ledger.CheckAcknowledgedOnce, ledger.CheckReplicasConverged,
	ledger.CheckEventsPublishedOnce, ledger.CheckEventsAppliedOnce, ledger.CheckLagDrained,
	ledger.CheckCrossUnitAtomic, audit.CheckShadowLeaks,
	"shadow." + ledger.CheckMoneyConserved, "shadow." + ledger.CheckEventsAppliedOnce, "shadow." + ledger.CheckCrossUnitAtomic,
}

// checkRehearsal judges a sound target's run under the mixed load and the faults, beside the
// audit's verdict: every invariant of rehearsalChecks true; both workloads' witnesses (wit is
// production's) read every acknowledged key back and find every balance what their own
// acknowledged payments made it (production: the seed plus the unmarked payments); no marked
// payment in a production database or visible to a production client, every committed one in
// the shadow databases.
func checkRehearsal(t *testing.T, l *loaded, srv sqldb.Server, wit targettest.Witness, rep audit.Report) {
	t.Helper()
	ctx := context.Background()
	marked := l.marked.Verify(ctx)
	t.Logf("marked: %s; %.1f%% of the payments sent", marked, 100*float64(marked.Sent)/float64(marked.Sent+wit.Sent))
	if !wit.OK() || wit.Committed == 0 || wit.CrossCommitted == 0 {
		t.Errorf("production witness: %s, want nothing wrong over same- and cross-unit payments", wit)
	}
	if !marked.OK() || marked.Committed == 0 {
		t.Errorf("marked witness: %s, want nothing wrong over some payments", marked)
	}
	if leaked := l.marked.FoundBy(ctx, l.w.Client); len(leaked) != 0 {
		t.Errorf("%d marked payments read back by a production client: %v", len(leaked), first(leaked))
	}
	rows := findMarked(t, l.tg, srv, markedKeys)
	var missing []string
	for _, k := range l.marked.Committed() {
		if !rows.shadow[k] {
			missing = append(missing, k)
		}
	}
	if rows.production != 0 || len(missing) != 0 {
		t.Errorf("marked payments: %d rows in production databases %v; %d committed missing from the shadow databases %v",
			rows.production, rows.byTable, len(missing), first(missing))
	}
	t.Logf("events %+v", rep.Events)
	for _, name := range rehearsalChecks {
		if c := checkOf(rep, name); c.Verdict != ledger.True {
			t.Errorf("%s: %s %s", name, c.Verdict, c.Detail)
		}
	}
}

// throttle sets a consumer group's throttle to percent of its rate through the admin API.
func throttle(t *testing.T, tg *targettest.Target, group string, percent float64) {
	t.Helper()
	var st consumer.State
	err := tg.AdminSend(context.Background(), http.MethodPost, "/admin/consumers/"+group+"/throttle", consumer.PercentThrottle(percent), &st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("throttled %s: %+v", group, st)
}

// release checks that group is still throttled to percent (the faults restarted no consumer)
// and lifts the throttle through the admin API.
func release(t *testing.T, tg *targettest.Target, group string, percent float64) {
	t.Helper()
	ctx := context.Background()
	var st consumer.State
	if err := tg.Admin(ctx, http.MethodGet, "/admin/consumers/"+group, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Throttled || st.Percent != percent {
		t.Errorf("consumer %s before the release: %+v, want throttled to %v%%", group, st, percent)
	}
	if err := tg.AdminSend(ctx, http.MethodDelete, "/admin/consumers/"+group+"/throttle", nil, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("released %s: %+v", group, st)
}
