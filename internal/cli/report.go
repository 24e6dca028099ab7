package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/reports"
	"github.com/redline-dev/redline/run"
)

// ReportOptions are the inputs of `redline report`.
type ReportOptions struct {
	IO  IO
	Dir string
}

// NewCmdReport returns `redline report DIR`: render a finished run's reports again.
func NewCmdReport(streams IO) *cobra.Command {
	opts := &ReportOptions{IO: streams}
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Render a finished run's reports again from its timeline",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			return reportRun(opts)
		},
	}
}

func reportRun(opts *ReportOptions) error {
	p, rec, err := readRunDir(opts.IO, opts.Dir)
	if err != nil {
		return err
	}
	v := run.Judge(p, rec)
	if err := reports.WriteAll(opts.Dir, rec, v, p.PeakRPS()); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s, %s, %s in %s (verdict %s)\n",
		reports.ReportFile, reports.SummaryFile, reports.JUnitFile, opts.Dir, v.Status)
	return nil
}
