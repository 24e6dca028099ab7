// Package metrics holds what a run measures: request samples, HDR latency histograms folded per
// phase, operation and second, marks on the timeline, and the JSON-lines codec of the timeline.
//
// Everything here folds incrementally in fixed memory: a run of ten hours costs the same memory as
// a run of ten seconds, because per-second windows are written out and reused.
package metrics

import (
	"encoding/json"
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds. Latencies are recorded in microseconds from 1 µs to one hour with three
// significant figures; a longer latency is clamped to the maximum and counted in Clamped.
const (
	histogramLowestMicros  = 1
	histogramHighestMicros = int64(time.Hour / time.Microsecond)
	histogramSigFigs       = 3
)

// Histogram is an HDR latency histogram of durations.
type Histogram struct {
	h       *hdrhistogram.Histogram
	clamped int64
}

// NewHistogram returns an empty histogram covering 1 µs to one hour.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histogramLowestMicros, histogramHighestMicros, histogramSigFigs)}
}

// Record adds one duration. Durations below 1 µs count as 1 µs; above one hour as one hour.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d / time.Microsecond)
	if v < histogramLowestMicros {
		v = histogramLowestMicros
	}
	if v > histogramHighestMicros {
		v = histogramHighestMicros
		h.clamped++
	}
	// RecordValue fails only outside the trackable range, excluded above.
	_ = h.h.RecordValue(v)
}

// Merge adds every value of other into h.
func (h *Histogram) Merge(other *Histogram) {
	h.h.Merge(other.h)
	h.clamped += other.clamped
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.clamped = 0
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Clamped is the number of values above one hour, recorded as one hour.
func (h *Histogram) Clamped() int64 { return h.clamped }

// Quantile returns the value at quantile q in [0, 1]; zero when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Percentile returns the value at percentile p in [0, 100]; zero when empty.
func (h *Histogram) Percentile(p float64) time.Duration { return h.Quantile(p / 100) }

// Min is the smallest recorded value; zero when empty.
func (h *Histogram) Min() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Min()) * time.Microsecond
}

// Max is the largest recorded value (at the histogram's precision); zero when empty.
func (h *Histogram) Max() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Mean is the average of the recorded values; zero when empty.
func (h *Histogram) Mean() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// histogramJSON is the wire form: the HdrHistogram V2 compressed encoding, base64, readable by
// every HdrHistogram implementation.
type histogramJSON struct {
	HDR     string `json:"hdr"`
	Clamped int64  `json:"clamped,omitempty"`
}

// MarshalJSON encodes h in the HdrHistogram V2 compressed base64 format.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	enc, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	return json.Marshal(histogramJSON{HDR: string(enc), Clamped: h.clamped})
}

// UnmarshalJSON decodes the form written by MarshalJSON. The decoded histogram must have the
// bounds of NewHistogram, so that histograms from any run or agent merge without loss.
func (h *Histogram) UnmarshalJSON(data []byte) error {
	var w histogramJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	if len(w.HDR) > histogramEncodedMax {
		return fmt.Errorf("decode histogram: %w: %d bytes", ErrTooLarge, len(w.HDR))
	}
	d, err := decodeHDR([]byte(w.HDR))
	if err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	if d.LowestTrackableValue() != histogramLowestMicros || d.HighestTrackableValue() != histogramHighestMicros ||
		d.SignificantFigures() != histogramSigFigs {
		return fmt.Errorf("decode histogram: %w: bounds %d..%d/%d", ErrBadHistogram,
			d.LowestTrackableValue(), d.HighestTrackableValue(), d.SignificantFigures())
	}
	if w.Clamped < 0 {
		return fmt.Errorf("decode histogram: %w: negative clamped count", ErrBadHistogram)
	}
	h.h = d
	h.clamped = w.Clamped
	return nil
}

// histogramEncodedMax bounds one encoded histogram; a real one is a few KiB.
const histogramEncodedMax = 1 << 20

// decodeHDR decodes and turns a panic of the decoder on damaged input into an error.
func decodeHDR(enc []byte) (h *hdrhistogram.Histogram, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrBadHistogram, r)
		}
	}()
	h, err = hdrhistogram.Decode(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHistogram, err)
	}
	return h, nil
}
