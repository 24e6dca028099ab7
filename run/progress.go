package run

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redline-dev/redline/metrics"
)

// progressLine is what one second of a run looked like, for a person watching.
type progressLine struct {
	Elapsed     time.Duration
	Phase       string
	PhaseIndex  int
	Phases      int
	OfferedRPS  float64 // arrivals due per second in the window (sent or dropped)
	AchievedRPS float64 // requests completed per second in the window
	P99         time.Duration
	Failed      int64 // in the window
	Dropped     int64 // in the window
	InFlight    int64
}

// foldWindows sums one rotation's windows into a progress line.
func foldWindows(ws []metrics.Window, span time.Duration) (achieved, offered float64, p99 time.Duration, failed, dropped int64) {
	if span <= 0 || len(ws) == 0 {
		return 0, 0, 0, 0, 0
	}
	all := metrics.NewStats()
	for _, w := range ws {
		all.Merge(w.Stats)
	}
	secs := span.Seconds()
	return float64(all.Requests) / secs, float64(all.Arrivals()) / secs, all.Latency.Percentile(99), all.Failed, all.Dropped
}

func (l progressLine) String() string {
	return fmt.Sprintf("%7s  phase %d/%d %-14s offered %8.1f/s  achieved %8.1f/s  p99 %9s  failed %d  dropped %d  in-flight %d",
		l.Elapsed.Truncate(time.Second), l.PhaseIndex+1, l.Phases, truncate(l.Phase, 14),
		l.OfferedRPS, l.AchievedRPS, l.P99.Round(10*time.Microsecond), l.Failed, l.Dropped, l.InFlight)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// progressPrinter writes progress lines: on a terminal one line rewritten in place every second,
// elsewhere a plain line every plainEvery.
type progressPrinter struct {
	w          io.Writer
	terminal   bool
	plainEvery time.Duration
	lastPlain  time.Duration
	width      int
}

func (p *progressPrinter) print(l progressLine) {
	if p == nil || p.w == nil {
		return
	}
	s := l.String()
	if p.terminal {
		pad := ""
		if n := p.width - len(s); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		p.width = len(s)
		fmt.Fprintf(p.w, "\r%s%s", s, pad)
		return
	}
	if l.Elapsed-p.lastPlain < p.plainEvery && p.lastPlain != 0 {
		return
	}
	p.lastPlain = l.Elapsed
	fmt.Fprintln(p.w, s)
}

// say prints a line of its own, ending a terminal's progress line first.
func (p *progressPrinter) say(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	if p.terminal && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
