package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

func sample(phase, op string, intendedMs, sentMs, doneMs int, status int) Sample {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	return Sample{Phase: phase, Op: op, Intended: ms(intendedMs), Sent: ms(sentMs), Done: ms(doneMs),
		Status: status, Failed: status == 0 || status >= 400, Error: map[bool]string{true: "status"}[status >= 400]}
}

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p50", h.Percentile(50), 500 * time.Millisecond},
		{"p99", h.Percentile(99), 990 * time.Millisecond},
		{"max", h.Max(), 1000 * time.Millisecond},
		{"min", h.Min(), 1 * time.Millisecond},
	}
	for _, tt := range tests {
		// Three significant figures: within 0.1%.
		if diff := tt.got - tt.want; diff < -tt.want/1000 || diff > tt.want/1000 {
			t.Errorf("%s = %v, want %v ±0.1%%", tt.name, tt.got, tt.want)
		}
	}
	if got := h.Count(); got != 1000 {
		t.Errorf("Count() = %d, want 1000", got)
	}
}

func TestHistogramClampsOutOfRange(t *testing.T) {
	h := NewHistogram()
	h.Record(-time.Second)
	h.Record(2 * time.Hour)
	if got, want := h.Count(), int64(2); got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
	if got, want := h.Clamped(), int64(1); got != want {
		t.Errorf("Clamped() = %d, want %d", got, want)
	}
	if got := h.Min(); got != time.Microsecond {
		t.Errorf("Min() = %v, want 1µs", got)
	}
}

func TestHistogramJSONRoundTrip(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 500; i++ {
		h.Record(time.Duration(i*i) * time.Microsecond)
	}
	h.Record(3 * time.Hour)
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	got := NewHistogram()
	if err := json.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	for _, p := range []float64{0, 50, 90, 99, 99.9, 100} {
		if g, w := got.Percentile(p), h.Percentile(p); g != w {
			t.Errorf("p%v after round trip = %v, want %v", p, g, w)
		}
	}
	if got.Clamped() != 1 {
		t.Errorf("Clamped() after round trip = %d, want 1", got.Clamped())
	}
}

