package load

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Pacer is an absolute arrival schedule: Due returns when arrival n (counted from 0) is due, as
// an offset from the start of the run, and false when the schedule has no arrival n. Offsets
// never decrease with n. Because every due time is computed from n alone, a late generator
// catches up instead of drifting.
type Pacer interface {
	Due(n int64) (offset time.Duration, ok bool)
}

// PacerFunc adapts a function to a Pacer.
type PacerFunc func(n int64) (time.Duration, bool)

// Due calls f.
func (f PacerFunc) Due(n int64) (time.Duration, bool) { return f(n) }

var _ Pacer = (*Schedule)(nil)

// arrivalsEpsilon absorbs the rounding of stage arrival counts computed in floating point, so
// that a profile of exactly 10 arrivals never grows an 11th from 10.000000000000002.
const arrivalsEpsilon = 1e-7

// Schedule is the Pacer of a Profile. The cumulative arrival count N(t) of a piecewise-linear
// rate is piecewise quadratic; arrival n is due at the smallest t with N(t) = n, found by
// inverting the quadratic of n's stage in closed form. So arrival 0 is due at the start, and a
// constant rate r puts arrival n at exactly n/r.
type Schedule struct {
	stages []scheduleStage
	total  float64 // N(end): the profile's arrivals, fractional
	count  int64   // arrivals: the n with n < total
}

type scheduleStage struct {
	start    time.Duration // offset of the stage's start
	length   time.Duration
	before   float64 // arrivals of the previous stages, N(start)
	arrivals float64 // arrivals of this stage
	fromRPS  float64 // rate at the start of the stage
	slope    float64 // rate change per second, (to - from) / length
}

// NewSchedule returns the schedule of p, or an error when p is not a valid profile (see
// Config.Validate).
func NewSchedule(p Profile) (*Schedule, error) {
	if errs := validateProfile(p); len(errs) > 0 {
		return nil, fmt.Errorf("schedule profile: %w", errs[0])
	}
	s := &Schedule{stages: make([]scheduleStage, 0, len(p.Stages))}
	var start time.Duration
	from := p.StartRPS
	for _, st := range p.Stages {
		secs := st.Duration.Seconds()
		ss := scheduleStage{start: start, length: st.Duration, before: s.total, fromRPS: from}
		if secs > 0 {
			ss.arrivals = (from + st.TargetRPS) / 2 * secs
			ss.slope = (st.TargetRPS - from) / secs
		}
		s.stages = append(s.stages, ss)
		s.total += ss.arrivals
		start += st.Duration
		from = st.TargetRPS
	}
	s.count = int64(math.Ceil(s.total - arrivalsEpsilon))
	return s, nil
}

// Arrivals is the number of arrivals in the schedule.
func (s *Schedule) Arrivals() int64 { return s.count }

// Due returns the offset at which arrival n is due.
func (s *Schedule) Due(n int64) (time.Duration, bool) {
	if n < 0 || n >= s.count {
		return 0, false
	}
	x := float64(n)
	// Stages are few (StagesMax); a linear scan beats a binary search for the usual 1 to 3.
	i := 0
	for i < len(s.stages)-1 && x >= s.stages[i].before+s.stages[i].arrivals-arrivalsEpsilon {
		i++
	}
	st := &s.stages[i]
	tau := st.invert(x - st.before)
	off := st.start + time.Duration(math.Round(tau*1e9))
	return min(off, st.start+st.length), true
}

// invert returns the seconds into the stage at which m of its arrivals have come:
// from·τ + slope·τ²/2 = m, solved in the form that stays exact when from or slope is zero and
// does not cancel catastrophically: τ = 2m / (from + √(from² + 2·slope·m)).
func (st *scheduleStage) invert(m float64) float64 {
	if m <= 0 {
		return 0
	}
	disc := st.fromRPS*st.fromRPS + 2*st.slope*m
	den := st.fromRPS + math.Sqrt(max(disc, 0))
	if den <= 0 {
		// Only an empty stage gets here, and the scan above never picks one unless it is the
		// last stage holding the final fractional arrival's rounding: put it at the stage's end.
		return st.length.Seconds()
	}
	return 2 * m / den
}

// nextOwned advances n to the next arrival that seg owns and returns its offset; false when p
// has no more arrivals before end. Ownership is tested first, being cheaper than Due: any 2^k
// consecutive arrivals visit every dyadic interval of width 2^-k, so a segment of positive
// share owns one in every 4/share at most, and the scan is short.
func nextOwned(p Pacer, seg Segment, end time.Duration, n *int64) (time.Duration, bool) {
	for !seg.Owns(*n) {
		*n++
	}
	off, ok := p.Due(*n)
	if !ok || off >= end {
		return 0, false
	}
	return off, true
}

// Owns reports whether arrival n belongs to the segment. See Segment for the striping.
func (s Segment) Owns(n int64) bool {
	if s.Den == 0 {
		return true
	}
	// x = reverse(n) / 2^64; From ≤ x < To  ⇔  FromNum·2^64 ≤ reverse(n)·Den < ToNum·2^64.
	hi, _ := bits.Mul64(bits.Reverse64(uint64(n)), uint64(s.Den))
	// reverse(n)·Den < k·2^64 ⇔ hi < k, since the low word only adds a fraction below 2^64.
	return hi >= uint64(s.FromNum) && hi < uint64(s.ToNum)
}

// ownedCountMax bounds the arrivals Owned counts one by one.
const ownedCountMax = 1 << 22

// Owned is how many of arrivals 0..n-1 the segment owns. Up to ownedCountMax arrivals it counts
// them, since over a few arrivals a segment's count can differ from its share by a few (a third
// of 21 arrivals may be 9); beyond that the share times n is within O(log n) of the count, far
// below any tolerance on a rate.
func (s Segment) Owned(n int64) int64 {
	if s.Den == 0 || n <= 0 {
		return max(n, 0)
	}
	if n > ownedCountMax {
		return int64(math.Round(s.Share() * float64(n)))
	}
	owned := int64(0)
	for i := range n {
		if s.Owns(i) {
			owned++
		}
	}
	return owned
}

// ArrivalsOf is how many of profile p's arrivals the segment owns, of how many in all; an error
// when p is not a valid profile (see Config.Validate).
func (s Segment) ArrivalsOf(p Profile) (owned, all int64, err error) {
	sched, err := NewSchedule(p)
	if err != nil {
		return 0, 0, err
	}
	return s.Owned(sched.Arrivals()), sched.Arrivals(), nil
}

// Share is the fraction of the arrivals the segment owns.
func (s Segment) Share() float64 {
	if s.Den == 0 {
		return 1
	}
	return float64(s.ToNum-s.FromNum) / float64(s.Den)
}

// String is the segment in k6's notation, "1/4:2/4"; "0:1" for the whole.
func (s Segment) String() string {
	if s.Den == 0 {
		return "0:1"
	}
	return fmt.Sprintf("%d/%d:%d/%d", s.FromNum, s.Den, s.ToNum, s.Den)
}
