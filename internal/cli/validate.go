package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/plan"
)

// ValidateOptions are the inputs of `redline validate`.
type ValidateOptions struct {
	IO        IO
	PlanPath  string
	TargetURL string // check the plan as `redline run --target-url` would run it
}

// NewCmdValidate returns `redline validate PLAN.yaml`: a strict check of a plan file that
// prints every problem as file:line:col: path: message (exit 2), or the plan's timeline.
func NewCmdValidate(streams IO) *cobra.Command {
	return newCmdValidate(streams, validateRun)
}

// newCmdValidate takes the behaviour as runF, so that tests check flag parsing alone.
func newCmdValidate(streams IO, runF func(*ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "validate PLAN.yaml",
		Short: "Check a plan file strictly and print its timeline",
		Long: "Validate checks a plan file without running it. Every problem is printed on stderr as\n" +
			"file:line:col: path: message and the exit code is 2; a valid plan prints its timeline.",
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.PlanPath = args[0]
			return runF(opts)
		},
	}
	cmd.Flags().StringVar(&opts.TargetURL, "target-url", "", "check the plan pointed at this base URL instead of its target")
	return cmd
}

func validateRun(opts *ValidateOptions) error {
	source, err := readPlanFile(opts.PlanPath)
	if err != nil {
		return err
	}
	p, err := parsePlan(opts.IO, opts.PlanPath, source, plan.Options{TargetURL: opts.TargetURL})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprint(opts.IO.Out, p.Summary()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