func TestHistogramRejectsDamage(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not base64", `{"hdr":"!!!"}`},
		{"truncated", `{"hdr":"HISTFAAAABl4nJNpmSzMwMDAzAABMJoRTM+Y"}`},
		{"empty", `{"hdr":""}`},
		{"negative clamped", `{"hdr":"` + encoded(t) + `","clamped":-1}`},
		{"not an object", `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tt.in), NewHistogram())
			if err == nil {
				t.Fatalf("Unmarshal(%s) = nil, want an error", tt.in)
			}
		})
	}
}

func encoded(t *testing.T) string {
	data, err := json.Marshal(NewHistogram())
	if err != nil {
		t.Fatal(err)
	}
	var w histogramJSON
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	return w.HDR
}

func TestSampleTimes(t *testing.T) {
	s := sample("p", "op", 0, 40, 50, 200)
	if got, want := s.Latency(), 50*time.Millisecond; got != want {
		t.Errorf("Latency() = %v, want %v", got, want)
	}
	if got, want := s.ServiceTime(), 10*time.Millisecond; got != want {
		t.Errorf("ServiceTime() = %v, want %v", got, want)
	}
	if got, want := s.Lateness(), 40*time.Millisecond; got != want {
		t.Errorf("Lateness() = %v, want %v", got, want)
	}
}

func TestCollectorTotalsAndWindows(t *testing.T) {
	c := NewCollector(t0)
	c.Record(sample("warm", "get", 0, 0, 10, 200))
	c.Record(sample("warm", "get", 1, 1, 20, 500))
	c.Drop("warm", "get")
	first := c.Rotate(t0.Add(time.Second))
	if len(first) != 1 {
		t.Fatalf("first Rotate returned %d windows, want 1", len(first))
	}
	w := first[0]
	got := struct{ Req, Failed, Dropped int64 }{w.Stats.Requests, w.Stats.Failed, w.Stats.Dropped}
	if diff := cmp.Diff(struct{ Req, Failed, Dropped int64 }{2, 1, 1}, got); diff != "" {
		t.Errorf("window counts (-want +got):\n%s", diff)
	}
	if w.Span != time.Second || !w.Start.Equal(t0) {
		t.Errorf("window = %v+%v, want %v+1s", w.Start, w.Span, t0)
	}

	c.Record(sample("hot", "pay", 1000, 1000, 1005, 200))
	second := c.Rotate(t0.Add(2 * time.Second))
	if len(second) != 1 || second[0].Phase != "hot" || second[0].Stats.Requests != 1 {
		t.Fatalf("second Rotate = %+v, want one window of phase hot with 1 request", second)
	}

	all, byOp := c.Phase("warm")
	if all.Requests != 2 || all.Dropped != 1 || byOp["get"].Failed != 1 {
		t.Errorf("Phase(warm) = %+v / %+v, want 2 requests, 1 dropped, 1 failed", all, byOp["get"])
	}
	if got := all.Statuses; !cmp.Equal(got, map[string]int64{"200": 1, "500": 1}) {
		t.Errorf("statuses = %v", got)
	}
}

func TestCollectorRecyclesWindowMemory(t *testing.T) {
	c := NewCollector(t0)
	for sec := range 50 {
		c.Record(sample("p", "op", sec*1000, sec*1000, sec*1000+1, 200))
		c.Rotate(t0.Add(time.Duration(sec+1) * time.Second))
	}
	// One window in use, one handed out: nothing else may be allocated.
	if got := len(c.spare) + len(c.handedOut) + len(c.window); got > 2 {
		t.Errorf("collector holds %d window stats after 50 rotations, want at most 2", got)
	}
}

func TestCollectorConcurrent(t *testing.T) {
	c := NewCollector(t0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				c.Record(sample("p", "op", i, i, i+w, 200))
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			c.Rotate(t0.Add(time.Duration(i) * time.Millisecond))
		}
	})
	wg.Wait()
	all, _ := c.Phase("p")
	if all.Requests != 8000 {
		t.Errorf("Requests = %d, want 8000", all.Requests)
	}
}

func TestStatsErrorClassesBounded(t *testing.T) {
	s := NewStats()
	for i := range 100 {
		x := sample("p", "op", 0, 0, 1, 0)
		x.Error = strings.Repeat("e", i+1)
		s.Add(x)
	}
	if len(s.Errors) > errorClassesMax+1 {
		t.Errorf("%d error classes kept, want at most %d", len(s.Errors), errorClassesMax+1)
	}
	var n int64
	for _, v := range s.Errors {
		n += v
	}
	if n != 100 {
		t.Errorf("error counts sum to %d, want 100", n)
	}
}

func TestTimelineRoundTrip(t *testing.T) {
	c := NewCollector(t0)
	c.Record(sample("p", "op", 0, 1, 30, 200))
	var buf bytes.Buffer
	w := NewTimelineWriter(&buf)
	for _, win := range c.Rotate(t0.Add(time.Second)) {
		if err := w.Write(Entry{Kind: KindWindow, Window: &win}); err != nil {
			t.Fatal(err)
		}
	}
	mark := Mark{Time: t0, Phase: "p", Kind: MarkPhaseStart, Name: "p"}
	if err := w.Write(Entry{Kind: KindMark, Mark: &mark}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var p99 time.Duration
	err := ReadTimeline(&buf, func(e Entry) error {
		kinds = append(kinds, e.Kind)
		if e.Window != nil {
			p99 = e.Window.Stats.Latency.Percentile(99)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{KindWindow, KindMark}, kinds); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	if p99 < 29*time.Millisecond || p99 > 31*time.Millisecond {
		t.Errorf("window p99 = %v, want ~30ms", p99)
	}
}

func TestReadTimelineRejectsDamage(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not json", "{\"kind\":\n"},
		{"two items", `{"kind":"mark","mark":{"kind":"x"},"gauge":{"name":"g"}}`},
		{"kind mismatch", `{"kind":"window","mark":{"kind":"x"}}`},
		{"window without stats", `{"kind":"window","window":{"phase":"p"}}`},
		{"negative count", `{"kind":"window","window":{"stats":{"requests":-1}}}`},
		{"no item", `{"kind":"mark"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ReadTimeline(strings.NewReader(tt.in), func(Entry) error { return nil })
			if !errors.Is(err, ErrBadTimeline) {
				t.Fatalf("ReadTimeline = %v, want ErrBadTimeline", err)
			}
		})
	}
}

func FuzzReadTimeline(f *testing.F) {
	f.Add([]byte(`{"kind":"mark","mark":{"kind":"phase_start","phase":"p"}}`))
	f.Add([]byte(`{"kind":"window","window":{"stats":{"requests":1,"latency":{"hdr":"x"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = ReadTimeline(bytes.NewReader(data), func(Entry) error { return nil })
	})
}
