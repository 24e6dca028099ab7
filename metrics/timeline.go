package metrics

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Entry kinds of a timeline.
const (
	KindWindow = "window" // a Window: what one key recorded during one interval
	KindMark   = "mark"   // a Mark: an event on the timeline (phase start, fault injected, ...)
	KindGauge  = "gauge"  // a Gauge: a sampled value (in-flight requests, consumer lag, ...)
)

// Mark kinds used by the platform.
const (
	MarkPhaseStart   = "phase_start"
	MarkPhaseEnd     = "phase_end"
	MarkFaultInject  = "fault_inject"
	MarkFaultRecover = "fault_recover"
	MarkAbort        = "abort"
)

// Mark is an event on the timeline.
type Mark struct {
	Time   time.Time `json:"time"`
	Phase  string    `json:"phase,omitempty"`
	Kind   string    `json:"kind"`
	Name   string    `json:"name,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Gauge is one sampled value.
type Gauge struct {
	Time  time.Time `json:"time"`
	Phase string    `json:"phase,omitempty"`
	Name  string    `json:"name"`
	Value float64   `json:"value"`
}

// Entry is one line of a timeline: exactly one of Window, Mark and Gauge, named by Kind.
type Entry struct {
	Kind   string  `json:"kind"`
	Window *Window `json:"window,omitempty"`
	Mark   *Mark   `json:"mark,omitempty"`
	Gauge  *Gauge  `json:"gauge,omitempty"`
}

// timelineLineMax bounds one line of a timeline file.
const timelineLineMax = 8 << 20

// TimelineWriter writes entries as JSON lines.
type TimelineWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewTimelineWriter returns a writer on w. Call Flush when done.
func NewTimelineWriter(w io.Writer) *TimelineWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &TimelineWriter{w: bw, enc: json.NewEncoder(bw)}
}

// Write writes one entry.
func (t *TimelineWriter) Write(e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("write timeline entry: %w", err)
	}
	if err := t.enc.Encode(e); err != nil {
		return fmt.Errorf("write timeline entry: %w", err)
	}
	return nil
}

// Flush writes buffered entries to the underlying writer.
func (t *TimelineWriter) Flush() error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("flush timeline: %w", err)
	}
	return nil
}

// ReadTimeline calls fn for each entry of r in order. A damaged line is an error naming its
// line number, wrapping ErrBadTimeline; fn's error stops the read and is returned as is.
func ReadTimeline(r io.Reader, fn func(Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), timelineLineMax)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("read timeline line %d: %w: %w", line, ErrBadTimeline, err)
		}
		if err := e.validate(); err != nil {
			return fmt.Errorf("read timeline line %d: %w", line, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("read timeline: %w: a line over %d bytes", ErrBadTimeline, timelineLineMax)
		}
		return fmt.Errorf("read timeline: %w", err)
	}
	return nil
}

func (e Entry) validate() error {
	n := 0
	if e.Window != nil {
		n++
	}
	if e.Mark != nil {
		n++
	}
	if e.Gauge != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: an entry holds %d items, want 1", ErrBadTimeline, n)
	}
	switch {
	case e.Kind == KindWindow && e.Window != nil:
		if e.Window.Stats == nil {
			return fmt.Errorf("%w: window without stats", ErrBadTimeline)
		}
		if err := e.Window.Stats.validate(); err != nil {
			return fmt.Errorf("%w: window %s/%s: damaged stats", err, e.Window.Phase, e.Window.Op)
		}
	case e.Kind == KindMark && e.Mark != nil:
	case e.Kind == KindGauge && e.Gauge != nil:
	default:
		return fmt.Errorf("%w: kind %q does not match its content", ErrBadTimeline, e.Kind)
	}
	return nil
}
