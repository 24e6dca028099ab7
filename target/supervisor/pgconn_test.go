package supervisor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/targettest"
)

// commitDropWait bounds the wait for the armed COMMIT to happen under load.
const commitDropWait = 10 * time.Second

// TestCommitOutcomeUnknown: the connection of a unit primary's writer to PostgreSQL drops just
// after the server committed a batch and before the primary heard so (a proxy cuts it), so the
// primary cannot know whether its batch is in. The unit must serve again (a probe payment
// commits), no acknowledged payment is lost or applied twice, and the audit is true.
func TestCommitOutcomeUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a dropped COMMIT under load")
	}
	srv := sqldbtest.Postgres(t)
	proxy := sqldbtest.StartProxy(t) // stopped after the target: its cleanup runs later
	srv.DSN = proxy.DSN
	l := underLoad(t, targettest.Options{Storage: srv}, 8)
	ctx := context.Background()

	time.Sleep(time.Second)
	mark := l.w.Mark()
	st := l.tg.Routing(t)
	primary := st.Units["a"].Primary
	proxy.DropCommits(sqldb.AppName(srv.Prefix+"_unit_a_"+primary), 1)
	for deadline := time.Now().Add(commitDropWait); proxy.Dropped() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no COMMIT of unit a's primary %s in %v", primary, commitDropWait)
		}
	}
	bucket := int64(slices.Index(st.Buckets, "a")) // an account of unit a: uid = bucket
	if status := l.w.Pay(ctx, bucket, bucket+100, 1); status != targettest.StatusCommitted {
		t.Errorf("a payment on unit a after its COMMIT's answer was lost: %s", status)
	}
	if err := l.tg.AwaitHealthy(healMax); err != nil {
		t.Errorf("after the lost COMMIT: %v", err)
	}
	l.w.ReplayBefore(ctx, mark, 200)
	t.Logf("unit a's primary after: %s (was %s)", l.tg.Routing(t).Units["a"].Primary, primary)
	l.stop()
	wit := l.w.Verify(ctx)
	t.Logf("witness: %v", wit)
	if !wit.OK() {
		t.Errorf("the client's own witness found problems: %v", wit)
	}
	if rep := l.tg.Audit(t); rep.Verdict != ledger.True {
		t.Errorf("audit %s, want true: %v", rep.Verdict, auditFalse(rep))
	}
}
