package unit_test

import (
	"encoding/json"
	"testing"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

type auditReport = audit.Report

func wrap(f func(testing.TB) audit.Report) func(testing.TB) auditReport { return f }

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// pairWith starts a primary+standby pair, with the seeded defect switched on when on is true:
// the defect tests run the same schedule with and without it.
func pairWith(t *testing.T, defect unit.Defect, on bool) *unittest.Pair {
	t.Helper()
	var opts unittest.Options
	if on {
		opts.Defects = []unit.Defect{defect}
	}
	return unittest.StartPair(t, opts)
}
