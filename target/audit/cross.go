package audit

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/redline-dev/redline/target/ledger"
)

// Cross-unit payments: the units' figures alone show whether each transfer's two legs agree
// (ledger.EvaluateCross, in every audit); with the core zone's figures the audit also checks
// that they agree with what the core zone decided, and that it has nothing left to finish.

// CoreFigures reads the core zone's transfer figures from the first replica that answers (a
// follower passes the request to the leader); an error is carried in the figures.
func CoreFigures(ctx context.Context, client *http.Client, coreAddrs []string) ledger.CoreTransfers {
	return coreFigures(ctx, client, coreAddrs, "/v1/transfers")
}

// coreFigures reads the transfer figures at path from the first core replica that answers.
func coreFigures(ctx context.Context, client *http.Client, coreAddrs []string, path string) ledger.CoreTransfers {
	if client == nil {
		client = http.DefaultClient
	}
	var errs []error
	for _, addr := range coreAddrs {
		var f ledger.CoreTransfers
		if err := get(ctx, client, "http://"+addr+path, &f); err != nil {
			errs = append(errs, err)
			continue
		}
		return f
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no core zone replica to ask"))
	}
	return ledger.CoreTransfers{Error: errors.Join(errs...).Error()}
}

// SettleTransfers waits, up to SettleMax, until the core zone has no transfer undecided or
// unfinished (the recovery loop finishes what a fault interrupted), and returns its last
// figures. It ends early when the figures stop moving for settleStill (something is stuck).
func SettleTransfers(ctx context.Context, client *http.Client, coreAddrs []string) ledger.CoreTransfers {
	figures := func(ctx context.Context) ledger.CoreTransfers { return CoreFigures(ctx, client, coreAddrs) }
	return settle(ctx, figures, transfersSettled)
}

// SettleLegs waits, up to SettleMax, until no unit primary holds a transfer leg tried and
// undecided. The core zone writes nothing before a transfer's decision, so a leg whose
// coordinator died with it undecided shows in no core figure: it is cancelled once its
// participant asks the core zone (5 s after its try, then once a second).
func SettleLegs(ctx context.Context, client *http.Client, targets []Target) {
	deadline := time.Now().Add(SettleMax)
	for pendingLegs(ctx, client, targets) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(settleEvery):
		}
	}
}

// pendingLegs counts the legs tried and undecided on the unit primaries that answer.
func pendingLegs(ctx context.Context, client *http.Client, targets []Target) int64 {
	var n int64
	for _, t := range targets {
		if r := fetchFigures(ctx, client, t); r.Error == "" && r.Role == ledger.RolePrimary {
			n += r.Cross.PendingDebits + r.Cross.PendingCredits
		}
	}
	return n
}

// transfersSettled reports whether the core zone has every transfer decided and finished.
func transfersSettled(f ledger.CoreTransfers) bool {
	return f.Error == "" && f.Undecided == 0 && f.Unfinished == 0
}

// WithCore judges the cross-unit invariant again with the core zone's figures, replacing the
// units-only verdict.
func (r Report) WithCore(core ledger.CoreTransfers) Report {
	c := ledger.EvaluateCross(r.Units, &core)
	for i := range r.Checks {
		if r.Checks[i].Name == ledger.CheckCrossUnitAtomic {
			r.Checks[i] = c
		}
	}
	r.Verdict = ledger.Overall(r.Checks)
	return r
}
