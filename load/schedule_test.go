package load

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestScheduleDue(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name     string
		profile  Profile
		arrivals int64
		due      map[int64]time.Duration // arrival → offset; -1 means no such arrival
	}{
		{
			name: "constant", profile: Constant(10, time.Second), arrivals: 10,
			due: map[int64]time.Duration{0: 0, 1: 100 * ms, 5: 500 * ms, 9: 900 * ms, 10: -1, -1: -1},
		},
		{
			name: "constant with a period that is not a whole number of ns", profile: Constant(3, time.Second), arrivals: 3,
			due: map[int64]time.Duration{1: 333_333_333, 2: 666_666_667, 3: -1},
		},
		{
			name: "fractional rate that floating point rounds up", profile: Constant(0.1, 30*time.Second), arrivals: 3,
			due: map[int64]time.Duration{0: 0, 1: 10 * time.Second, 2: 20 * time.Second, 3: -1},
		},
		{
			name: "fractional arrival count", profile: Constant(1.5, time.Second), arrivals: 2,
			due: map[int64]time.Duration{1: 666_666_667, 2: -1},
		},
		{
			name: "long constant run keeps exact", profile: Constant(1000, time.Hour), arrivals: 3_600_000,
			due: map[int64]time.Duration{3_599_999: time.Hour - ms, 1_234_567: 1_234_567 * ms},
		},
		{
			// N(t) = 100 t², so arrival n is due at √n / 10 seconds.
			name: "ramp from zero", profile: Profile{StartRPS: 0, Stages: []Stage{{TargetRPS: 200, Duration: time.Second}}}, arrivals: 100,
			due: map[int64]time.Duration{0: 0, 1: 100 * ms, 4: 200 * ms, 9: 300 * ms, 25: 500 * ms, 2: 141_421_356, 99: 994_987_437, 100: -1},
		},
		{
			// N(t) = 100 t − 50 t², so arrival n is due at 1 − √(1 − n/50) seconds.
			name: "decay to zero", profile: Profile{StartRPS: 100, Stages: []Stage{{TargetRPS: 0, Duration: time.Second}}}, arrivals: 50,
			due: map[int64]time.Duration{0: 0, 1: 10_050_506, 49: 858_578_644, 50: -1},
		},
		{
			name: "spike from zero", profile: Spike(0, 100, time.Second, time.Second, time.Second), arrivals: 200,
			due: map[int64]time.Duration{1: 141_421_356, 50: time.Second, 51: 1010 * ms, 150: 2 * time.Second, 199: 2*time.Second + 858_578_644, 200: -1},
		},
		{
			name: "spike from a base", profile: Spike(10, 110, time.Second, time.Second, time.Second), arrivals: 230,
			// The ramp holds 60 arrivals (10 t + 50 t² = 60 at t = 1), the hold 110, the decay 60.
			due: map[int64]time.Duration{0: 0, 60: time.Second, 61: time.Second + 9_090_909, 170: 2 * time.Second, 230: -1},
		},
		{
			name: "a stage at rate zero in the middle",
			profile: Profile{StartRPS: 10, Stages: []Stage{
				{TargetRPS: 10, Duration: time.Second}, {TargetRPS: 0, Duration: 0}, {TargetRPS: 0, Duration: time.Second},
				{TargetRPS: 10, Duration: 0}, {TargetRPS: 10, Duration: time.Second},
			}},
			arrivals: 20,
			due:      map[int64]time.Duration{9: 900 * ms, 10: 2 * time.Second, 19: 2900 * ms, 20: -1},
		},
		{
			name: "nothing but rate zero", profile: Constant(0, time.Second), arrivals: 0,
			due: map[int64]time.Duration{0: -1},
		},
		{
			name: "a step up without a ramp", profile: Profile{StartRPS: 10, Stages: []Stage{{TargetRPS: 10, Duration: time.Second}, {TargetRPS: 100, Duration: 0}, {TargetRPS: 100, Duration: time.Second}}}, arrivals: 110,
			due: map[int64]time.Duration{10: time.Second, 11: 1010 * ms, 109: 1990 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSchedule(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Arrivals(); got != tt.arrivals {
				t.Errorf("Arrivals() = %d, want %d", got, tt.arrivals)
			}
			got := map[int64]time.Duration{}
			for n := range tt.due {
				off, ok := s.Due(n)
				if !ok {
					off = -1
				}
				got[n] = off
			}
			if diff := cmp.Diff(got, tt.due); diff != "" {
				t.Errorf("Due (-got +want):\n%s", diff)
			}
		})
	}
}

// TestScheduleMatchesProfile checks every arrival of assorted profiles against the cumulative
// count: arrival n is due where N(t) = n, offsets never decrease and stay within the profile.
func TestScheduleMatchesProfile(t *testing.T) {
	profiles := []Profile{
		Spike(5, 2000, 3*time.Second, 2*time.Second, 4*time.Second),
		{StartRPS: 0, Stages: []Stage{{TargetRPS: 37.5, Duration: 1700 * time.Millisecond}, {TargetRPS: 0, Duration: 900 * time.Millisecond}, {TargetRPS: 0, Duration: time.Second}, {TargetRPS: 12, Duration: 3 * time.Second}}},
		Constant(7, 13*time.Second),
	}
	for i, p := range profiles {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s, err := NewSchedule(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(math.Ceil(cumulative(p, p.Duration()) - 1e-6)); s.Arrivals() != want {
				t.Fatalf("Arrivals() = %d, want %d", s.Arrivals(), want)
			}
			prev := time.Duration(-1)
			for n := int64(0); n < s.Arrivals(); n++ {
				off, ok := s.Due(n)
				if !ok || off < prev || off < 0 || off > p.Duration() {
					t.Fatalf("Due(%d) = %v, %v after %v", n, off, ok, prev)
				}
				if got := cumulative(p, off); math.Abs(got-float64(n)) > 1e-3 && !(got > float64(n) && flatBefore(p, off)) {
					t.Fatalf("N(Due(%d) = %v) = %v, want %d", n, off, got, n)
				}
				prev = off
			}
		})
	}
}

