package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/reports"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/verify"
)

// judgeAndReport judges a record against its plan, writes the reports into dir, prints the
// verdict and returns the error that carries the verdict's exit code.
func judgeAndReport(streams IO, dir string, p *plan.Plan, rec *run.Record) error {
	v := run.Judge(p, rec)
	if err := reports.WriteAll(dir, rec, v, p.PeakRPS()); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	printVerdict(streams.Out, v)
	fmt.Fprintf(streams.Out, "outputs: %s\n", dir)
	return verdictError(v)
}

// verdictError maps a verdict to the error carrying its exit code: pass 0, fail and invalid 3,
// aborted 4.
func verdictError(v verify.Verdict) error {
	switch v.Status {
	case verify.StatusPass:
		return nil
	case verify.StatusAborted:
		return silent(fmt.Errorf("%w: %s", ErrAborted, strings.Join(v.Reasons, "; ")))
	default:
		return silent(fmt.Errorf("%w: %s", ErrFailed, v.Status))
	}
}

func printVerdict(w io.Writer, v verify.Verdict) {
	fmt.Fprintf(w, "verdict: %s\n", strings.ToUpper(string(v.Status)))
	for _, pv := range v.Phases {
		line := fmt.Sprintf("  phase %-16s %-8s", pv.Phase, pv.Status)
		if val := pv.Validity; val != nil {
			line += fmt.Sprintf(" achieved %.1f/s of %.1f/s, dropped %d", val.AchievedRPS, val.TargetRPS, val.Dropped)
		}
		if h := pv.Headroom; h != nil {
			line += fmt.Sprintf(", headroom %.2fx peak", h.Ratio)
		}
		fmt.Fprintln(w, line)
		for _, c := range pv.Criteria {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			obs := "no data"
			if c.Observed != nil {
				obs = fmt.Sprintf("%.3f %s", *c.Observed, c.Unit)
			}
			fmt.Fprintf(w, "    %s %s %s (observed %s)\n", mark, c.Metric, c.Expression, strings.TrimSpace(obs))
		}
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
}

// isTerminal reports whether w is a character device (a terminal), for the progress line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
