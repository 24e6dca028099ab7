package run

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/verify"
)

// TestMergeKeepsFaultsAndAudit: the merged run holds every agent's fault records and the worst
// of their audits, so agents whose faults or audit fail never merge into a pass.
func TestMergeKeepsFaultsAndAudit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, `
apiVersion: redline/v1
kind: Rehearsal
metadata: {name: halves}
target: {url: "http://127.0.0.1:1"}
defaults:
  requests: [{name: get, method: GET, path: /x}]
phases:
  - name: only
    load: {rate: 40/s, duration: 2s}
    faults:
      - {name: slow, at: 200ms, duration: 1s, kind: NetworkChaos, spec: {action: delay, mode: all, selector: {}, delay: {latency: 20ms}}}
`)
	dirs := []string{t.TempDir(), t.TempDir()}
	errs := make(chan error, 2)
	for i, dir := range dirs {
		go func() {
			_, err := Run(context.Background(), p, Options{RunID: "h" + strconv.Itoa(i), OutDir: dir, PlanSource: src,
				Segment: load.Segment{FromNum: int64(i), ToNum: int64(i + 1), Den: 2}})
			errs <- err
		}()
	}
	for range dirs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The second agent's audit found a payment lost; the first's (below) found none.
	audit := func(verdict string) *Audit {
		return &Audit{Verdict: verdict, Checks: []AuditCheck{{Name: "acknowledged_present_once", Verdict: verdict, Detail: verdict}}}
	}
	for i, v := range []string{verify.CheckTrue, verify.CheckFalse} {
		rec, err := ReadRecord(dirs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := AppendAudit(dirs[i], rec, audit(v)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "merged")
	m, err := Merge(out, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Faults) != 2 {
		t.Errorf("merged run has %d fault records, want each agent's own link fault: %+v", len(m.Faults), m.Faults)
	}
	for _, f := range m.Faults {
		if f.Phase != chaos.PhaseRecovered || !f.Evidence.Observed() {
			t.Errorf("fault %s read back as %s, evidence %+v", f.ID, f.Phase, f.Evidence)
		}
	}
	if m.Audit == nil || m.Audit.Verdict != verify.CheckFalse || m.Audit.Checks[0].Detail != verify.CheckFalse {
		t.Errorf("merged audit %+v, want the false one", m.Audit)
	}
	if v := Judge(p, m); v.Status != verify.StatusFail {
		t.Errorf("merged verdict %s %v, want fail (an agent's audit is false)", v.Status, v.Reasons)
	}

	// Merging into one of the inputs would overwrite it before reading it: refused, unchanged.
	before, _ := os.ReadFile(filepath.Join(dirs[0], TimelineFile))
	if _, err := Merge(dirs[0], dirs); !errors.Is(err, ErrBadRecord) {
		t.Errorf("Merge into an input = %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dirs[0], TimelineFile)); string(after) != string(before) {
		t.Error("the refused merge changed the input's timeline")
	}
}