// cumulative is N(t), integrated independently of the schedule, stage by stage.
func cumulative(p Profile, t time.Duration) float64 {
	total, from := 0.0, p.StartRPS
	for _, st := range p.Stages {
		d := min(t, st.Duration).Seconds()
		if st.Duration > 0 {
			to := from + (st.TargetRPS-from)*d/st.Duration.Seconds()
			total += (from + to) / 2 * d
		}
		t -= min(t, st.Duration)
		from = st.TargetRPS
	}
	return total
}

// flatBefore reports whether the rate is zero just before t, so that the count at t can be
// above n at the first moment the next arrival could come.
func flatBefore(p Profile, t time.Duration) bool {
	return cumulative(p, t)-cumulative(p, t-time.Millisecond) < 1e-9
}

func TestScheduleRejectsBadProfiles(t *testing.T) {
	for _, p := range []Profile{{}, Constant(math.NaN(), time.Second), Constant(-1, time.Second), Constant(1, 0)} {
		if _, err := NewSchedule(p); err == nil {
			t.Errorf("NewSchedule(%+v): no error", p)
		}
	}
}

func TestPacerFunc(t *testing.T) {
	var p Pacer = PacerFunc(func(n int64) (time.Duration, bool) { return time.Duration(n) * time.Second, n < 2 })
	got := []any{}
	for n := int64(0); n < 3; n++ {
		off, ok := p.Due(n)
		got = append(got, off, ok)
	}
	if diff := cmp.Diff(got, []any{time.Duration(0), true, time.Second, true, 2 * time.Second, false}); diff != "" {
		t.Error(diff)
	}
}

func TestSegmentsPartitionArrivals(t *testing.T) {
	tests := []struct {
		name     string
		segments []Segment
	}{
		{"whole", []Segment{{}}},
		{"one of one", []Segment{{0, 1, 1}}},
		{"halves", []Segment{{0, 1, 2}, {1, 2, 2}}},
		{"thirds", []Segment{{0, 1, 3}, {1, 2, 3}, {2, 3, 3}}},
		{"sevenths", []Segment{{0, 1, 7}, {1, 2, 7}, {2, 3, 7}, {3, 4, 7}, {4, 5, 7}, {5, 6, 7}, {6, 7, 7}}},
		{"mixed denominators", []Segment{{0, 1, 2}, {2, 3, 4}, {6, 7, 8}, {14, 15, 16}, {15, 16, 16}}},
		{"uneven", []Segment{{0, 1, 10}, {1, 6, 10}, {3, 5, 5}}},
	}
	const arrivals = 1 << 16
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owned := make([]int64, len(tt.segments))
			for n := int64(0); n < arrivals; n++ {
				owners := 0
				for i, s := range tt.segments {
					if s.Owns(n) {
						owners++
						owned[i]++
					}
				}
				if owners != 1 {
					t.Fatalf("arrival %d has %d owners, want 1", n, owners)
				}
			}
			for i, s := range tt.segments {
				if want := s.Share() * arrivals; math.Abs(float64(owned[i])-want) > 20 {
					t.Errorf("segment %v owns %d of %d arrivals, want about %.0f", s, owned[i], arrivals, want)
				}
				if got := s.Owned(arrivals); got != owned[i] {
					t.Errorf("segment %v: Owned(%d) = %d, counted %d", s, arrivals, got, owned[i])
				}
			}
			// Over a few arrivals the counts differ from the shares, and Owned still adds up.
			var total int64
			for _, s := range tt.segments {
				total += s.Owned(21)
			}
			if total != 21 {
				t.Errorf("the segments own %d of 21 arrivals, want 21", total)
			}
		})
	}
}

// TestSegmentSpreadsOverTime checks that a segment's arrivals are striped over the run: every
// window of consecutive arrivals holds the segment's share, within a few.
func TestSegmentSpreadsOverTime(t *testing.T) {
	for _, s := range []Segment{{0, 1, 3}, {1, 2, 3}, {2, 3, 3}, {3, 4, 10}, {1, 2, 2}} {
		const window = 300
		for start := int64(0); start < 30_000; start += 997 {
			var owned int
			for n := start; n < start+window; n++ {
				if s.Owns(n) {
					owned++
				}
			}
			if want := s.Share() * window; math.Abs(float64(owned)-want) > 12 {
				t.Errorf("segment %v owns %d of arrivals %d..%d, want about %.0f", s, owned, start, start+window, want)
			}
		}
	}
}

func TestSegmentString(t *testing.T) {
	got := []string{Segment{}.String(), Segment{1, 2, 4}.String()}
	if diff := cmp.Diff(got, []string{"0:1", "1/4:2/4"}); diff != "" {
		t.Error(diff)
	}
}
