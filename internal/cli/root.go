// Package cli is redline's command line: one file per verb, each an Options struct, a NewCmdX
// that parses flags into it, and an xRun that does the work. Exit codes are mapped here only.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes: an API that CI scripts depend on.
const (
	ExitPass    = 0 // every verdict passed
	ExitError   = 1 // the platform or the target failed
	ExitInvalid = 2 // invalid input: a bad plan, bad flags, a bad file
	ExitFailed  = 3 // verification failed: SLA, headroom, audit, isolation, validity
	ExitAborted = 4 // aborted: a signal, a halt, an abort condition
)

// Errors that carry an exit code. Commands wrap them; Main maps them once.
var (
	ErrInvalid = errors.New("invalid input")
	ErrFailed  = errors.New("verification failed")
	ErrAborted = errors.New("aborted")
)

// IO is where commands read and write.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Main runs redline with os.Args and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	streams := IO{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	return Execute(ctx, streams, os.Args[1:])
}

// Execute runs the command line args and returns the exit code.
func Execute(ctx context.Context, streams IO, args []string) int {
	root := NewCmdRoot(streams)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitPass
	}
	code := ExitCode(err)
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(streams.ErrOut, "redline: %v\n", err)
	}
	return code
}

// errSilent marks an error whose message the command has already printed.
var errSilent = errors.New("reported")

// silent wraps err (carrying its exit code) so that Execute prints nothing more.
func silent(err error) error { return fmt.Errorf("%w%w", err, errSilent) }

// ExitCode maps an error to the exit code of DESIGN.md.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitPass
	case errors.Is(err, ErrAborted):
		return ExitAborted
	case errors.Is(err, ErrFailed):
		return ExitFailed
	case errors.Is(err, ErrInvalid):
		return ExitInvalid
	default:
		return ExitError
	}
}

// NewCmdRoot returns the root command with every verb.
func NewCmdRoot(streams IO) *cobra.Command {
	root := &cobra.Command{
		Use:           "redline",
		Short:         "Full-link stress testing and chaos rehearsal",
		Long:          "Redline rehearses a peak day: open-model load, shadow replay and chaos faults on one timeline,\njudged by a headroom verifier, reported for CI and for people.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          groupArgs,
		RunE:          groupRun,
	}
	// Flag errors are invalid input (exit 2), never a run error.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	})
	root.AddCommand(
		NewCmdVersion(streams),
		NewCmdValidate(streams),
		NewCmdRun(streams, nil),
		NewCmdLoad(streams, nil),
		NewCmdVerify(streams),
		NewCmdReport(streams),
		NewCmdMerge(streams),
		NewCmdTarget(streams),
		NewCmdChaos(streams),
	)
	return root
}
