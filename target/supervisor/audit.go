package supervisor

import (
	"context"

	"github.com/redline-dev/redline/target/audit"
)

// audit runs the ledger audit over every unit replica, running or not, and the event audit over
// the broker and the consumer groups: a part that does not answer makes the invariants that
// need it unknown.
func (s *supervisor) audit(ctx context.Context) (audit.Report, error) {
	var targets []audit.Target
	pipe := audit.Pipeline{NATS: s.natsURL()}
	for _, p := range s.procs {
		switch p.role {
		case RoleUnit:
			targets = append(targets, audit.Target{Unit: p.unit, Replica: p.replica, Addr: p.addr})
		case RoleConsumer:
			pipe.Consumers = append(pipe.Consumers, audit.Consumer{Group: p.unit, Addr: p.addr})
		}
	}
	return audit.OnlineWithEvents(ctx, s.http, targets, pipe)
}
