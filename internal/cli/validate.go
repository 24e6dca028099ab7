package cli

import (
	"errors"
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
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			opts.PlanPath = args[0]
			return runF(opts)
		},
	}
	cmd.Flags().StringVar(&opts.TargetURL, "target-url", "", "check the plan pointed at this base URL instead of its target")
	return cmd
}

func validateRun(opts *ValidateOptions) error {
	p, err := plan.Load(opts.PlanPath, plan.Options{TargetURL: opts.TargetURL})
	var perr *plan.Error
	switch {
	case errors.As(err, &perr):
		for _, pr := range perr.Problems {
			fmt.Fprintln(opts.IO.ErrOut, pr)
		}
		return silent(fmt.Errorf("%w: %d problems in %s", ErrInvalid, len(perr.Problems), opts.PlanPath))
	case err != nil:
		// A missing or unreadable file is invalid input too: exit 2.
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := fmt.Fprint(opts.IO.Out, p.Summary()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
