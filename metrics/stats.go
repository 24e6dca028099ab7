package metrics

import (
	"errors"
	"strconv"
	"time"
)

// Errors of this package.
var (
	ErrBadHistogram = errors.New("bad histogram")
	ErrTooLarge     = errors.New("too large")
	ErrBadTimeline  = errors.New("bad timeline")
)

// Sample is the outcome of one request.
type Sample struct {
	Phase    string
	Op       string    // the request's name in the mix, e.g. "pay"
	Intended time.Time // when the schedule said the request should be sent
	Sent     time.Time // when it was sent
	Done     time.Time // when the response was read or the request failed
	Status   int       // HTTP status; 0 when there was no response
	Failed   bool      // a transport error, a timeout or an unexpected status
	Error    string    // a short error class when Failed ("timeout", "connect", "status"); "" otherwise
	// BytesSent and BytesReceived count the request and response on the wire, approximately.
	BytesSent     int64
	BytesReceived int64
}

// Latency is the time from the intended send time to completion: what a user arriving on
// schedule saw. Under overload it grows with the queue that the server built up, unlike the
// service time (coordinated omission, corrected the wrk2 way).
func (s Sample) Latency() time.Duration { return s.Done.Sub(s.Intended) }

// ServiceTime is the time from the actual send to completion.
func (s Sample) ServiceTime() time.Duration { return s.Done.Sub(s.Sent) }

// Lateness is how long after its intended time the request was sent.
func (s Sample) Lateness() time.Duration { return s.Sent.Sub(s.Intended) }

// errorClassesMax bounds the distinct error classes kept per Stats; further classes are
// counted under "other".
const errorClassesMax = 32

// Stats folds samples: counts, bytes, statuses and three histograms. The zero value is not
// usable; call NewStats.
type Stats struct {
	Requests      int64            `json:"requests"` // completed requests, failed or not
	Failed        int64            `json:"failed"`   // requests counted by http_req_failed
	Dropped       int64            `json:"dropped"`  // arrivals never sent: no free worker
	BytesSent     int64            `json:"bytes_sent"`
	BytesReceived int64            `json:"bytes_received"`
	Statuses      map[string]int64 `json:"statuses,omitempty"` // "200" → count; "0" is no response
	Errors        map[string]int64 `json:"errors,omitempty"`   // error class → count
	Latency       *Histogram       `json:"latency"`            // from the intended send time
	Service       *Histogram       `json:"service"`            // from the actual send time
	Lateness      *Histogram       `json:"lateness"`           // actual minus intended send time
}

// NewStats returns empty Stats.
func NewStats() *Stats {
	return &Stats{
		Statuses: map[string]int64{},
		Errors:   map[string]int64{},
		Latency:  NewHistogram(),
		Service:  NewHistogram(),
		Lateness: NewHistogram(),
	}
}

// Add folds one sample into s.
func (s *Stats) Add(x Sample) {
	s.Requests++
	if x.Failed {
		s.Failed++
		s.addError(x.Error, 1)
	}
	s.BytesSent += x.BytesSent
	s.BytesReceived += x.BytesReceived
	s.Statuses[statusKey(x.Status)]++
	s.Latency.Record(x.Latency())
	s.Service.Record(x.ServiceTime())
	s.Lateness.Record(x.Lateness())
}

// statusKeys avoids an allocation per sample for common statuses.
var statusKeys = func() [600]string {
	var k [600]string
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

func statusKey(code int) string {
	if code >= 0 && code < len(statusKeys) {
		return statusKeys[code]
	}
	return "other"
}

func (s *Stats) addError(class string, n int64) {
	if class == "" {
		class = "unknown"
	}
	if _, ok := s.Errors[class]; !ok && len(s.Errors) >= errorClassesMax {
		class = "other"
	}
	s.Errors[class] += n
}

// Merge folds every count and histogram of other into s.
func (s *Stats) Merge(other *Stats) {
	s.Requests += other.Requests
	s.Failed += other.Failed
	s.Dropped += other.Dropped
	s.BytesSent += other.BytesSent
	s.BytesReceived += other.BytesReceived
	for k, v := range other.Statuses {
		s.Statuses[k] += v
	}
	for k, v := range other.Errors {
		s.addError(k, v)
	}
	s.Latency.Merge(other.Latency)
	s.Service.Merge(other.Service)
	s.Lateness.Merge(other.Lateness)
}

// Reset empties s, keeping its memory.
func (s *Stats) Reset() {
	s.Requests, s.Failed, s.Dropped, s.BytesSent, s.BytesReceived = 0, 0, 0, 0, 0
	clear(s.Statuses)
	clear(s.Errors)
	s.Latency.Reset()
	s.Service.Reset()
	s.Lateness.Reset()
}

// FailedRate is Failed / Requests, zero when nothing completed.
func (s *Stats) FailedRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Failed) / float64(s.Requests)
}

// Arrivals is every scheduled arrival: sent or dropped.
func (s *Stats) Arrivals() int64 { return s.Requests + s.Dropped }

// validate checks decoded Stats for negative counts and missing histograms.
func (s *Stats) validate() error {
	if s.Requests < 0 || s.Failed < 0 || s.Dropped < 0 || s.BytesSent < 0 || s.BytesReceived < 0 || s.Failed > s.Requests {
		return ErrBadTimeline
	}
	if s.Latency == nil || s.Service == nil || s.Lateness == nil {
		return ErrBadTimeline
	}
	if s.Statuses == nil {
		s.Statuses = map[string]int64{}
	}
	if s.Errors == nil {
		s.Errors = map[string]int64{}
	}
	return nil
}
