package supervisor

import (
	"context"

	"github.com/redline-dev/redline/target/audit"
)

// audit runs the ledger audit over every unit replica, running or not, and the event audit over
// the broker and the consumer groups: a part that does not answer makes the invariants that
// need it unknown. Cross-unit transfers are judged against the core zone's decisions.
func (s *supervisor) audit(ctx context.Context) (audit.Report, error) {
	var targets []audit.Target
	var core []string
	pipe := audit.Pipeline{NATS: s.natsURL()}
	for _, p := range s.procs {
		switch p.role {
		case RoleCore:
			core = append(core, p.addr)
		case RoleUnit:
			targets = append(targets, audit.Target{Unit: p.unit, Replica: p.replica, Addr: p.addr})
		case RoleConsumer:
			pipe.Consumers = append(pipe.Consumers, audit.Consumer{Group: p.unit, Addr: p.addr})
		}
	}
	// Transfers first: a confirm still on its way adds an event the event audit must see; then
	// the legs no core figure shows (their coordinator died before deciding), on both planes.
	audit.SettleTransfers(ctx, s.http, core)
	audit.SettleShadowTransfers(ctx, s.http, core)
	audit.SettleLegs(ctx, s.http, targets)
	audit.SettleLegs(ctx, audit.PlaneClient(s.http), targets)
	rep, err := audit.OnlineWithShadow(ctx, s.http, targets, pipe)
	if err != nil {
		return rep, err
	}
	rep = rep.WithShadowCore(audit.ShadowCoreFigures(ctx, s.http, core))
	return rep.WithCore(audit.CoreFigures(ctx, s.http, core)), nil
}
