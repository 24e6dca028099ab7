package load

import (
	"net/http"
	"time"
)

// Stage is one segment of an arrival-rate profile: the rate moves linearly from the previous
// stage's target (or the profile's StartRPS) to TargetRPS over Duration. A stage whose target
// equals the previous one holds the rate constant.
type Stage struct {
	TargetRPS float64
	Duration  time.Duration
}

// Profile is an arrival-rate curve: constant, ramping and the midnight spike are all profiles.
type Profile struct {
	StartRPS float64
	Stages   []Stage
}

// Constant is the profile of rateRPS arrivals per second for d.
func Constant(rateRPS float64, d time.Duration) Profile {
	return Profile{StartRPS: rateRPS, Stages: []Stage{{TargetRPS: rateRPS, Duration: d}}}
}

// Spike is the midnight curve: from baseRPS, a linear ramp to peakRPS over rampUp, a hold at the
// peak, then a linear decay back to baseRPS.
func Spike(baseRPS, peakRPS float64, rampUp, hold, decay time.Duration) Profile {
	return Profile{StartRPS: baseRPS, Stages: []Stage{
		{TargetRPS: peakRPS, Duration: rampUp},
		{TargetRPS: peakRPS, Duration: hold},
		{TargetRPS: baseRPS, Duration: decay},
	}}
}

// Duration is the total length of the profile.
func (p Profile) Duration() time.Duration {
	var d time.Duration
	for _, s := range p.Stages {
		d += s.Duration
	}
	return d
}

// PeakRPS is the highest rate the profile reaches.
func (p Profile) PeakRPS() float64 {
	peak := p.StartRPS
	for _, s := range p.Stages {
		peak = max(peak, s.TargetRPS)
	}
	return peak
}

// Request describes one operation of a request mix. URL, Header values and Body are templates:
// {{uid}}, {{uid2}}, {{uuid}}, {{seq}}, {{amount}} and {{run}} are replaced for each arrival (see
// Vars). Method and header names are literal. The URL is absolute (http or https) and its scheme
// and host are literal too: connections are pooled per host.
type Request struct {
	Name   string // the operation's name in metrics, e.g. "pay"
	Weight int    // relative weight in the mix; at least 1
	Method string
	URL    string
	Header http.Header
	Body   string
	// ExpectStatus lists the statuses that count as success; empty means 200–399.
	ExpectStatus []int
}

// Vars bounds the random values of request templates. Each arrival's values are a pure function
// of Seed and the arrival's number, so a run is reproducible and agents running segments of the
// same plan send the very requests one agent would have sent.
type Vars struct {
	UIDMin, UIDMax int64 // {{uid}} and {{uid2}}: uniform in [UIDMin, UIDMax]
	// UID2Stride, when over 1, makes {{uid2}} differ from {{uid}} by a non-zero multiple of it:
	// with 100, both share uid % 100, the bucket a sharded target routes by, so a payment
	// between them stays inside one shard. 0 or 1: any other uid.
	UID2Stride int64
	// UID2OffStride is the share (0..1) of {{uid2}} draws that leave the stride (stride over 1
	// only): uid2 = uid ± 1 + k·stride, the next (or previous) bucket, which on a target whose
	// buckets go round-robin over its units (the built-in one) is another unit: a cross-unit
	// payment.
	UID2OffStride                  float64
	AmountMinorMin, AmountMinorMax int64  // {{amount}}: uniform in [min, max], integer minor units
	RunID                          string // {{run}}
	Seed                           int64  // seeds the random values; 0 picks one
}

// Config is everything the generator needs to run one phase of load.
type Config struct {
	Phase    string
	Profile  Profile
	Requests []Request // the weighted mix; one entry is a fixed request
	Vars     Vars
	Workers  int // bound on concurrent in-flight requests (k6's maxVUs)
	// Connections bounds the open connections per origin; 0 means Workers. With fewer
	// connections than workers, an arrival holds its worker while it waits for a connection
	// (up to Timeout), the way a client with a connection pool waits: it is sent, and its
	// service time starts, when it gets one, while its latency counts from its intended time.
	Connections int
	Timeout     time.Duration // per request, connecting included; 0 means TimeoutDefault
	// GracePeriod is how long in-flight requests may finish after the profile ends or the run is
	// cancelled, before they are aborted; 0 means the Timeout.
	GracePeriod time.Duration
	// Segment is this agent's share of the arrivals (k6's execution segments): arrival n is sent
	// here only when the segment owns it. The zero value owns every arrival.
	Segment Segment
}

// Segment is the share [From, To) of the arrivals, as fractions FromNum/Den .. ToNum/Den of 1.
// The zero value is the whole: 0..1. Arrivals are striped, not cut in blocks: arrival n belongs
// to the segment that holds the point x(n) of [0, 1), where x is the binary van der Corput
// sequence (n's 64 bits reversed, read as a fraction). Segments that tile [0, 1) therefore own
// every arrival exactly once, whatever their denominators, and any run of consecutive arrivals
// is shared out in proportion to the segments' sizes, within a few arrivals (O(log n)).
type Segment struct {
	FromNum, ToNum, Den int64
}
