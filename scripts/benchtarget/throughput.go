package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/metrics"
)

// Limits of the throughput search.
const (
	stepsMax       = 24   // rates tried, search and refinement together (each up to -tries times)
	refineSteps    = 2    // bisections between the last rate that held and the first that did not
	rateMin        = 20   // the search gives up below this rate, payments/s
	workersPerRate = 0.5  // in-flight bound: half a second's arrivals (ten times the p99 bound)
	workersMin     = 64   //
	connsMax       = 256  // connections to the router
	achievedMin    = 0.99 // completed share of the arrivals a rate must reach to hold
)

// step is one measured rate.
type step struct {
	OfferedPS  float64 `json:"offered_per_s"`
	PaymentsPS float64 `json:"payments_per_s"` // completed without error, per second of the window
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"` // from the intended send time (open model)
	// With cross-unit payments in the mix, the p99 of each kind alone.
	SameUnitP99MS  float64 `json:"same_unit_p99_ms,omitempty"`
	CrossUnitP99MS float64 `json:"cross_unit_p99_ms,omitempty"`
	Errors         int64   `json:"errors"`
	Dropped        int64   `json:"dropped"`
	Held           bool    `json:"held"`
	Attempt        int     `json:"attempt"` // of -tries at this rate
}

// throughput finds the highest rate the target sustains, open model: arrivals at a constant
// rate from Redline's own load engine, whether or not earlier payments have completed, latency
// measured from each arrival's intended time. A rate holds when p99 stays under -p99-max with
// no error, no dropped arrival and at least 99% of the arrivals completed in the window. After
// -prewarm of unmeasured load at -rate-start, the rate grows by -rate-factor until one does not
// hold (or, when the first does not, shrinks by it until one does), then bisects between the
// two. A rate that does not hold is measured again, up to -tries times: a shared machine's noise
// (another tenant's burst, CPU stolen by the host) only ever lengthens the tail, so one window
// that holds shows what the target sustains.
func throughput(ctx context.Context, t *target, o options) error {
	if o.prewarm > 0 {
		// A fresh target's first seconds are slower (empty page caches, heaps still growing,
		// connections being opened): without this, a search's first window missed the bound at
		// 500/s while the same target held twice that a minute later.
		warm := o
		warm.warmup, warm.step = 0, o.prewarm
		s, err := measureRate(ctx, t, o.rateStart, -1, warm, nil)
		if err != nil {
			return err
		}
		fmt.Printf("prewarm %v at %.0f/s (not measured): p99 %.1f ms\n", o.prewarm, o.rateStart, s.P99MS)
	}
	var steps []step
	best := step{}
	rates := 0
	try := func(rate float64) (bool, error) {
		rates++
		for attempt := 1; attempt <= o.tries; attempt++ {
			s, err := measureRate(ctx, t, rate, len(steps), o, nil)
			if err != nil {
				return false, err
			}
			s.Attempt = attempt
			steps = append(steps, s)
			kinds := ""
			if s.CrossUnitP99MS > 0 {
				kinds = fmt.Sprintf(" (same-unit %.1f, cross-unit %.1f)", s.SameUnitP99MS, s.CrossUnitP99MS)
			}
			fmt.Printf("rate %6.0f/s: %8.0f payments/s  p50 %6.1f ms  p99 %7.1f ms%s  errors %d  dropped %d  held %v  (try %d of %d)\n",
				s.OfferedPS, s.PaymentsPS, s.P50MS, s.P99MS, kinds, s.Errors, s.Dropped, s.Held, attempt, o.tries)
			if s.Held {
				if s.PaymentsPS > best.PaymentsPS {
					best = s
				}
				return true, nil
			}
		}
		return false, nil
	}
	// Up by the factor while rates hold; when the first does not, down by it until one does.
	lo, hi := 0.0, 0.0
	for rate := o.rateStart; rates < stepsMax && rate >= rateMin; {
		held, err := try(rate)
		if err != nil {
			return err
		}
		if held {
			lo = rate
		} else {
			hi = rate
		}
		if lo > 0 && hi > 0 {
			break
		}
		if held {
			rate *= o.rateFactor
		} else {
			rate = math.Round(rate / o.rateFactor)
		}
	}
	for i := 0; i < refineSteps && lo > 0 && hi > 0 && rates < stepsMax; i++ {
		mid := math.Round((lo + hi) / 2)
		held, err := try(mid)
		if err != nil {
			return err
		}
		if held {
			lo = mid
		} else {
			hi = mid
		}
	}
	out, _ := json.Marshal(map[string]any{"mode": "throughput", "model": "open", "cross": o.cross, "sustained": best, "p99_max_ms": o.p99Max.Milliseconds(), "steps": steps})
	fmt.Println(string(out))
	return nil
}

