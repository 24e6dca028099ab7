package supervisor

import (
	"context"

	"github.com/redline-dev/redline/target/audit"
)

// audit runs the ledger audit over every unit replica, running or not: a replica that does not
// answer makes the invariants that need it unknown.
func (s *supervisor) audit(ctx context.Context) (audit.Report, error) {
	var targets []audit.Target
	for _, p := range s.procs {
		if p.role == RoleUnit {
			targets = append(targets, audit.Target{Unit: p.unit, Replica: p.replica, Addr: p.addr})
		}
	}
	return audit.Online(ctx, s.http, targets)
}
