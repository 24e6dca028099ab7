package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/run"
)

// VerifyOptions are the inputs of `redline verify`.
type VerifyOptions struct {
	IO  IO
	Dir string
}

// NewCmdVerify returns `redline verify DIR`: judge a finished run again from its files.
func NewCmdVerify(streams IO) *cobra.Command {
	opts := &VerifyOptions{IO: streams}
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Judge a finished run again from its directory (exit code as run)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			return verifyRun(opts)
		},
	}
}

func verifyRun(opts *VerifyOptions) error {
	p, rec, err := readRunDir(opts.IO, opts.Dir)
	if err != nil {
		return err
	}
	v := run.Judge(p, rec)
	printVerdict(opts.IO.Out, v)
	return verdictError(v)
}

// readRunDir reads a finished run directory: its record from the timeline and its plan from the
// record's echo. A missing or damaged directory is invalid input.
func readRunDir(streams IO, dir string) (*plan.Plan, *run.Record, error) {
	rec, err := run.ReadRecord(dir)
	if err != nil {
		return nil, nil, runDirError(err)
	}
	p, err := parsePlan(streams, rec.PlanFile+" (echoed in "+dir+")", []byte(rec.PlanSource), plan.Options{RanAt: rec.TargetURL})
	if err != nil {
		return nil, nil, err
	}
	return p, rec, nil
}

// runDirError maps an error reading run directories: a missing, damaged or foreign one is
// invalid input (exit 2); anything else is a run error.
func runDirError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: not a run directory: %w", ErrInvalid, err)
	case errors.Is(err, run.ErrBadRecord), errors.Is(err, metrics.ErrBadTimeline):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}