// measureRate offers rate payments/s for warmup + step and judges the arrivals of the step (n
// numbers it in the run ids of its payments' keys); onWindow, when not nil, is called as the
// step begins (true) and as it ends (false). With a cross-unit share, a second generator runs
// beside the first at rate × cross: its payee is in the payer's next bucket, always another unit
// (payConfig), and the first offers the rest.
func measureRate(ctx context.Context, t *target, rate float64, n int, o options, onWindow func(begin bool)) (step, error) {
	rec := &windowRecorder{stats: metrics.NewStats(), byOp: map[string]*metrics.Stats{}}
	crossRate := 0.0
	if o.units > 1 {
		crossRate = rate * o.cross
	}
	var gens []*load.Generator
	for _, kind := range []struct {
		op    string
		rate  float64
		cross bool
	}{{opSameUnit, rate - crossRate, false}, {opCrossUnit, crossRate, true}} {
		if kind.rate <= 0 {
			continue
		}
		rec.byOp[kind.op] = metrics.NewStats()
		g, err := load.NewGenerator(payConfig(t, kind.rate, kind.op, kind.cross, fmt.Sprintf("s%d-%s-%x", n, kind.op, time.Now().UnixNano()), o), rec)
		if err != nil {
			return step{}, fmt.Errorf("rate %.0f/s: %w", rate, err)
		}
		gens = append(gens, g)
	}
	rec.from, rec.to = time.Now().Add(o.warmup), time.Now().Add(o.warmup+o.step)
	errs := make([]error, len(gens))
	var wg sync.WaitGroup
	if onWindow != nil {
		// Ends with the step, or early when ctx is cancelled (then onWindow(false) is not called).
		wg.Go(func() {
			sleep(ctx, time.Until(rec.from))
			if ctx.Err() == nil {
				onWindow(true)
				sleep(ctx, time.Until(rec.to))
			}
			if ctx.Err() == nil {
				onWindow(false)
			}
		})
	}
	for i, g := range gens {
		wg.Go(func() { _, errs[i] = g.Run(ctx) }) // ends with the profile
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return step{}, fmt.Errorf("rate %.0f/s: %w", rate, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	st := rec.stats
	ok := st.Requests - st.Failed
	s := step{
		OfferedPS: rate, PaymentsPS: float64(ok) / o.step.Seconds(),
		P50MS: ms(st.Latency.Quantile(0.50)), P99MS: ms(st.Latency.Quantile(0.99)),
		Errors: st.Failed, Dropped: rec.dropped,
	}
	if crossRate > 0 && crossRate < rate {
		s.SameUnitP99MS = ms(rec.byOp[opSameUnit].Latency.Quantile(0.99))
		s.CrossUnitP99MS = ms(rec.byOp[opCrossUnit].Latency.Quantile(0.99))
	}
	s.Held = s.P99MS < float64(o.p99Max.Milliseconds()) && s.Errors == 0 && s.Dropped == 0 &&
		float64(ok) >= achievedMin*rate*o.step.Seconds()
	return s, nil
}

// The two kinds of payment a step offers, by their request name.
const (
	opSameUnit  = "same-unit"
	opCrossUnit = "cross-unit"
)

// payConfig is one generator of payments at rate through the router: both accounts in one
// bucket (so one unit), or with cross each payee in the payer's next (or previous) bucket,
// which the built-in target puts on another unit (buckets go round-robin over units).
func payConfig(t *target, rate float64, op string, cross bool, run string, o options) load.Config {
	workers := int(max(workersMin, math.Ceil(rate*workersPerRate)))
	offStride := 0.0
	if cross {
		offStride = 1
	}
	return load.Config{
		Phase:   "pay",
		Profile: load.Constant(rate, o.warmup+o.step),
		Requests: []load.Request{{
			Name: op, Weight: 1, Method: http.MethodPost, URL: t.router + "/v1/payments",
			Header:       http.Header{"Content-Type": {"application/json"}},
			Body:         `{"key":"bt-{{run}}-{{seq}}","from_uid":{{uid}},"to_uid":{{uid2}},"amount_minor":{{amount}}}`,
			ExpectStatus: []int{http.StatusOK},
		}},
		Vars: load.Vars{
			UIDMin: 0, UIDMax: int64(o.accounts) - 1, UID2Stride: 100, UID2OffStride: offStride,
			AmountMinorMin: 1, AmountMinorMax: 100, RunID: run,
		},
		Workers: workers, Connections: min(workers, connsMax), Timeout: requestTimeout,
	}
}

// windowRecorder folds the samples whose intended time falls in [from, to): the measured window
// after the warm-up. Every dropped arrival counts: a drop in the warm-up is overload too.
type windowRecorder struct {
	mu       sync.Mutex
	from, to time.Time
	stats    *metrics.Stats
	byOp     map[string]*metrics.Stats // the same samples by request name
	dropped  int64
}

func (r *windowRecorder) Record(s metrics.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.Intended.Before(r.from) && s.Intended.Before(r.to) {
		r.stats.Add(s)
		r.byOp[s.Op].Add(s)
	}
}

func (r *windowRecorder) Drop(string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped++
}
