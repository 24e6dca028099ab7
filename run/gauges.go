package run

import (
	"context"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// gaugeTimeout bounds one sampling of the target's gauges, so a slow target cannot stall the
// timeline's windows.
const gaugeTimeout = 300 * time.Millisecond

// sampleGauges asks the gauge source once and records each value in the timeline and the phase.
// A source that fails is skipped for this second: gauges are evidence, not the run.
func (r *runner) sampleGauges(ctx context.Context, rec *Phase, now time.Time) error {
	if r.opts.Gauges == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
	defer cancel()
	gs, err := r.opts.Gauges(sctx)
	if err != nil {
		return nil
	}
	for _, g := range gs {
		g.Time, g.Phase = now, rec.Name
		rec.foldGauge(g)
		if err := r.writeGauge(g); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) writeGauge(g metrics.Gauge) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timeline.Write(metrics.Entry{Kind: metrics.KindGauge, Gauge: &g})
}
