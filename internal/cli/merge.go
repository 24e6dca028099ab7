package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/run"
)

// MergeOptions are the inputs of `redline merge`.
type MergeOptions struct {
	IO     IO
	Dirs   []string
	OutDir string
}

// NewCmdMerge returns `redline merge DIR... --out DIR`: the runs of several agents, judged once.
func NewCmdMerge(streams IO) *cobra.Command {
	opts := &MergeOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "merge DIR... --out DIR",
		Short: "Merge the runs of several agents (segments) and judge them once",
		Long: `Merge the run directories of agents that each ran a segment of one plan
(redline run --segment i/N). Their HDR histograms merge exactly, so the SLA is judged once
over all the data: a p99 over every agent's requests, not a p99 per agent.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: name at least one run directory", ErrInvalid)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dirs = args
			return mergeRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.OutDir, "out", "", "directory for the merged run (required)")
	return cmd
}

func mergeRun(opts *MergeOptions) error {
	if opts.OutDir == "" {
		return fmt.Errorf("%w: --out is required", ErrInvalid)
	}
	rec, err := run.Merge(opts.OutDir, opts.Dirs)
	if err != nil {
		return runDirError(err)
	}
	p, err := parsePlan(opts.IO, rec.PlanFile+" (echoed)", []byte(rec.PlanSource), plan.Options{RanAt: rec.TargetURL})
	if err != nil {
		return err
	}
	return judgeAndReport(opts.IO, opts.OutDir, p, rec)
}
